"""``longterm report``: the study at a glance, as a static HTML site."""

from __future__ import annotations

import argparse
from datetime import datetime, time
from pathlib import Path

from ..pipelines.report import ReportOptions, run_report
from .analysis_flags import folder_profile
from .argtypes import seconds_margin
from .common import Context, add_output_arguments, add_server_arguments
from .selection import SELECTION_HELP, add_selection_arguments, selection_for
from .user_activity import _date, _days, _question

NAME = "report"
ORDER = 45
HELP = "a static HTML site of the study: adherence heatmap, needs-attention list, participants"
DESCRIPTION = f"""\
Write a static HTML site into --html DIR (index.html is the overview; one page per
participant in p/), from --from DIR (a backup's text_files/latest/, or a folder that
download-results and download-schedule wrote) or, without --from, from the server (results,
feedback, schedules and missing-video reports are downloaded into a temporary folder inside
DIR first; with --from no server profile is needed). Open DIR/index.html in a browser:
relative links, inline CSS, no script, nothing fetched from the network, so the folder works
from disk or a USB stick.

Overview: the adherence heatmap of participants x days (the last --days days ending --until),
each cell exactly the user_activity cell of that day (same text, same colours as its --xlsx
workbook, with the legend); viewings and answered viewings per day; answer distributions per
question; and a needs-attention list:
  no recent viewing   no viewing for --alert-days days while a schedule entry was due
  face down, sped up  2 or more such viewings in the last 7 days
  missing video       missing-video reports of the last 7 days
  new phone           a change of brand, model or OS version in the last 7 days
Participant pages: the sensor figure of every viewing (thumbnails linking to full size, the
figure of download-plot-gyro-sequence), feedback comments, phones, missing-video reports,
and the schedule with what was watched against what was due.

A rebuild draws only the figures of new or changed viewings: figures are cached in DIR/figures
under the hash of their result's content, and those no page uses any more are removed.
Participants appear by external_id only, and by the alias of --aliases FILE (lines
'external_id,alias', a file the experimenter keeps on this machine).

{SELECTION_HELP}"""
EXAMPLES = """\
  longterm report --html ./study_site --from /srv/longterm_backup/text_files/latest
  longterm report --html ./study_site --server=prod --excel_time=users_prod_all_2022_04.xlsx
  longterm report --html ./site --from ./downloads --days 90 --aliases ~/study/aliases.csv
  longterm backup --server=prod --dest_location=/srv/longterm_backup --report   # nightly
"""


def _alert_days(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {value!r}") from None
    if not 1 <= number <= 365:
        raise argparse.ArgumentTypeError(f"must be 1..365 days: {value!r}")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_arguments(parser)
    group = parser.add_argument_group("report")
    group.add_argument(
        "--html",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder of the site (created; rebuilt in place, its figure cache kept)",
    )
    group.add_argument(
        "--from",
        dest="source_dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="read downloaded files from this folder instead of the server",
    )
    group.add_argument(
        "--days",
        type=_days,
        default=30,
        metavar="N",
        help="days in the heatmap, ending --until (default: 30)",
    )
    group.add_argument(
        "--until",
        type=_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="last day of the heatmap and of the alerts (default: today in the profile's timezone)",
    )
    group.add_argument(
        "--alert-days",
        "--alert_days",
        dest="alert_days",
        type=_alert_days,
        default=3,
        metavar="N",
        help="list a participant without a viewing for N days (default: 3)",
    )
    group.add_argument(
        "--aliases",
        type=Path,
        default=None,
        metavar="FILE",
        help="CSV 'external_id,alias' shown beside the ids (kept local; never names or phones)",
    )
    group.add_argument(
        "--sec_margin",
        type=seconds_margin,
        default=3.0,
        metavar="SEC_MARGIN",
        help="± seconds around the video's duration that still count as 'ok' (default: 3)",
    )
    group.add_argument(
        "--question",
        type=_question,
        default="q2",
        metavar="ID",
        help="optional_id of the question whose answer the heatmap shows (default: q2)",
    )
    group.add_argument(
        "--title", default="Long Term Study", metavar="TEXT", help="the overview's heading"
    )
    group.add_argument(
        "--no-figures", action="store_true", help="do not draw sensor figures (faster)"
    )
    add_selection_arguments(parser)
    add_output_arguments(parser, output_dir=False)


def run(ctx: Context) -> int:
    args = ctx.args
    if args.source_dir is not None:
        folder_profile(ctx)
    now = None
    if args.until is not None:
        now = datetime.combine(args.until, time(23, 59, 59), tzinfo=ctx.profile.tz)
    options = ReportOptions(
        site=args.html,
        selection=selection_for(ctx, now=now),
        source_dir=args.source_dir,
        days=args.days,
        until=args.until,
        alert_days=args.alert_days,
        sec_margin=args.sec_margin,
        question=args.question,
        aliases=args.aliases,
        title=args.title,
        figures=not args.no_figures,
    )
    if options.source_dir is None:
        ctx.profile.require_token()
    with ctx.locked([args.html]):
        summary = ctx.run_async(run_report(ctx.profile, ctx.config.limits, options))
    code = ctx.render(summary)
    ctx.echo(f"open {Path(summary.details.get('index', args.html)).resolve().as_uri()}")
    return code
