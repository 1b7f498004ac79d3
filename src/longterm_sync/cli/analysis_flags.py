"""Flags the analysis commands share: where results come from (``--from`` a folder or the
server with the selection flags) and ``--xlsx``. Not a command itself (no ``NAME``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from ..pipelines.analysis import Source
from .common import Context, add_output_arguments, add_server_arguments
from .selection import SELECTION_HELP, add_selection_arguments, selection_for

LOCAL_ONLY = "http://127.0.0.1"
SOURCE_HELP = f"""\
Results come from --from DIR (download-results' results_*.json, or a backup's
text_files/latest/; results_all.json when there are no per-participant files), read item by
item so a file of hundreds of MB is never loaded whole; or, without --from, from --server.
With --from no server profile is needed (its timezone and salt are used when there is one).
The selection flags pick participants and ranges in both cases (in a folder, a participant
named by a flag and absent from it is a failure). A truncated or corrupt file is named with
its line; what was read before it is still used and the run exits 1.

{SELECTION_HELP}"""


def add_source_arguments(
    parser: argparse.ArgumentParser, *, xlsx: str | None, output_dir: bool = True
) -> None:
    add_server_arguments(parser)
    group = parser.add_argument_group("input")
    group.add_argument(
        "--from",
        dest="source_dir",
        default=None,
        metavar="DIR",
        help="read results from this folder instead of the server",
    )
    if xlsx:
        group.add_argument("--xlsx", action="store_true", help=xlsx)
    add_selection_arguments(parser)
    add_output_arguments(parser, output_dir=output_dir)


def source_for(ctx: Context) -> Source:
    """The source; with ``--from`` a server profile is optional (only its timezone and salt
    are used): without a usable one, the config's defaults stand in."""
    folder = ctx.args.source_dir
    if folder:
        folder_profile(ctx)
    return Source(selection=selection_for(ctx), folder=Path(folder) if folder else None)


def folder_profile(ctx: Context) -> None:
    """Reading a folder needs no server profile (only its timezone and salt are used):
    without a usable one, the config's defaults stand in."""
    try:
        ctx.profile  # noqa: B018 - resolves (and caches) the profile
    except ConfigError:
        # an address needs no [servers] entry; nothing is ever sent to it
        ctx.__dict__["profile"] = ctx.config.profile(LOCAL_ONLY)


def print_table(ctx: Context, lines: list[str]) -> None:
    for line in lines:
        ctx.echo(line)
