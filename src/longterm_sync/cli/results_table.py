"""``longterm results-table``: one row per viewing (preprocess.R's job, done in pandas)."""

from __future__ import annotations

import argparse

from ..analysis.preprocess_r import FILE_NAME as R_FILE
from ..analysis.table import COLUMN_HELP, CSV_NAME
from ..pipelines.analysis import TableOptions, run_results_table
from .analysis_flags import SOURCE_HELP, add_source_arguments, source_for
from .argtypes import seconds_margin
from .common import Context

NAME = "results-table"
ORDER = 60
HELP = "one row per viewing: results_table.csv (--xlsx, --parquet, --like-preprocess-r)"
DESCRIPTION = f"""\
Reduce watch results to one row per viewing and write {CSV_NAME} in --output-dir (UTF-8,
sorted by participant and date). --xlsx also writes results_table.xlsx (bold frozen header,
filters, a sheet describing the columns); --parquet writes results_table.parquet (needs
pyarrow: pip install 'longterm-sync[parquet]').

COLUMNS
{COLUMN_HELP}

--like-preprocess-r writes only {R_FILE}, exactly as the original preprocess.R
did: external_id, date, video, q1, q2 (the values of the first two questions, NA where
absent), one row per result in file order, results whose video name contains 'codec' or
'src' dropped, formatted as R's write.csv(row.names = FALSE).

{SOURCE_HELP}"""
EXAMPLES = """\
  longterm results-table --from ./longterm_backup/text_files/latest --xlsx
  longterm results-table --server=prod --user_time=,,,2022-01-01,2022-03-31
  longterm results-table --from . --like-preprocess-r       # dataframe_lts_phase2.csv
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser, xlsx="also write results_table.xlsx")
    group = parser.add_argument_group("table")
    group.add_argument(
        "--parquet", action="store_true", help="also write results_table.parquet (pyarrow)"
    )
    group.add_argument(
        "--like-preprocess-r",
        "--like_preprocess_r",
        dest="like_preprocess_r",
        action="store_true",
        help=f"write {R_FILE} as preprocess.R did, nothing else",
    )
    group.add_argument(
        "--sec_margin",
        type=seconds_margin,
        default=3.0,
        metavar="SEC",
        help="± seconds around the video's duration that count as speed_state ok (default: 3)",
    )


def run(ctx: Context) -> int:
    args = ctx.args
    options = TableOptions(
        source=source_for(ctx),
        output_dir=ctx.output_dir,
        sec_margin=args.sec_margin,
        xlsx=args.xlsx,
        parquet=args.parquet,
        like_preprocess_r=args.like_preprocess_r,
    )
    summary = ctx.run_writer(run_results_table, options)
    return ctx.render(summary)
