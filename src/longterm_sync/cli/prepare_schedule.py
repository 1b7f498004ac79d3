"""``longterm prepare_schedule``: schedule files for many participants from files and flags."""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from ..config import DEFAULT_TIMEZONE
from ..errors import UsageError
from ..pipelines.prepare import PrepareOptions, run_prepare_schedule
from ..prepare.builder import DEFAULT_LANGUAGE
from ..timeutil import today_in
from .argtypes import positive_int
from .common import Context, add_output_arguments

NAME = "prepare_schedule"
ORDER = 15
HELP = "write schedule files for many participants (videos one per day, a reply form)"
START_OFFSET_DAYS = 10
DESCRIPTION = """\
Write one schedule file per participant, ready for upload-schedule.

Participants come from a spreadsheet (.xlsx or .csv with the columns name,surname,phone and
optionally external_id, language) or, with --extend, from the schedule files of an earlier
run. Day i of the schedule (--start + i, from 00:00:00 to 23:59:59) shows the i-th video of
--videos in name order; with --services A,B,C each service has its folder videos_A/, videos_B/,
... inside --videos, and day i shows each service's i-th video. Video names are written
relative to --videos: pass the same folder to upload-schedule as its video_path.

Files are named schedule_<external_id>.json, or schedule_<name>_<surname>.json without an
external_id. An existing file gets the new days appended after its entries (--replace starts
it over). The reply form is MOS 1-5, a yes/no question and a free-text question in Polish,
English and Norwegian, plus a Qualtrics link last with --qualtrics-url; --template gives your
own (a JSON list of "mos", "yes_no", "text", {"kind": "qualtrics", "url": ...} or complete
question objects). Every file is checked with upload-schedule's validator and all are written
together (temporary names, then renamed) or none is.
"""
EXAMPLES = """\
  longterm prepare_schedule participants.xlsx --videos ./videos --output-dir ./study
  longterm prepare_schedule participants.csv --videos ./videos --services A,B,C --days 14 \\
      --start 2026-12-20 --qualtrics-url https://survey.qualtrics.com/jfe/form/SV_x
  longterm prepare_schedule --extend ./study --videos ./videos_week2 --dry-run
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "participants",
        nargs="?",
        default=None,
        help="participants file, .xlsx or .csv (name,surname,phone[,external_id][,language])",
    )
    group = parser.add_argument_group("schedule")
    group.add_argument(
        "--extend",
        default=None,
        metavar="DIR",
        help="instead of a participants file: extend the schedule files in DIR (written back "
        "there unless --output-dir)",
    )
    group.add_argument(
        "--videos",
        default="./videos/",
        metavar="DIR",
        help="videos folder, one video per day in name order (default: ./videos/)",
    )
    group.add_argument(
        "--services",
        default=None,
        metavar="A,B,C",
        help="one folder per service inside --videos: videos_A/, videos_B/, ... "
        "(default: one service, A, with the videos of --videos)",
    )
    group.add_argument(
        "--start",
        type=_date,
        default=None,
        metavar="YYYY-MM-DD",
        help=f"first day (default: today + {START_OFFSET_DAYS} days; when appending, the day "
        "after the last entry if that is later)",
    )
    group.add_argument(
        "--days",
        type=positive_int,
        default=None,
        metavar="N",
        help="number of days (default: as many as there are videos)",
    )
    group.add_argument(
        "--template", default=None, metavar="FILE", help="reply form template (JSON list)"
    )
    group.add_argument(
        "--qualtrics-url",
        "--qualtrics_url",
        dest="qualtrics_url",
        default=None,
        metavar="URL",
        help="add a Qualtrics link as the last question (or fill the template's qualtrics)",
    )
    group.add_argument(
        "--language",
        default=DEFAULT_LANGUAGE,
        help=f"language of participants without one (default: {DEFAULT_LANGUAGE})",
    )
    group.add_argument(
        "--replace",
        action="store_true",
        help="replace existing files' entries (default: append the new days)",
    )
    group.add_argument(
        "--dry-run",
        "--dry_run",
        dest="dry_run",
        action="store_true",
        help="check and show the table, write nothing",
    )
    group.add_argument(
        "--config",
        default=None,
        metavar="PATH",
        help="config file whose timezone says which day is today (default: the lookup order of "
        "every command; Europe/Warsaw when there is no config file)",
    )
    add_output_arguments(parser)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _timezone(ctx: Context) -> ZoneInfo:
    """The study's timezone (config ``timezone``): "today + 10 days" is the study's today."""
    return ZoneInfo(str(ctx.config.defaults.get("timezone") or DEFAULT_TIMEZONE))


def run(ctx: Context) -> int:
    args = ctx.args
    if (args.participants is None) == (args.extend is None):
        raise UsageError("give a participants file or --extend DIR (one of them)")
    services = tuple(s.strip() for s in (args.services or "").split(",") if s.strip())
    if args.services is not None and not services:
        raise UsageError("--services needs names, e.g. A,B,C")
    extend = Path(args.extend) if args.extend else None
    output = ctx.output_dir
    if extend is not None and args.output_dir == ".":
        output = extend
    options = PrepareOptions(
        output_dir=output,
        videos=Path(args.videos),
        participants=Path(args.participants) if args.participants else None,
        extend=extend,
        services=services,
        start=args.start,
        default_start=today_in(_timezone(ctx)) + timedelta(days=START_OFFSET_DAYS),
        days=args.days,
        template=Path(args.template) if args.template else None,
        qualtrics_url=args.qualtrics_url,
        replace=args.replace,
        dry_run=args.dry_run,
        language=args.language,
    )
    if args.dry_run:
        summary = ctx.run_async(run_prepare_schedule(options))
    else:
        with ctx.locked([output]):
            summary = ctx.run_async(run_prepare_schedule(options))
    rows = summary.details.get("table", [])
    if rows:
        width = max(len(r["file"]) for r in rows)
        ctx.echo(f"{'file':<{width}}  {'action':<8}  {'days':>4}  first day   last day    entries")
        for r in rows:
            ctx.echo(
                f"{r['file']:<{width}}  {r['action']:<8}  {r['days_added']:>4}  "
                f"{r['first_day']}  {r['last_day']}  {r['entries']:>7}"
            )
    return ctx.render(summary)
