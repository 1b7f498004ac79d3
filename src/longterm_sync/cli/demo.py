"""``longterm demo``: what ``make demo`` runs; a sandbox study and a full backup of it."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..config import mask_token
from ..pipelines.demo import DemoOptions, run_demo
from ..sandbox.server import ReadyInfo
from .common import MASK_FILTER, Context, add_output_arguments

NAME = "demo"
ORDER = 90
HELP = "start the sandbox with a synthetic study and back it up (what `make demo` runs)"
DESCRIPTION = """\
Start the sandbox platform in this process (REST and SFTP on free loopback ports, state in
DIR/server), fill it with a deterministic synthetic study on the first run, then run the
most complete job there is against it, a full backup, into DIR/backup:

  schedules/  schedule_{external_id}.json per participant (download-schedule --mode json)
  videos/     the media folder, every file md5-verified  (download-schedule --mode video)
  results/    results_*.json and results_feedback_*.json (download-results)
  reports/    user_feedback.csv, user_activity.csv and user_activity.xlsx

It prints one summary line per job and a total. Run it again for an incremental backup
(unchanged videos are skipped); --fresh starts over with a new study. Nothing leaves the
machine: the sandbox listens on 127.0.0.1 only."""
EXAMPLES = """\
  make demo
  longterm demo --dir /tmp/lt-demo --users 20 --days 60
  longterm demo --fresh --json
"""


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value!r}")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("demo")
    group.add_argument(
        "--dir",
        type=Path,
        default=Path(".demo"),
        metavar="DIR",
        help="folder of the sandbox's state and of the backup (default: ./.demo)",
    )
    group.add_argument("--users", type=_positive, default=6, help="participants (default 6)")
    group.add_argument("--days", type=_positive, default=14, help="days of results (default 14)")
    group.add_argument(
        "--video-mb", type=float, default=2.0, help="size of each video in MB (default 2)"
    )
    group.add_argument("--seed", type=int, default=1, help="seed of the study (default 1)")
    group.add_argument(
        "--fresh", action="store_true", help="delete DIR/server and DIR/backup first"
    )
    group.add_argument(
        "--config",
        default=None,
        metavar="PATH",
        help="take [limits] from this config file (default: the lookup order of every "
        "command; the server profile is always the sandbox's own)",
    )
    add_output_arguments(parser, output_dir=False, lock=False)


def run(ctx: Context) -> int:
    args = ctx.args
    if args.verbose < 1:  # the sandbox's own chatter (its fill, the deliberate orphan's 500)
        logging.getLogger("longterm_sync.sandbox").setLevel(logging.WARNING)
    options = DemoOptions.create(
        args.dir,
        fresh=args.fresh,
        limits=ctx.config.limits,
        **{name: getattr(args, name) for name in ("users", "days", "video_mb", "seed")},
    )

    def on_ready(info: ReadyInfo) -> None:
        MASK_FILTER.secrets.add(info.token)
        study = info.study or {}
        ctx.echo(
            f"sandbox at {info.url} (token {mask_token(info.token)}), SFTP on port "
            f"{info.ssh_port}: {study.get('users')} participants, {study.get('days')} days"
        )
        ctx.echo(f"backing up into {options.backup_dir} ...")

    summary = ctx.run_async(run_demo(options, on_ready))
    code = ctx.render(summary)
    ctx.echo(
        f"backup in {options.backup_dir}; server state in {options.server_dir} "
        f"(config {options.server_dir / 'config.toml'}). Run again for an incremental backup."
    )
    return code
