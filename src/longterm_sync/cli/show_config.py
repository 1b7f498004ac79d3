"""``longterm config``: show which config file, profile and limits a run would use."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import orjson

from ..config import USER_CONFIG, ServerProfile, mask_token
from ..config_init import write_initial_config
from ..ids import ORIGINAL_SALT
from .common import Context, add_output_arguments, add_server_arguments

NAME = "config"
ORDER = 90
HELP = "show the resolved server profile (token masked) and limits"
DESCRIPTION = (
    "Resolve --server/--token/--key/--config exactly as every other command does and print the\n"
    "result, so a profile can be checked before a long run. Tokens are shown masked.\n"
    "\n"
    "--init [PATH] writes a commented starter config with dev and prod profiles (mode 0600;\n"
    "default ~/.config/longterm/config.toml, found from any folder; an existing file is never\n"
    "overwritten). Set the url of each profile in it, and TOKEN_DEV / TOKEN_PROD in the\n"
    "environment or a .env file."
)
EXAMPLES = """\
  longterm config --server=prod
  longterm config --config ./config.toml --server=https://my.custom.server --token=...
  longterm config --init                  # ~/.config/longterm/config.toml
  longterm config --init ./config.toml    # a study folder's own config (and its sub-folders')
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--init",
        nargs="?",
        const=str(USER_CONFIG),
        default=None,
        metavar="PATH",
        help="write a commented starter config with dev/prod profiles to PATH (default: "
        f"{USER_CONFIG}), mode 0600, and stop",
    )
    add_server_arguments(parser)
    add_output_arguments(parser, output_dir=False, lock=False)


def run(ctx: Context) -> int:
    if ctx.args.init is not None:
        path = write_initial_config(Path(ctx.args.init))
        ctx.echo(f"wrote {path} (mode 600): set url in [servers.dev] and [servers.prod]")
        return 0
    config = ctx.config
    profile = ctx.profile
    data = {
        "config": str(config.path) if config.path else None,
        "profiles": sorted(config.servers),
        "server": profile.name,
        "url": profile.url,
        "token": mask_token(profile.token),
        "token_source": profile.token_source,
        "ssh": f"{profile.ssh_user}@{profile.ssh_host}:{profile.ssh_port}",
        "key": str(profile.key),
        "known_hosts": str(profile.known_hosts),
        "media_dir": profile.media_dir,
        "timezone": profile.timezone,
        "salt": _describe_salt(profile),
        "limits": dataclasses.asdict(config.limits),
        "warnings": list(config.warnings),
    }
    if ctx.args.json:
        data["searched"] = [str(p) for p in config.searched]
        print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode(), file=ctx.stdout)
        return 0
    for line in human_lines(data, config.where()):
        ctx.echo(line)
    return 0


def human_lines(data: dict[str, Any], where: str) -> list[str]:
    """The values as a person reads them: no ``None``, no Python lists, limits one a line."""
    lines = []
    for key, value in data.items():
        if key == "limits":
            lines.append("limits:")
            lines.extend(f"  {name} = {limit}" for name, limit in value.items())
        elif key == "config":
            lines.append(f"config: {value or where}")
        elif key == "profiles":
            lines.append(f"profiles: {', '.join(value) or 'none'}")
        elif key != "warnings":
            lines.append(f"{key}: {value if value not in (None, '') else '-'}")
    return lines


def _describe_salt(profile: ServerProfile) -> str:
    """Whether ids are hashed with the original's public salt; a custom salt is never shown."""
    if profile.salt_is_original:
        return (
            f"{ORIGINAL_SALT}, the public default of the original scripts "
            f"({profile.salt_source}); matches participants they uploaded"
        )
    if not profile.salt:
        return f"empty ({profile.salt_source}); not the salt of the original scripts"
    return f"custom, not the public default of the original scripts (from {profile.salt_source})"
