"""``longterm user_activity``: a participant x day table of who watched, how, and what they said."""

from __future__ import annotations

import argparse
from datetime import date, datetime, time

from ..pipelines.activity import ActivityOptions, run_activity
from .argtypes import seconds_margin
from .common import Context, add_output_arguments, add_server_arguments
from .selection import SELECTION_HELP, add_selection_arguments, selection_for

NAME = "user_activity"
ORDER = 41
HELP = "participant x day activity table (user_activity.csv, optionally .xlsx)"
DESCRIPTION = f"""\
Fetch the watch results of the last --report_days days (only those) and write
user_activity.csv in --output-dir: columns no, external_id, then one column per day named
YYYY-MM-DD, oldest first. Covers every participant unless a selection flag narrows it.

A cell is '-' when there is no result that day; otherwise, per result (several joined by ' | '):
  ok      watched within --sec_margin seconds of the video's duration
  <+12s   watched 12 s longer than the video (paused or slowed down)
  >-7s    watched 7 s shorter (skipped or sped up)
  ?       the result lacks playback times or the video's duration
then ' ↓' when the phone lay face down (median accelerometer z below -0.8 after the first
max(10 %, 3 s) of samples) or ' ???' when there is no accelerometer data, then the answer to
--question (yes/no, a number or text) or ' x' when it went unanswered. 'error' marks a
participant whose results could not be fetched (listed at the end, exit status 1).
Watched duration = playback_ended - playback_started (the span of playback_data timestamps
when those are missing). The day of a result is its date in the profile's timezone.
--xlsx also writes user_activity.xlsx, colour-coded, with a legend sheet.

{SELECTION_HELP}"""
EXAMPLES = """\
  longterm user_activity --server=prod                     # every participant, last 30 days
  longterm user_activity --server=prod --excel_time=users_prod_all_2022_04.xlsx --xlsx
  longterm user_activity --report_days=180 --sec_margin=100 --server=prod \\
      --excel_time=users_prod_all_2022_04.xlsx
  python scripts/user_activity.py --server=prod --user_time=,,,2022-01-01,2022-03-31
"""

MAX_REPORT_DAYS = 3660


def _days(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {value!r}") from None
    if not 1 <= number <= MAX_REPORT_DAYS:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_REPORT_DAYS} days: {value!r}")
    return number


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {value!r}") from None


def _question(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("the question id is empty")
    return value.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_arguments(parser)
    group = parser.add_argument_group("report")
    group.add_argument(
        "--sec_margin",
        nargs="?",
        type=seconds_margin,
        const=3.0,
        default=3.0,
        metavar="SEC_MARGIN",
        help="± seconds around the video's duration that still count as 'ok' (default: 3)",
    )
    group.add_argument(
        "--report_days",
        nargs="?",
        type=_days,
        const=30,
        default=30,
        metavar="REPORT_DAYS",
        help="number of days in the report, ending today (default: 30)",
    )
    group.add_argument(
        "--question",
        nargs="?",
        type=_question,
        const="q2",
        default="q2",
        metavar="ID",
        help="optional_id of the reply-form question whose answer is shown (default: q2)",
    )
    group.add_argument(
        "--until",
        type=_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="last day of the report (default: today in the profile's timezone); "
        "--excel_time rows must be active on that day",
    )
    group.add_argument(
        "--xlsx",
        action="store_true",
        help="also write user_activity.xlsx, colour-coded, with a legend sheet",
    )
    add_selection_arguments(parser)
    add_output_arguments(parser)


def run(ctx: Context) -> int:
    args = ctx.args
    # --excel_time rows must be active on the report's last day, not necessarily today
    now = None
    if args.until is not None:
        now = datetime.combine(args.until, time(23, 59, 59), tzinfo=ctx.profile.tz)
    options = ActivityOptions(
        selection=selection_for(ctx, now=now),
        output_dir=ctx.output_dir,
        sec_margin=args.sec_margin,
        report_days=args.report_days,
        question=args.question,
        xlsx=args.xlsx,
        until=args.until,
    )
    summary = ctx.run_writer(run_activity, options)
    return ctx.render(summary)
