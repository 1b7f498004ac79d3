"""``longterm config``: show which config file, profile and limits a run would use."""

from __future__ import annotations

import argparse
import dataclasses

import orjson

from ..config import mask_token
from .common import Context, add_output_arguments, add_server_arguments

NAME = "config"
ORDER = 90
HELP = "show the resolved server profile (token masked) and limits"
DESCRIPTION = (
    "Resolve --server/--token/--key/--config exactly as every other command does and print the\n"
    "result, so a profile can be checked before a long run. Tokens are shown masked."
)
EXAMPLES = """\
  longterm config --server=prod
  longterm config --config ./config.toml --server=https://my.custom.server --token=...
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_arguments(parser)
    add_output_arguments(parser, output_dir=False)


def run(ctx: Context) -> int:
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
        "salt": "set" if profile.salt else "empty (unsalted external_id)",
        "limits": dataclasses.asdict(config.limits),
        "warnings": list(config.warnings),
    }
    if ctx.args.json:
        print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode(), file=ctx.stdout)
        return 0
    for key, value in data.items():
        if key == "limits":
            ctx.echo("limits:")
            for name, limit in value.items():  # type: ignore[union-attr]
                ctx.echo(f"  {name} = {limit}")
        elif key != "warnings":
            ctx.echo(f"{key}: {value}")
    return 0
