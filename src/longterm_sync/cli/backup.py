"""``longterm backup``: the nightly backup, and verify / list / restore / status of it."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from ..errors import ExitCode, UsageError
from ..pipelines.backup import DEFAULT_DEST, MEDIA, BackupOptions, run_backup
from ..summary import Summary
from ..timeutil import WARSAW, parse_datetime
from .argtypes import positive_float, whole
from .common import Context, add_output_arguments, add_server_arguments
from .reporters import ItemBar

NAME = "backup"
ORDER = 60
HELP = "back the server up into one folder, incrementally; verify, list, restore, status"
ACTIONS = ("run", "verify", "list", "restore", "status")
DESCRIPTION = f"""\
Back up everything the platform holds into --dest_location (default: ./{DEFAULT_DEST}/),
meant to run every night from cron or a systemd timer. Nothing in the backup is ever deleted.

  media_files/               the server's videos, md5-verified; a video gone from the server
                             stays (and is listed); a changed one is fetched and the old copy
                             moved to media_versions/<run time>/
  text_files/store.sqlite3   every distinct record (schedule, result, feedback, missing-video
                             report) stored once, compressed; one snapshot per run listing,
                             per file, the records it holds
  text_files/latest/         the newest snapshot as files, exactly as download-results and
                             download-schedule --mode json write them (switched atomically)
  backup_log.txt             one block per run
  report/                    with --report: the study's HTML site (longterm report),
                             rebuilt from latest/ after every run that committed its snapshot

A participant backed up before is asked only for rows dated after its newest backed-up row
minus --lookback-days (phones upload late); every --full-every days, or with --full, every
participant is fetched whole and one unfiltered pass keeps rows no participant filter returns
(orphan accounts). Schedules and missing-video reports are fetched whole every night.

ACTIONS
  run (default)  one backup run
  verify         re-hash every stored record and video against what was recorded, and run
                 SQLite's integrity check; exit 1 on any difference
  list           the snapshots: date, kind, records added, bytes fetched, bytes stored
  restore        write the files of the snapshot in force at --as-of into --to
  status         exit 0 when the last successful run is newer than --max-age-hours, else one
                 line and exit 1 (for monitoring)"""
EXAMPLES = """\
  longterm backup --server=prod --dest_location=/srv/longterm_backup
  longterm backup --server=prod --full                      # reconcile everything now
  longterm backup --server=prod --report       # and rebuild the HTML site in DIR/report/
  longterm backup verify --dest_location=/srv/longterm_backup
  longterm backup list --dest_location=/srv/longterm_backup
  longterm backup restore --as-of 2024-03-01T06:00 --to ./restored
  longterm backup status --max-age-hours 30 || mail -s "backup is late" me@example.org
  python scripts/backup.py --server=prod --key ~/.ssh/media@my.custom.server \\
      --dest_location=./longterm_backup/
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        nargs="?",
        default="run",
        choices=ACTIONS,
        metavar="ACTION",
        help="run (default), verify, list, restore or status; see ACTIONS",
    )
    add_server_arguments(parser)
    group = parser.add_argument_group("backup")
    group.add_argument(
        "--dest_location",
        "--dest-location",
        dest="dest",
        type=Path,
        default=DEFAULT_DEST,
        metavar="DIR",
        help=f"the backup's folder (default: ./{DEFAULT_DEST}/)",
    )
    group.add_argument(
        "--lookback-days",
        "--lookback_days",
        type=whole(0),
        default=14,
        metavar="N",
        help="re-ask each participant for this many days before its newest backed-up row "
        "(default: 14)",
    )
    group.add_argument(
        "--full-every",
        "--full_every",
        type=whole(1),
        default=7,
        metavar="DAYS",
        help="fetch everything again when the last full pass is older (default: 7)",
    )
    group.add_argument("--full", action="store_true", help="make this run a full pass")
    group.add_argument(
        "--no-videos", action="store_true", help="records only; leave media_files/ as it is"
    )
    group.add_argument(
        "--accept-new-host-key",
        action="store_true",
        help="trust and record an unknown SSH host key (like OpenSSH accept-new); a changed "
        "key is always an error",
    )
    group.add_argument(
        "--report",
        action="store_true",
        help="after the run, rebuild the study's HTML site in DIR/report/ from latest/ "
        "(see longterm report --help; only new viewings' figures are drawn)",
    )
    group = parser.add_argument_group("restore and status")
    group.add_argument(
        "--as-of",
        default=None,
        metavar="DATETIME",
        help="restore: the snapshot in force at this time (ISO 8601, Warsaw time unless an "
        "offset is given; default: the latest)",
    )
    group.add_argument(
        "--to", type=Path, default=None, metavar="DIR", help="restore: a new or empty folder"
    )
    group.add_argument(
        "--max-age-hours",
        type=positive_float,
        default=30.0,
        metavar="H",
        help="status: how old the last successful run may be (default: 30)",
    )
    add_output_arguments(parser, output_dir=False)


def run(ctx: Context) -> int:
    action = ctx.args.action
    if action == "run":
        return _run(ctx)
    from ..backup import commands

    dest: Path = ctx.args.dest
    if action == "verify":
        summary = commands.verify(dest)
    elif action == "list":
        summary = commands.list_snapshots(dest)
        for line in commands.snapshot_table(summary):
            ctx.echo(line)
    elif action == "restore":
        if ctx.args.to is None:
            raise UsageError("restore needs --to DIR", hint="a new or empty folder")
        with ctx.locked([ctx.args.to]):
            summary = commands.restore(dest, _as_of(ctx.args.as_of), ctx.args.to)
    else:
        summary = commands.status(dest, timedelta(hours=ctx.args.max_age_hours))
        if not summary.ok and not ctx.args.json:
            print(f"backup status: {summary.failures[0].reason}", file=ctx.stdout)
            return int(ExitCode.PARTIAL)
    return ctx.render(summary)


def _as_of(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        return parse_datetime(value, WARSAW)
    except ValueError as exc:
        raise UsageError(f"--as-of: {exc}") from None


def _run(ctx: Context) -> int:
    profile = ctx.profile
    profile.require_token()
    args = ctx.args
    options = BackupOptions(
        dest=args.dest,
        lookback_days=args.lookback_days,
        full_every_days=args.full_every,
        full=args.full,
        videos=not args.no_videos,
        accept_new_host_key=args.accept_new_host_key,
        report=args.report,
    )
    # One run per destination (a second stops with exit status 5, or waits with --wait);
    # holding it, the temporary files of killed runs are removed, video partials kept.
    bar = partial(ItemBar, "backing up", NAME)
    with ctx.locked([args.dest], deep=[args.dest / MEDIA]), ctx.reporting(bar) as reporter:
        summary: Summary = ctx.run_async(
            run_backup(profile, ctx.config.limits, options, reporter=reporter)
        )
    return ctx.render(summary)
