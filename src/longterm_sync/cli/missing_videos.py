"""``longterm missing-videos``: the phones' missing-video reports with their schedule entry."""

from __future__ import annotations

import argparse

from ..analysis.missing import COLUMNS, CSV_NAME
from ..pipelines.analysis import ReportOptions, run_missing_videos
from .analysis_flags import add_source_arguments, print_table, source_for
from .common import Context
from .selection import SELECTION_HELP

NAME = "missing-videos"
ORDER = 62
HELP = "missing-video reports joined with their schedule entry (missing_videos.csv)"
DESCRIPTION = f"""\
A phone reports a scheduled video it could not fetch. Each report is joined with the
participant's schedule entry whose start..end holds the report's date: status 'due' (the
video was due in that entry), 'not due' (it was not: the phone asked for another day's
video), 'no entry' (no entry covers that moment) or 'no schedule'. scheduled_on lists the
days whose entries name the video, nearest first. Writes {CSV_NAME} in --output-dir (columns:
{", ".join(COLUMNS)}) and prints one line per participant.

Reports come from --from DIR (a backup's text_files/latest/: missing_videos.json and the
schedule_*.json files) or from --server (the route ignores dates: the selection's ranges are
applied to the reports' dates here).

{SELECTION_HELP}"""
EXAMPLES = """\
  longterm missing-videos --server=prod
  longterm missing-videos --from ./longterm_backup/text_files/latest --xlsx
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser, xlsx="also write missing_videos.xlsx")


def run(ctx: Context) -> int:
    options = ReportOptions(source=source_for(ctx), output_dir=ctx.output_dir, xlsx=ctx.args.xlsx)
    summary = ctx.run_writer(run_missing_videos, options)
    print_table(ctx, summary.details.get("table", []))
    return ctx.render(summary)
