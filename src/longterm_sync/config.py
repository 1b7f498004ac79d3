"""Config profiles (``config.toml``), concurrency limits, and how a ``--server`` value resolves.

Lookup order for the file: ``--config PATH``, ``$LONGTERM_CONFIG``, ``config.toml`` in the
current folder or the nearest parent folder that has one (a study's participant sub-folder
finds the study's config, as the original workflow ``cd study/user_001`` expects),
``~/.config/longterm/config.toml``. Without any file the built-in ``dev`` and ``prod``
profiles exist but have no URL, so ``--server=URL`` still works as in the original scripts;
asking for a profile without a URL names every path looked at and ``longterm config --init``.

``--server`` is a profile name when such a profile exists; otherwise it is the server's
address, with one rule (:func:`server_url`): a value with a scheme is used as it is; without
one, ``https://`` is assumed, except for a loopback host (``localhost``, ``127.x.x.x``,
``[::1]``), which gets ``http://`` (a local sandbox has no TLS). ``host:port`` is the REST
port; the SSH port is ``--ssh-port`` (or the profile's ``ssh_port``, default 22).

Tokens never appear in a ``repr`` or a message: use :func:`mask_token`.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError
from .ids import ORIGINAL_SALT

DEFAULT_SERVER = "dev"
DEFAULT_TIMEZONE = "Europe/Warsaw"
DEFAULT_MEDIA_DIR = "media/videos"
DEFAULT_SSH_USER = "media"
CONFIG_ENV = "LONGTERM_CONFIG"
SALT_ENV = "LONGTERM_SALT"


def mask_token(token: str | None) -> str:
    """``d2f1...7594``: enough to tell two tokens apart, useless to an onlooker."""
    if not token:
        return "<none>"
    if len(token) < 12:
        return "*" * len(token)
    return f"{token[:4]}...{token[-4:]}"


MAX_SFTP_BLOCK = 261120  # the largest read or write OpenSSH's sftp-server accepts
MIN_SSH_PACKET = 32768  # RFC 4254: every implementation handles packets this large

# -- limits derived from the settings, not worth a setting of their own ---------------------
# Each is a cost measured or reasoned once; changing one means re-running ``make bench``.

PARSE_SLOTS = 2
"""Answers parsed at once (decoded, reduced, re-encoded), whatever ``rest_concurrency``
fetches: orjson and msgspec hold the GIL, so more buys no speed, and parsed rows take
several times the memory of their JSON (download-results, user_activity, the analysis
tables, the backup)."""

WINDOW_READAHEAD = 2
"""Windows download-results holds beyond ``rest_concurrency`` (see
:attr:`Limits.window_slots`): while the head window of a participant is being written, the
next requests are already in flight, so no connection idles on the disk."""

DOWNLOAD_BACKLOG = 32 << 20
"""Bytes of one video download allowed to wait for the disk before reading pauses. Memory
bound: this times the files in flight (``sftp_transfers`` per connection)."""

COMMIT_THREADS = 16
"""Threads that fsync and install downloaded videos. fsync waits on the disk, not the CPU,
and concurrent fsyncs share one journal commit: with many small files, more threads than
asyncio's default executor (cores + 4) measured faster."""

