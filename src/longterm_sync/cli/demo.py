"""``longterm demo``: what ``make demo`` runs; a sandbox study and a full backup of it."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..config import mask_token
from ..pipelines.demo import DemoOptions, run_demo
from ..sandbox.server import ReadyInfo
from .argtypes import positive_int
from .common import MASK_FILTER, Context, add_output_arguments

NAME = "demo"
ORDER = 90
HELP = "sandbox study, full backup, a new day, nightly backup, verify (what `make demo` runs)"
DESCRIPTION = """\
Start the sandbox platform in this process (REST and SFTP on free loopback ports, state in
DIR/server), fill it with a deterministic synthetic study on the first run, then run the
main job there is against it, `longterm backup`, into DIR/backup (layout: see `longterm
backup --help`): a first backup, then the sandbox gains one day of results for every
participant, then the nightly backup (incremental: only the lookback window is asked for),
then `longterm backup verify`. Both runs' figures are printed side by side (records fetched
and added, MB fetched and stored, time). Each backup run rebuilds the study's HTML site
(`backup --report`) in DIR/backup/report/; its path is printed last.

Run it again and the sandbox gains another day; --fresh starts over with a new study.
Nothing leaves the machine: the sandbox listens on 127.0.0.1 only."""
EXAMPLES = """\
  make demo
  longterm demo --dir /tmp/lt-demo --users 20 --days 60
  longterm demo --fresh --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("demo")
    group.add_argument(
        "--dir",
        type=Path,
        default=Path(".demo"),
        metavar="DIR",
        help="folder of the sandbox's state and of the backup (default: ./.demo)",
    )
    group.add_argument("--users", type=positive_int, default=6, help="participants (default 6)")
    group.add_argument("--days", type=positive_int, default=14, help="days of results (default 14)")
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
    ctx.echo()
    for line in side_by_side(summary.details.get("runs", [])):
        ctx.echo(line)
    ctx.echo(
        f"\nbackup in {options.backup_dir} (latest files in "
        f"{options.backup_dir / 'text_files' / 'latest'}); server state in {options.server_dir} "
        f"(config {options.server_dir / 'config.toml'}). Run again: the sandbox gains another "
        "day and both runs are nightly."
    )
    site = summary.details.get("report")
    if site:
        ctx.echo(f"\nthe study's HTML site: {Path(site).resolve()}")
    return code


def side_by_side(runs: list[dict[str, object]]) -> list[str]:
    """The two backup runs' figures in two columns."""
    if len(runs) != 2:
        return []
    a, b = runs
    out = [f"{'':18}{'first run':>14}{'after a new day':>18}"]
    for key in a:
        out.append(f"{key:18}{a[key]!s:>14}{b[key]!s:>18}")
    return out
