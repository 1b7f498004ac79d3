"""``longterm device-report``: every change of phone (brand, model, OS version) per participant."""

from __future__ import annotations

import argparse

from ..analysis.devices import COLUMNS, CSV_NAME
from ..pipelines.analysis import ReportOptions, run_device_report
from .analysis_flags import SOURCE_HELP, add_source_arguments, print_table, source_for
from .common import Context

NAME = "device-report"
ORDER = 61
HELP = "device changes per participant (device_report.csv, optionally .xlsx)"
DESCRIPTION = f"""\
From device_info of every result: per participant, one row per span of consecutive viewings
(in date order) on the same brand, model and OS version, with the first and last date seen
on it. A change of any of the three starts a new span (an OS update included); going back to
an earlier phone starts a new one too. Writes {CSV_NAME} in --output-dir (columns:
{", ".join(COLUMNS)}) and prints one line per participant (devices, changes).

{SOURCE_HELP}"""
EXAMPLES = """\
  longterm device-report --from ./longterm_backup/text_files/latest
  longterm device-report --server=prod --excel_time=users.xlsx --xlsx
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser, xlsx="also write device_report.xlsx")


def run(ctx: Context) -> int:
    options = ReportOptions(source=source_for(ctx), output_dir=ctx.output_dir, xlsx=ctx.args.xlsx)
    summary = ctx.run_writer(run_device_report, options)
    print_table(ctx, summary.details.get("table", []))
    return ctx.render(summary)