SMALL_FILE = 1 << 20
"""Videos up to this size are latency-bound: they use the small-file allowance
(:meth:`Limits.small_allowance`) instead of a ``sftp_transfers`` slot."""
SMALL_FACTOR = 4
"""The small-file allowance is at least this many times ``sftp_transfers``."""
SMALL_NOMINAL = 256 << 10
"""The size the small-file allowance assumes (the platform's short clips and thumbnails):
``ssh_window`` / this many files fill one connection's window."""
SMALL_MAX = 256
"""Upper bound on small files in flight per connection (each is a task and three requests)."""
SERVER_WINDOW = 2 << 20
"""OpenSSH's receive window for a session channel (fixed at 2 MiB, not tunable by a client):
on one connection an upload moves at most this much per round trip (50 MB/s at 40 ms)."""
UPLOAD_IN_FLIGHT = 2 * SERVER_WINDOW
"""Bytes of writes one uploading file keeps in flight (at most ``sftp_max_requests``). The
server takes at most its window per connection per round trip; more only waits in our send
buffer: with 128 writes of 255 KiB per file, an upload of 8 x 256 MiB at 40 ms held 823 MB."""
MAX_UPLOAD_CONNECTIONS = 4
"""Each upload connection is one more sshd process and login on the server."""


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Every concurrency and retry limit, with what raising it costs.

    The few limits derived from these rather than set (parse slots, window read-ahead, the
    download backlog, commit threads, the small-file allowance) are the named constants
    just above, each with its reason; nothing else in the package bounds memory or
    parallelism on its own.

    Read from ``[limits]`` in ``config.toml``; unknown keys are an error so a typo is not
    silently ignored.
    """

    rest_concurrency: int = 8
    """HTTP requests in flight at once. Each holds one TCP connection (the platform closes
    the connection after every response) and one response body in memory, and costs the
    server a gunicorn worker: do not exceed the server's worker count."""

    window_days: int = 31
    """Days per results/feedback request. Bounds the size of one response (memory) however
    long the study runs; smaller windows mean more requests."""

    retries: int = 5
    """Extra attempts for a GET after a connection error, timeout, reset or 5xx."""

    retry_max_seconds: float = 120.0
    """Total time one request may spend retrying (backoff included) before it fails."""

    retry_base_delay: float = 0.5
    """First backoff delay in seconds; doubles each attempt, with full jitter."""

    connect_timeout: float = 15.0
    """Seconds to establish a TCP/TLS connection."""

    idle_timeout: float = 120.0
    """Seconds without a single byte from the server before a request counts as timed out
    (and is retried): a server that accepts and never answers costs this, not read_timeout."""

    read_timeout: float = 600.0
    """Seconds for a whole response; a large unfiltered list on the real server is slow."""

    max_response_mb: int = 64
    """Largest answer taken in memory, in MB. A results or feedback window whose answer is
    larger is split in two and fetched again, down to one day (then that participant fails),
    so memory stays bounded whatever the server sends. Raising it raises peak memory."""

    sftp_connections: int = 1
    """SSH connections to the media account. Each is one sshd process on the server and one
    encrypted stream; in one Python process the event loop, not the socket, is the limit."""

    sftp_transfers: int = 4
    """Large files in flight per SSH connection. A download may ask for ``sftp_max_requests
    * block size`` per file (about 32 MiB at the defaults), but no more than ``ssh_window``
    is in flight per connection whatever this is; an upload keeps :data:`UPLOAD_IN_FLIGHT`
    (4 MiB) of writes per file, on ``upload_connections()`` connections. Files of at most
    1 MiB are latency-bound and have their own allowance: as many as fit in ``ssh_window``
    at once (64 files of 256 KiB at 16 MiB), never fewer than 4 x this, so a long round
    trip is covered by files in flight instead of paid per file."""

    sftp_block_size: int = 0
    """SFTP read/write block size in bytes; 0 keeps asyncssh's default (OpenSSH's maximum
    read, 261120 bytes). A flat 256 KiB splits every request and was measured slower; more
    than 261120 makes OpenSSH's sftp-server drop uploads, so it is refused."""

    sftp_max_requests: int = 128
    """Parallel SFTP requests per file transfer (pipelining depth)."""

    sftp_processes: int = 2
    """Processes sharing a download of 64 MiB or more (each with its own
    ``sftp_connections``). One asyncio process is bounded by its event loop, so a second one
    adds throughput when a core is free (measured 8 % faster for big files, 7 % for small
    ones, on 2 busy cores); each costs one more Python process (~60 MB) and SSH login. More
    than the CPU cores is wasted."""

    checkers: int = 8
    """Cheap checks in parallel (stat, md5 of a local file, reading a remote sidecar)."""

    ssh_window: int = 16 << 20
    """SSH channel receive window in bytes: how much the server may send on one connection
    before it waits for our acknowledgement, so one connection downloads at most this much
    per round trip (16 MiB: about 1.3 Gbit/s at 100 ms, 4 Gbit/s at 40 ms; asyncssh's own
    2 MiB caps a 40 ms link near 50 MB/s). Costs up to this much memory per connection (per
    process: ``sftp_connections`` x this), held only while the disk or the event loop lags
    behind the network. It also sizes how many small files are in flight: see
    ``sftp_transfers``. Uploads are bound by the server's window, not this one."""

    ssh_packet_size: int = 256 << 10
    """Largest SSH packet we accept in bytes (asyncssh's default is 32 KiB). Bigger packets
    mean fewer to decrypt and acknowledge per MiB; each costs its size in a buffer while it
    is decoded, so memory is negligible. OpenSSH sends at most 256 KiB."""

    plot_processes: int = 2
    """Processes drawing sensor figures (download-plot-gyro-sequence --save, and longterm
    report's figure cache). Each is one more Python process with matplotlib (~90 MB) holding
    at most two viewings' samples; 1 draws in a thread of the main process (no start-up cost,
    for a handful of figures; longterm report always draws in processes). More than the CPU
    cores is wasted."""

    @property
    def window_slots(self) -> int:
        """Windows of results in memory at once in download-results (and its workers):
        ``rest_concurrency`` in flight plus :data:`WINDOW_READAHEAD`."""
        return self.rest_concurrency + WINDOW_READAHEAD

    def small_allowance(self) -> int:
        """Small files in flight per SSH connection: as many as one window carries at once,
        so a long round trip is covered by files in flight rather than paid file after file."""
        by_window = self.ssh_window // SMALL_NOMINAL
        return max(self.sftp_transfers * SMALL_FACTOR, min(SMALL_MAX, by_window))

    def upload_depth(self, block: int) -> int:
        """Writes in flight per uploading file: :data:`UPLOAD_IN_FLIGHT` in ``block``-sized
        writes, within ``sftp_max_requests``."""
        return max(1, min(self.sftp_max_requests, UPLOAD_IN_FLIGHT // max(block, 1)))

    def upload_connections(self) -> int:
        """Connections for an upload: enough that the server's windows add up to the
        in-flight amount ``ssh_window`` budgets for a download, within
        :data:`MAX_UPLOAD_CONNECTIONS`, never fewer than ``sftp_connections``."""
        wanted = -(-self.ssh_window // SERVER_WINDOW)
        return max(self.sftp_connections, min(MAX_UPLOAD_CONNECTIONS, wanted))

    def validate(self) -> Limits:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value < 0 or (value == 0 and f.name not in {"sftp_block_size", "retries"}):
                raise ConfigError(f"[limits] {f.name} must be positive, got {value}")
        if self.ssh_packet_size < MIN_SSH_PACKET or self.ssh_window < self.ssh_packet_size:
            raise ConfigError(
                f"[limits] ssh_packet_size must be at least {MIN_SSH_PACKET} and at most "
                f"ssh_window, got packet {self.ssh_packet_size}, window {self.ssh_window}"
            )
        if self.sftp_block_size > MAX_SFTP_BLOCK:
            raise ConfigError(
                f"[limits] sftp_block_size {self.sftp_block_size} is more than OpenSSH's "
                f"sftp-server accepts ({MAX_SFTP_BLOCK})",
                hint="leave it at 0 (asyncssh's default) or pick a smaller value",
            )
        return self

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str) -> Limits:
        known = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise ConfigError(
                    f"{source}: unknown setting [limits] {key}",
                    hint=f"known: {', '.join(sorted(known))}",
                )
            want = int if isinstance(getattr(cls(), key), int) else float
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{source}: [limits] {key} must be a number, got {value!r}")
            if want is int and not isinstance(value, int):
                raise ConfigError(f"{source}: [limits] {key} must be a whole number")
            kwargs[key] = want(value)
        return cls(**kwargs).validate()


@dataclass(frozen=True, kw_only=True)
class ServerProfile:
    """One platform server: REST URL and token, SSH media account, study settings."""

    name: str
    url: str
    token: str | None = field(default=None, repr=False)
    token_source: str = "--token"
    ssh_user: str = DEFAULT_SSH_USER
    ssh_host: str = ""
    ssh_port: int = 22
    key: Path = Path()
    known_hosts: Path = Path()
    media_dir: str = DEFAULT_MEDIA_DIR
    timezone: str = DEFAULT_TIMEZONE
    salt: str = field(default=ORIGINAL_SALT, repr=False)
    salt_source: str = "the default of the original scripts"
    key_passphrase: str | None = field(default=None, repr=False)
    """Asked on a terminal by the CLI for a passphrase-protected key; never stored."""

    @property
    def salt_is_original(self) -> bool:
        """True when external_ids are hashed with the original scripts' public salt."""
        return self.salt == ORIGINAL_SALT

    def __repr__(self) -> str:
        return (
            f"ServerProfile(name={self.name!r}, url={self.url!r}, "
            f"token={mask_token(self.token)}, ssh={self.ssh_user}@{self.ssh_host}:{self.ssh_port})"
        )

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_production(self) -> bool:
        return self.name == "prod"

    def require_token(self) -> str:
        if not self.token:
            raise ConfigError(
                f"no REST token for server '{self.name}'",
                hint=f"set {self.token_source}"
                if self.token_source != "--token"
                else "pass --token=<40 hex digits>",
            )
        return self.token

    def require_key(self) -> Path:
        if not self.key.is_file():
            raise ConfigError(
                f"SSH key {self.key} for {self.ssh_user}@{self.ssh_host} does not exist",
                hint="pass --key=PATH or set key in the server's profile",
            )
        if not os.access(self.key, os.R_OK):
            raise ConfigError(f"SSH key {self.key} is not readable", hint="check its permissions")
        return self.key


@dataclass(frozen=True)
class Config:
    """A loaded config file (or the built-in defaults when there is none)."""

    path: Path | None
    servers: Mapping[str, Mapping[str, Any]]
    limits: Limits
    defaults: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    searched: tuple[Path, ...] = ()  # where the file was looked for, in order

    def profile(
        self,
        server: str | None,
        *,
        token: str | None = None,
        key: str | None = None,
        ssh_port: int | None = None,
    ) -> ServerProfile:
        """Resolve ``--server`` (a profile name or an address) with ``--token``/``--key``/
        ``--ssh-port``."""
        server = (server or DEFAULT_SERVER).strip()
        if server in self.servers:
            return _build_profile(
                server, self.servers[server], self, token=token, key=key, ssh_port=ssh_port
            )
        if _looks_like_address(server):
            url = server_url(server)
            return _build_profile(
                url, {"url": url}, self, token=token, key=key, ssh_port=ssh_port, adhoc=True
            )
        known = ", ".join(sorted(self.servers)) or "none"
        raise ConfigError(
            f"unknown server profile '{server}' (profiles: {known}; {self.where()})",
            hint="pass --server=https://host or add [servers." + server + "] to config.toml",
        )

    def where(self) -> str:
        """Which file was read, or every path looked at when none was found."""
        if self.path:
            return str(self.path)
        looked = ", ".join(str(p) for p in self.searched) or "nowhere"
        return f"no config file found; looked at {looked}"


def _looks_like_address(value: str) -> bool:
    return "://" in value or "." in value or ":" in value or value == "localhost"


LOOPBACK_HOSTS = ("localhost", "::1")


def server_url(value: str) -> str:
    """The one rule for ``--server`` values that are not a profile name.

    With a scheme: as given. Without: ``https://``, except for a loopback host (``localhost``,
    ``127.x.x.x``, ``[::1]``), which is ``http://``; a ``:port`` is kept (the REST port).
    """
    value = value.strip()
    if "://" in value:
        return value
    host = urlsplit(f"//{value}").hostname or ""
    loopback = host in LOOPBACK_HOSTS or host.startswith("127.")
    return f"{'http' if loopback else 'https'}://{value}"


def _env_lookup(name: str, dotenv: Mapping[str, str]) -> str | None:
    value = os.environ.get(name)
    if value:
        return value.strip()
    value = dotenv.get(name)
    return value.strip() if value else None


def read_dotenv(path: Path = Path(".env")) -> dict[str, str]:
    """The old scripts kept tokens in ``./.env``; keep reading it as a fallback."""
    values: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return values
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        values[key] = value.strip().strip("'\"")
    return values


def _build_profile(
    name: str,
    raw: Mapping[str, Any],
    config: Config,
    *,
    token: str | None,
    key: str | None,
    ssh_port: int | None = None,
    adhoc: bool = False,
) -> ServerProfile:
    where = f"{config.path or 'config'} [servers.{name}]"
    merged: dict[str, Any] = {**config.defaults, **raw}
    url = str(merged.get("url") or "").strip().rstrip("/")
    if not url:
        if config.path is None:
            raise ConfigError(
                f"server profile '{name}' has no url ({config.where()})",
                hint=f"create one with: longterm config --init, then set url in [servers.{name}];"
                " or pass --server=https://host",
            )
        raise ConfigError(
            f"server profile '{name}' has no url",
            hint=f'add url = "https://..." to {where} or pass --server=https://host',
        )
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        raise ConfigError(f"{where}: url {url!r} has a port that is not a number") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: url {url!r} is not an http(s) URL")
    dotenv = read_dotenv()
    if config.path is not None and config.path.parent.resolve() != Path.cwd().resolve():
        # the .env beside the config counts too (a study's sub-folder has none of its own)
        dotenv = {**read_dotenv(config.path.parent / ".env"), **dotenv}
    token_source = "--token"
    resolved_token = token
    if resolved_token is None and not adhoc:
        if merged.get("token"):
            resolved_token = str(merged["token"]).strip()
            token_source = f"token in {where}"
        else:
            env_name = str(merged.get("token_env") or f"TOKEN_{name.upper().replace('-', '_')}")
            resolved_token = _env_lookup(env_name, dotenv)
            token_source = f"the environment variable {env_name}"
            if not resolved_token:
                token_source = (
                    f"the environment variable {env_name} (or token in {where}, or --token)"
                )
    ssh_host = str(merged.get("ssh_host") or parts.hostname)
    key_path = key or merged.get("key") or f"~/.ssh/media@{ssh_host}"
    salt, salt_source = _resolve_salt(merged, dotenv, where)
    timezone = str(merged.get("timezone") or DEFAULT_TIMEZONE)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{where}: unknown timezone {timezone!r}") from exc
    if ssh_port is None:
        try:
            ssh_port = int(merged.get("ssh_port") or 22)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: ssh_port must be a number") from exc
    if not 0 < ssh_port < 65536:
        raise ConfigError(f"SSH port {ssh_port} is not a port number (1-65535)")
    base = config.path.parent if config.path else Path.cwd()
    return ServerProfile(
        name=name,
        url=url,
        token=resolved_token or None,
        token_source=token_source,
        ssh_user=str(merged.get("ssh_user") or DEFAULT_SSH_USER),
        ssh_host=ssh_host,
        ssh_port=ssh_port,
        key=_resolve_path(str(key_path), base if not key else Path.cwd()),
        known_hosts=_resolve_path(str(merged.get("known_hosts") or "~/.ssh/known_hosts"), base),
        media_dir=str(merged.get("media_dir") or DEFAULT_MEDIA_DIR),
        timezone=timezone,
        salt=salt,
        salt_source=salt_source,
    )


def _resolve_salt(
    merged: Mapping[str, Any], dotenv: Mapping[str, str], where: str
) -> tuple[str, str]:
    """The salt and where it came from: ``salt``, then ``salt_env``, then ``$LONGTERM_SALT``
    (also with ``--server=URL`` and no config file), else the original scripts' salt."""
    if merged.get("salt") is not None:
        return str(merged["salt"]), f"salt in {where}"
    for env_name in (merged.get("salt_env"), SALT_ENV):
        if env_name:
            value = _env_lookup(str(env_name), dotenv)
            if value:
                return value, f"the environment variable {env_name}"
    return ORIGINAL_SALT, "the default of the original scripts"


def _resolve_path(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


USER_CONFIG = Path("~/.config/longterm/config.toml")
"""Where ``longterm config --init`` writes by default: found from any folder."""


def config_candidates(cwd: Path | None = None) -> list[Path]:
    """Every path looked at without ``--config``/``$LONGTERM_CONFIG``, in order: config.toml
    in the current folder and each parent up to the root, then the user's config."""
    here = (cwd or Path.cwd()).resolve()
    return [folder / "config.toml" for folder in (here, *here.parents)] + [USER_CONFIG.expanduser()]


def find_config_file(
    explicit: str | os.PathLike[str] | None,
) -> tuple[Path | None, tuple[Path, ...]]:
    """The config file to read (``None``: none found), and every path looked at."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist", hint="check --config")
        return path, (path,)
    env = os.environ.get(CONFIG_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} (from ${CONFIG_ENV}) does not exist")
        return path, (path,)
    candidates = config_candidates()
    for n, candidate in enumerate(candidates):
        if candidate.is_file():
            return _shown(candidate), tuple(candidates[: n + 1])
    return None, tuple(candidates)


def _shown(path: Path) -> Path:
    """``config.toml`` as found in the current folder stays relative (as before)."""
    try:
        return path.relative_to(Path.cwd().resolve())
    except ValueError:
        return path


_PROFILE_KEYS = {
    "url",
    "token",
    "token_env",
    "ssh_user",
    "ssh_host",
    "ssh_port",
    "key",
    "known_hosts",
    "media_dir",
    "timezone",
    "salt",
    "salt_env",
}

_BUILTIN_SERVERS: dict[str, dict[str, Any]] = {
    "dev": {"token_env": "TOKEN_DEV"},
    "prod": {"token_env": "TOKEN_PROD"},
}


def load_config(explicit: str | os.PathLike[str] | None = None) -> Config:
    """Find, parse and validate the config file; every problem is a one-line ConfigError."""
    path, searched = find_config_file(explicit)
    if path is None:
        return Config(path=None, servers=dict(_BUILTIN_SERVERS), limits=Limits(), searched=searched)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    return dataclasses.replace(parse_config(data, path), searched=searched)


def parse_config(data: Mapping[str, Any], path: Path | None) -> Config:
    source = str(path) if path else "config"
    servers_raw = data.get("servers", {})
    if not isinstance(servers_raw, dict):
        raise ConfigError(f"{source}: [servers] must be a table of profiles")
    servers: dict[str, dict[str, Any]] = {k: dict(v) for k, v in _BUILTIN_SERVERS.items()}
    holds_token = False
    for name, table in servers_raw.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [servers.{name}] must be a table")
        unknown = set(table) - _PROFILE_KEYS
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {', '.join(sorted(unknown))} in [servers.{name}]",
                hint=f"known: {', '.join(sorted(_PROFILE_KEYS))}",
            )
        holds_token = holds_token or bool(table.get("token"))
        servers[name] = {**servers.get(name, {}), **table}
    limits_raw = data.get("limits", {})
    if not isinstance(limits_raw, dict):
        raise ConfigError(f"{source}: [limits] must be a table")
    limits = Limits.from_mapping(limits_raw, source)
    defaults = {k: v for k, v in data.items() if k in {"salt", "salt_env", "timezone"}}
    warnings: list[str] = []
    if path is not None and holds_token:
        try:
            mode = path.stat().st_mode
        except OSError:
            mode = 0
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(
                f"{path} holds a token and is readable by others (mode {stat.S_IMODE(mode):o}); "
                f"run: chmod 600 {path}"
            )
    return Config(
        path=path, servers=servers, limits=limits, defaults=defaults, warnings=tuple(warnings)
    )
