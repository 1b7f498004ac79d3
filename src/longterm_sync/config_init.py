"""``longterm config --init``: a starter config file a person fills in, never one overwritten.

The file holds no token (``token_env`` points to ``TOKEN_DEV``/``TOKEN_PROD``, read from the
environment or ``.env`` as the old scripts did) but is created with mode 0600 anyway: people
paste tokens into config files, and one readable by others draws a warning at every run.
"""

from __future__ import annotations

from pathlib import Path

from .atomic import atomic_writer
from .config import USER_CONFIG
from .errors import UsageError

TEMPLATE = """\
# longterm-sync configuration, written by `longterm config --init`.
#
# Found as: --config PATH, $LONGTERM_CONFIG, config.toml in the current folder or the nearest
# parent folder, ~/.config/longterm/config.toml. `longterm config --server NAME` shows what a
# run would use.
#
# `--server NAME` picks a [servers.NAME] profile. Any other --server value is the server's
# address: https://host[:port] as given; host[:port] without a scheme means https:// (http://
# for localhost and 127.x.x.x); --token, --key and --ssh-port then apply.

# Salt for external_id = sha256(salt + name + surname + phone); empty = the original
# scripts' unsalted hash. Prefer salt_env (an environment variable) to salt in this file.
# salt_env = "LONGTERM_SALT"
timezone = "Europe/Warsaw"

[servers.dev]
# The development server's address: set it.
# url = "https://dev.my.custom.server"
# The REST token is read from this environment variable (or ./.env, or .env beside this
# file); `token = "..."` here works too, but keep this file private (chmod 600).
token_env = "TOKEN_DEV"
# ssh_user = "media"                            # media account for videos (default: media)
# ssh_host = "dev.my.custom.server"             # default: the URL's host
# ssh_port = 22                                 # or --ssh-port
# key = "~/.ssh/media@dev.my.custom.server"     # default: ~/.ssh/media@<ssh_host>
# known_hosts = "~/.ssh/known_hosts"            # host keys are always verified
# media_dir = "media/videos"                    # below the media account's home

[servers.prod]
# The production server's address: set it. Uploads to prod ask before sending.
# url = "https://my.custom.server"
token_env = "TOKEN_PROD"
# ssh_port = 22
# key = "~/.ssh/media@my.custom.server"

# [limits]: concurrency, windows and retries; the defaults suit the platform. See the
# documented example config.toml of longterm-sync for every setting and what raising it costs.
# [limits]
# rest_concurrency = 8
# window_days = 31
"""


def write_initial_config(path: Path | None = None) -> Path:
    """Write :data:`TEMPLATE` to ``path`` (default: the user's config), mode 0600."""
    target = (path or USER_CONFIG).expanduser()
    if target.is_dir():
        target = target / "config.toml"
    if target.exists():
        raise UsageError(
            f"{target} already exists; not overwritten",
            hint="edit it, or remove it first, or give another PATH to --init",
        )
    with atomic_writer(target, permissions=0o600) as fh:
        fh.write(TEMPLATE.encode("utf-8"))
    return target
