"""``longterm sandbox``: a local platform server (REST + SSH) for demos, dry runs and tests."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from ..config import mask_token
from ..errors import UsageError
from ..sandbox.server import ReadyInfo, SandboxOptions, serve
from .common import Context

NAME = "sandbox"
ORDER = 80
HELP = "run a local platform server (REST + SSH) with a synthetic study"
DESCRIPTION = (
    "Start a server that speaks the platform's protocol, quirks included, as docs/PROTOCOL.md of\n"
    "this project describes it: REST on --port, the media account's SSH/SFTP on --ssh-port, state\n"
    "in --data-dir (it survives restarts; a filled study is never filled twice). With --users it\n"
    "fills a deterministic synthetic study through the public API (its experimenter files,\n"
    "users.csv, users.xlsx and schedules/*.json, go to DATA_DIR/study; the same filler runs\n"
    "against any server as python -m longterm_sync.sandbox.fill). Once listening it writes\n"
    "DATA_DIR/config.toml with a [servers.sandbox] profile and, with --ready-file, a JSON file\n"
    "with url, token, ssh_host, ssh_port, ssh_user, key, known_hosts, media_dir and config. Runs\n"
    "until Ctrl-C or SIGTERM.\n"
    "\n"
    "Fault injection applies to GET requests only and is seeded by --seed: --latency-ms delays\n"
    "every answer, --error-rate answers that fraction with an HTML 500 or 502, --reset-rate\n"
    "aborts that fraction of connections halfway through the body (each rate 0 to 0.5)."
)
EXAMPLES = """\
  longterm sandbox --data-dir /tmp/lt --users 5 --days 8 --ready-file /tmp/lt/ready.json
  longterm sandbox --data-dir /tmp/lt --port 8000 --ssh-port 2222 --today 2024-03-01
  longterm sandbox --data-dir /tmp/lt-faulty --users 3 --error-rate 0.1 --reset-rate 0.05
"""


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {value!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    net = parser.add_argument_group("server")
    net.add_argument(
        "--data-dir",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder holding the database, media, keys and config.toml",
    )
    net.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    net.add_argument("--port", type=int, default=0, help="REST port (default 0: a free port)")
    net.add_argument("--ssh-port", type=int, default=0, help="SSH port (default 0: a free port)")
    net.add_argument(
        "--ready-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="write this JSON file (atomically) once listening",
    )
    net.add_argument(
        "--today",
        type=_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="pin the server's date (merge rule, synthetic study; default: today in Europe/Warsaw)",
    )
    study = parser.add_argument_group("synthetic study (first start of a data dir only)")
    study.add_argument("--users", type=int, default=0, help="participants (default 0: empty)")
    study.add_argument("--days", type=int, default=8, help="days of results (default 8)")
    study.add_argument(
        "--samples",
        type=int,
        default=1800,
        help="accelerometer/gyroscope samples per result (default 1800, ~250 KB)",
    )
    study.add_argument("--video-mb", type=float, default=1.0, help="size of each video (default 1)")
    study.add_argument(
        "--seed", type=int, default=1, help="seed of the study and faults (default 1)"
    )
    study.add_argument(
        "--orphans",
        type=int,
        default=1,
        help="accounts left without schedule by a crashed upload (default 1)",
    )
    study.add_argument(
        "--poison",
        type=int,
        default=0,
        help="participants with a poison row that makes their lists fail (default 0)",
    )
    faults = parser.add_argument_group("fault injection (GET requests only)")
    faults.add_argument("--latency-ms", type=float, default=0.0, help="delay before each answer")
    faults.add_argument(
        "--error-rate",
        type=float,
        default=0.0,
        help="fraction of GETs answered 500/502 HTML (0 to 0.5)",
    )
    faults.add_argument(
        "--reset-rate", type=float, default=0.0, help="fraction of GETs aborted mid-body (0 to 0.5)"
    )
    net.add_argument(
        "--config",
        default=None,
        metavar="PATH",
        help="accepted like every command's, but unused: the sandbox reads no config and "
        "writes its own profile to DATA_DIR/config.toml",
    )
    out = parser.add_argument_group("output")
    out.add_argument("-v", "--verbose", action="count", default=0, help="more detail on stderr")
    out.add_argument("-q", "--quiet", action="store_true", help="only errors")


def options_from_args(args: argparse.Namespace) -> SandboxOptions:
    return SandboxOptions(
        data_dir=args.data_dir,
        host=args.host,
        port=args.port,
        ssh_port=args.ssh_port,
        users=args.users,
        days=args.days,
        samples=args.samples,
        video_mb=args.video_mb,
        seed=args.seed,
        today=args.today,
        orphans=args.orphans,
        poison=args.poison,
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        reset_rate=args.reset_rate,
        ready_file=args.ready_file,
    ).validate()


def describe(info: ReadyInfo) -> list[str]:
    """The ready file in words; the token masked (the file holds it in full)."""
    lines = [
        f"sandbox platform listening at {info.url}",
        f"  operator token {mask_token(info.token)} (in full in {info.config})",
    ]
    if info.ssh_port:
        lines.append(
            f"  media over SSH: {info.ssh_user}@{info.ssh_host}:{info.ssh_port}, "
            f"folder {info.media_dir}, key {info.key}, known_hosts {info.known_hosts}"
        )
    else:
        lines.append("  media over SSH: not available")
    if info.study:
        s = info.study
        lines.append(
            f"  study: {s.get('users')} participants, {s.get('days')} days, today {s.get('today')}"
            f", seed {s.get('seed')}; experimenter files in {info.data_dir}/study"
        )
    lines.append(f"  use it: longterm <command> --config {info.config} --server sandbox")
    lines.append("  stop with Ctrl-C")
    return lines


def run(ctx: Context) -> int:
    options = options_from_args(ctx.args)

    def on_ready(info: ReadyInfo) -> None:
        for line in describe(info):
            ctx.echo(line)
        ctx.stdout.flush()

    try:
        return ctx.run_async(serve(options, on_ready))
    except KeyboardInterrupt:
        return 0
    except UsageError:
        raise
