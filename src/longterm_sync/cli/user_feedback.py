"""``longterm user_feedback``: every feedback comment of the selected participants in one CSV."""

from __future__ import annotations

import argparse

from ..pipelines.feedback import FeedbackOptions, run_feedback
from .common import Context, add_output_arguments, add_server_arguments
from .selection import SELECTION_HELP, add_selection_arguments, selection_for

NAME = "user_feedback"
ORDER = 40
HELP = "download participants' feedback comments into user_feedback.csv"
DESCRIPTION = f"""\
Download the free-text feedback comments of the selected participants (every participant by
default) and write user_feedback.csv in --output-dir: columns date,external_id,video,comment,
newest first, UTF-8. Dates are written as the server sends them (Warsaw offset). Each
participant's range is fetched in windows of [limits] window_days; a participant whose
comments cannot be fetched is listed at the end and the exit status is 1.

{SELECTION_HELP}"""
EXAMPLES = """\
  longterm user_feedback --server=prod
  longterm user_feedback --server=prod --user_time=,,,2021-12-30T00:00:00,2022-01-31T23:59:59
  longterm user_feedback --server=prod \\
      --user_time=Long_001,Stress_test,1234567,2021-12-30T00:00:00,2022-01-31T23:59:59
  longterm user_feedback --server=prod \\
      --external_id_time=342afb0bd765221057bd4ff24736ff228fc2848ae438f3d7e77f67f3e34f2568
  python ./scripts/user_feedback.py --server=prod --excel_time=./users.xlsx
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_arguments(parser)
    add_selection_arguments(parser)
    add_output_arguments(parser)


def run(ctx: Context) -> int:
    selection = selection_for(ctx)
    options = FeedbackOptions(selection=selection, output_dir=ctx.output_dir)
    summary = ctx.run_writer(run_feedback, options)
    return ctx.render(summary)
