"""The sandbox's SSH server: a media account reachable by key only, SFTP and three commands.

The real platform gives the experimenter an SSH account (``media``) whose home holds
``media/videos``; clients list, download and upload videos over SFTP and run ``md5sum``,
``mkdir -p`` and ``mv`` there. This module imitates that account with asyncssh inside the
sandbox's own event loop, so tests and demos exercise the same code paths as production:

* keys are generated once under ``data_dir/ssh`` and reused, so a client's ``known_hosts``
  stays valid across restarts; only the port line of ``known_hosts`` is rewritten;
* SFTP is chrooted to ``data_dir/home``: ``media/videos/x`` and ``/media/videos/x`` both
  resolve to ``data_dir/home/media/videos/x``, and no path (``..``, symlinks) leaves the home;
* exec accepts exactly ``md5sum FILE...``, ``mkdir -p DIR...`` and ``mv [-f] SRC DST`` with
  every path inside ``data_dir/home/media``; anything else is refused with one stderr line and
  exit status 126 (a refusal) so that a client can tell a refusal from a failed command (1);
* :class:`SftpFault` builds SFTP servers that fail, truncate or corrupt on purpose, the way
  asyncssh's own tests do, for the transfer engine's tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import logging
import os
import posixpath
import shlex
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import asyncssh

from ..atomic import write_bytes_atomic
from ..errors import ConfigError, UsageError

log = logging.getLogger("longterm_sync.sandbox.ssh")

MEDIA_USER = "media"
MEDIA_DIR = "media/videos"
REFUSED = 126
"""Exit status of a refused command (not allowed, shell syntax, path outside the media folder)."""

SftpFactory = Callable[[asyncssh.SSHServerChannel, Path], asyncssh.SFTPServer]
"""Builds the SFTP server of one session from its channel and the chroot folder."""

_HASH_CHUNK = 1 << 20
_SHELL_TOKENS = frozenset(";&|()<>")


# ---------------------------------------------------------------------------------------
# keys and known_hosts


def _ensure_key(path: Path, comment: str) -> asyncssh.SSHKey:
    """Load the ed25519 key at ``path`` or create it (private 0600, ``.pub`` beside it).

    A damaged key is a one-line ConfigError: regenerating it silently would invalidate every
    client's known_hosts (host key) or config (client key) without a word.
    """
    if path.exists():
        try:
            return asyncssh.read_private_key(str(path))
        except (OSError, asyncssh.KeyImportError) as exc:
            raise ConfigError(
                f"sandbox SSH key {path} is unreadable or not a private key ({exc})",
                hint="delete it to have a new one generated (clients must then re-read it)",
            ) from exc
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    write_bytes_atomic(path, key.export_private_key())
    path.chmod(0o600)
    write_bytes_atomic(path.with_name(path.name + ".pub"), key.export_public_key())
    return key


def known_hosts_line(host: str, port: int, key: asyncssh.SSHKey) -> str:
    """One ``known_hosts`` line; OpenSSH writes ``[host]:port`` for any port but 22."""
    name = host if port == 22 else f"[{host}]:{port}"
    public = key.export_public_key("openssh").decode("ascii").split()
    return f"{name} {public[0]} {public[1]}\n"


def client_options(
    host: str, port: int, user: str, key: Path, known_hosts: Path, **extra: Any
) -> dict[str, Any]:
    """``asyncssh.connect`` keywords for a test client: this key only, this known_hosts only.

    The agent and ``~/.ssh/config`` are ignored so that a developer's own setup cannot make a
    test pass (or fail) by accident.
    """
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "username": user,
        "client_keys": [str(key)],
        "known_hosts": str(known_hosts),
        "agent_path": None,
        "config": [],
    }
    options.update(extra)
    return options


# ---------------------------------------------------------------------------------------
# SFTP


class SandboxSFTPServer(asyncssh.SFTPServer):
    """SFTP chrooted to the account's home, refusing any path that resolves outside it.

    asyncssh's chroot normalises ``..`` but follows symlinks that already exist inside the
    root; resolving the mapped path and checking it again closes that hole.
    """

    def __init__(self, chan: asyncssh.SSHServerChannel, root: Path) -> None:
        self._root = os.path.realpath(root)
        super().__init__(chan, chroot=os.fsencode(self._root))

    def map_path(self, path: bytes) -> bytes:
        mapped = super().map_path(path)
        real = os.path.realpath(mapped)
        if real != os.fsencode(self._root) and not real.startswith(os.fsencode(self._root) + b"/"):
            raise asyncssh.SFTPPermissionDenied("path leads outside the account's home")
        return mapped


FaultKind = Literal["fail_read", "truncate_read", "corrupt_read", "stall_read", "fail_write"]
FAULT_KINDS: tuple[str, ...] = typing.get_args(FaultKind)


@dataclass
class SftpFault:
    """A deliberate SFTP misbehaviour, shared by every session of one server.

    ``kind``:
      * ``fail_read``: reads at or beyond byte ``after`` fail with SFTP FAILURE;
      * ``truncate_read``: reads at or beyond ``after`` return EOF (stat keeps the full size);
      * ``corrupt_read``: the byte at offset ``after`` is flipped (XOR 0xFF) on its way out;
      * ``stall_read``: reads at or beyond ``after`` wait ``stall_seconds`` before answering
        (a hung server: for timeouts, cancellation, or stopping the server mid-transfer);
      * ``fail_write``: writes reaching beyond byte ``after`` fail with SFTP FAILURE.

    Only files whose base name matches ``match`` (fnmatch) are affected. ``times`` bounds how
    many opened files get the fault (None = every one), so a retry can be made to succeed;
    ``hits`` counts the files that got it.
    """

    kind: FaultKind
    after: int = 0
    match: str = "*"
    times: int | None = None
    stall_seconds: float = 3600.0
    hits: int = field(default=0, init=False)

    @classmethod
    def parse(cls, spec: str) -> SftpFault:
        """``KIND[:key=value,...]``, e.g. ``fail_read:after=1048576,times=1,match=*.mp4``.

        For a command-line flag of a sandbox started in another process, where a test cannot
        swap ``SshEndpoint.sftp_factory`` itself.
        """
        kind, _, rest = spec.strip().partition(":")
        if kind not in FAULT_KINDS:
            raise UsageError(
                f"unknown SFTP fault {kind!r}", hint=f"one of {', '.join(FAULT_KINDS)}"
            )
        values: dict[str, Any] = {}
        for item in filter(None, rest.split(",")):
            key, sep, value = item.partition("=")
            try:
                if not sep or key not in ("after", "times", "match", "stall_seconds"):
                    raise ValueError(item)
                if key == "match":
                    values[key] = value
                elif key == "stall_seconds":
                    values[key] = float(value)
                else:
                    values[key] = int(value)
            except ValueError as exc:
                raise UsageError(
                    f"bad SFTP fault setting {item!r} in {spec!r}",
                    hint="keys: after=BYTES, times=N, match=GLOB, stall_seconds=S",
                ) from exc
        return cls(typing.cast(FaultKind, kind), **values)

    def factory(self, chan: asyncssh.SSHServerChannel, root: Path) -> asyncssh.SFTPServer:
        """An :data:`SftpFactory` for ``start_ssh_server(sftp_factory=fault.factory)``."""
        return FaultySFTPServer(chan, root, self)

    def _claim(self, path: bytes) -> bool:
        if not fnmatch.fnmatchcase(os.fsdecode(posixpath.basename(path)), self.match):
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        self.hits += 1
        return True


class FaultySFTPServer(SandboxSFTPServer):
    """Injects one :class:`SftpFault` into reads or writes of the files it claims."""

    def __init__(self, chan: asyncssh.SSHServerChannel, root: Path, fault: SftpFault) -> None:
        super().__init__(chan, root)
        self._fault = fault
        self._faulty: set[int] = set()  # id() of the open files the fault applies to

    def _wants(self, pflags: int) -> bool:
        writing = bool(pflags & (asyncssh.FXF_WRITE | asyncssh.FXF_APPEND))
        return writing if self._fault.kind == "fail_write" else not writing

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        file = super().open(path, pflags, attrs)
        if self._wants(pflags) and self._fault._claim(path):
            self._faulty.add(id(file))
        return file

    def open56(
        self,
        path: bytes,
        desired_access: int,
        flags: int,
        attrs: asyncssh.SFTPAttrs,
    ) -> object:
        file = super().open56(path, desired_access, flags, attrs)
        writing = bool(desired_access & (asyncssh.ACE4_WRITE_DATA | asyncssh.ACE4_APPEND_DATA))
        wants = writing if self._fault.kind == "fail_write" else not writing
        if wants and self._fault._claim(path):
            self._faulty.add(id(file))
        return file

    def close(self, file_obj: object) -> Any:
        self._faulty.discard(id(file_obj))
        return super().close(file_obj)

    def read(self, file_obj: object, offset: int, size: int) -> Any:
        fault, after = self._fault, self._fault.after
        faulty = id(file_obj) in self._faulty
        if faulty and fault.kind in ("fail_read", "truncate_read", "stall_read"):
            if offset >= after:
                if fault.kind == "fail_read":
                    raise asyncssh.SFTPFailure(f"injected read failure at byte {offset}")
                if fault.kind == "truncate_read":
                    return b""
                return self._stalled_read(file_obj, offset, size)
            size = min(size, after - offset)  # a short read, so the next one starts at `after`
        data = super().read(file_obj, offset, size)
        assert isinstance(data, bytes)
        if faulty and fault.kind == "corrupt_read" and offset <= after < offset + len(data):
            i = after - offset
            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]
        return data

    async def _stalled_read(self, file_obj: object, offset: int, size: int) -> bytes:
        await asyncio.sleep(self._fault.stall_seconds)
        data = super().read(file_obj, offset, size)
        assert isinstance(data, bytes)
        return data

    def write(self, file_obj: object, offset: int, data: bytes) -> Any:
        if (
            id(file_obj) in self._faulty
            and self._fault.kind == "fail_write"
            and offset + len(data) > self._fault.after
        ):
            raise asyncssh.SFTPFailure(f"injected write failure at byte {offset}")
        return super().write(file_obj, offset, data)


# ---------------------------------------------------------------------------------------
# exec: md5sum, mkdir -p, mv


class Refused(Exception):
    """A command line the media account does not run; ``str()`` is the stderr line."""


class _Commands:
    """Runs the three allowed commands with the account's home as working directory."""

    def __init__(self, home: Path, media_base: Path) -> None:
        self.home = home.resolve()
        self.base = media_base.resolve()

    def resolve(self, arg: str) -> Path:
        """Map a path as a shell in the home would see it; refuse one outside the media folder.

        An absolute path is read inside the home (the chroot the SFTP side shows). Symlinks
        are resolved first, so a link inside the folder that points outside is refused.
        """
        if not arg:
            raise Refused("empty path")
        real = (self.home / arg.lstrip("/")).resolve()
        if real != self.base and self.base not in real.parents:
            raise Refused(f"path {arg!r} is outside the media folder")
        return real

    def run(self, argv: list[str]) -> tuple[str, str, int]:
        """Blocking (hashing, renaming): called in a thread. Returns stdout, stderr, status."""
        name, args = argv[0], argv[1:]
        if name == "md5sum":
            return self.md5sum(_operands(args, set(), name)[1])
        if name == "mkdir":
            flags, operands = _operands(args, {"-p"}, name)
            if "-p" not in flags:
                raise Refused("mkdir: only 'mkdir -p DIR...' is allowed")
            return self.mkdir(operands)
        if name == "mv":
            _, operands = _operands(args, {"-f"}, name)
            return self.mv(operands)
        raise Refused(f"{name}: command not allowed (only md5sum, mkdir -p, mv)")

    def md5sum(self, paths: list[str]) -> tuple[str, str, int]:
        if not paths:
            raise Refused("md5sum: a file operand is required")
        real = [self.resolve(p) for p in paths]
        out: list[str] = []
        err: list[str] = []
        for shown, path in zip(paths, real, strict=True):
            try:
                digest = _md5_file(path)
            except OSError as exc:
                err.append(f"md5sum: {shown}: {_strerror(exc)}\n")
                continue
            out.append(_md5sum_line(digest, shown))
        return "".join(out), "".join(err), 1 if err else 0

    def entry(self, arg: str) -> Path:
        """Like :meth:`resolve` but the last component is not followed (``mv`` moves a link,
        not its target), and the entry must lie strictly inside the media folder."""
        if not arg:
            raise Refused("empty path")
        lexical = Path(self.home / arg.lstrip("/"))
        if lexical.name in ("", ".", ".."):
            raise Refused(f"path {arg!r} does not name an entry")
        parent = lexical.parent.resolve()
        if parent != self.base and self.base not in parent.parents:
            raise Refused(f"path {arg!r} is outside the media folder")
        return parent / lexical.name

    def mkdir(self, paths: list[str]) -> tuple[str, str, int]:
        """``mkdir -p`` with GNU's messages: the component that failed is the one named."""
        if not paths:
            raise Refused("mkdir: a directory operand is required")
        for path in paths:
            self.resolve(path)
        err: list[str] = []
        for shown in paths:
            failed = self._mkdir_p(shown)
            if failed:
                err.append(failed)
        return "", "".join(err), 1 if err else 0

    def _mkdir_p(self, shown: str) -> str:
        parts = [p for p in shown.split("/") if p]
        last = len(parts) - 1
        for i in range(len(parts)):
            prefix = ("/" if shown.startswith("/") else "") + "/".join(parts[: i + 1])
            local = self.home / prefix.lstrip("/")
            if local.is_dir():
                continue
            if local.exists() or local.is_symlink():
                reason = "File exists" if i == last else "Not a directory"
                return f"mkdir: cannot create directory '{prefix}': {reason}\n"
            self.resolve(prefix)  # never create a folder outside, even on the way
            try:
                local.mkdir()
            except FileExistsError:
                continue
            except OSError as exc:
                return f"mkdir: cannot create directory '{prefix}': {_strerror(exc)}\n"
        return ""

    def mv(self, paths: list[str]) -> tuple[str, str, int]:
        if len(paths) != 2:
            raise Refused("mv: exactly 'mv [-f] SRC DST' is allowed")
        src = self.entry(paths[0])
        dst = self.entry(paths[1])
        if dst.is_dir():
            dst = self.resolve(paths[1]) / src.name
        try:
            src.lstat()
        except OSError as exc:
            return "", f"mv: cannot stat '{paths[0]}': {_strerror(exc)}\n", 1
        if dst.exists() and src.exists() and src.samefile(dst):
            return "", f"mv: '{paths[0]}' and '{paths[1]}' are the same file\n", 1
        try:
            src.replace(dst)
        except OSError as exc:
            return "", f"mv: cannot move '{paths[0]}' to '{paths[1]}': {_strerror(exc)}\n", 1
        return "", "", 0


def _operands(args: list[str], allowed: set[str], name: str) -> tuple[set[str], list[str]]:
    """Split options from operands; ``--`` ends options; any unknown option is refused."""
    flags: set[str] = set()
    operands: list[str] = []
    options_done = False
    for arg in args:
        if not options_done and arg == "--":
            options_done = True
        elif not options_done and arg.startswith("-") and arg != "-":
            if arg not in allowed:
                raise Refused(f"{name}: option {arg!r} not allowed")
            flags.add(arg)
        else:
            operands.append(arg)
    return flags, operands


def _md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _md5sum_line(digest: str, name: str) -> str:
    """GNU md5sum's line: a name with a backslash or newline is escaped and flagged by ``\\``."""
    if "\\" in name or "\n" in name or "\r" in name:
        escaped = name.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        return f"\\{digest}  {escaped}\n"
    return f"{digest}  {name}\n"


def _strerror(exc: OSError) -> str:
    if exc.errno is not None:
        return os.strerror(exc.errno)
    return str(exc)


def parse_command(command: str) -> list[str]:
    """Split a command line like a shell would, refusing everything a shell would interpret."""
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        argv = list(lexer)
    except ValueError as exc:
        raise Refused(f"unparsable command: {exc}") from exc
    if not argv:
        raise Refused("empty command")
    for token in argv:
        if token and set(token) <= _SHELL_TOKENS:
            raise Refused(f"shell operator {token!r} (one plain command per exec)")
        if any(c in token for c in "`$") or "\n" in token:
            raise Refused("shell expansion (one plain command per exec)")
    return argv


# ---------------------------------------------------------------------------------------
# the server


class _MediaServer(asyncssh.SSHServer):
    """Key authentication only, for the one account; keeps track of live connections."""

    def __init__(self, endpoint: SshEndpoint, authorized: asyncssh.SSHAuthorizedKeys) -> None:
        self._endpoint = endpoint
        self._authorized = authorized
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._endpoint._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._endpoint._connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        # Only the media account has an authorized key; any other name can never log in.
        if username == self._endpoint.user and self._conn is not None:
            self._conn.set_authorized_keys(self._authorized)
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def host_based_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True


@dataclass(eq=False)
class SshEndpoint:
    """A running sandbox SSH server and everything a client needs to reach it.

    ``sftp_factory`` may be replaced while the server runs; new SFTP sessions use the new one.
    """

    host: str
    port: int
    host_key: Path
    client_key: Path
    known_hosts: Path
    home: Path
    media_root: Path
    media_dir: str = MEDIA_DIR
    user: str = MEDIA_USER
    sftp_factory: SftpFactory = SandboxSFTPServer
    server: asyncssh.SSHAcceptor | None = None
    _connections: set[asyncssh.SSHServerConnection] = field(default_factory=set)

    def __repr__(self) -> str:
        return (
            f"SshEndpoint({self.user}@{self.host}:{self.port}, media={self.media_root}, "
            f"{len(self._connections)} connections)"
        )

    def connect_options(self, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for ``asyncssh.connect`` with host key verification on."""
        return client_options(
            self.host, self.port, self.user, self.client_key, self.known_hosts, **extra
        )

    def close(self) -> None:
        """Stop listening and drop every connection (in-flight transfers fail)."""
        if self.server is not None:
            self.server.close()
        for conn in list(self._connections):
            conn.abort()

    async def wait_closed(self) -> None:
        if self.server is not None:
            await self.server.wait_closed()
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                await conn.wait_closed()


def _prepare_data_dir(
    data_dir: Path, media_dir: str, user: str
) -> tuple[Path, asyncssh.SSHKey, asyncssh.SSHKey]:
    """Create the folders and load (or create once) the host and client keys."""
    data_dir = data_dir.absolute()
    ssh_dir = data_dir / "ssh"
    ssh_dir.mkdir(parents=True, exist_ok=True)
    ssh_dir.chmod(0o700)
    (data_dir / "home" / media_dir).mkdir(parents=True, exist_ok=True)
    host_key = _ensure_key(ssh_dir / "host_key", "longterm-sandbox-host")
    client_key = _ensure_key(ssh_dir / "client_key", f"{user}@longterm-sandbox")
    return data_dir, host_key, client_key


async def start_ssh_server(
    data_dir: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    sftp_factory: SftpFactory | None = None,
    media_dir: str = MEDIA_DIR,
    user: str = MEDIA_USER,
    **options: Any,
) -> SshEndpoint:
    """Listen on ``host:port`` (0 = a free port) with state under ``data_dir``.

    Extra ``options`` go to ``asyncssh.create_server`` (e.g. ``encryption_algs``). An
    occupied port raises ``OSError``; the caller turns it into a one-line error.
    """
    data_dir, host_key, client_key = await asyncio.to_thread(
        _prepare_data_dir, Path(data_dir), media_dir, user
    )
    ssh_dir = data_dir / "ssh"
    home = data_dir / "home"
    media_root = home / media_dir
    client_key_path = ssh_dir / "client_key"
    authorized = asyncssh.import_authorized_keys(
        client_key.export_public_key("openssh").decode("ascii")
    )
    endpoint = SshEndpoint(
        host=host,
        port=port,
        host_key=ssh_dir / "host_key",
        client_key=client_key_path,
        known_hosts=ssh_dir / "known_hosts",
        home=home,
        media_root=media_root,
        media_dir=media_dir,
        user=user,
        sftp_factory=sftp_factory or SandboxSFTPServer,
    )
    commands = _Commands(home, home / media_dir.split("/", 1)[0])

    def make_sftp(chan: asyncssh.SSHServerChannel) -> asyncssh.SFTPServer:
        return endpoint.sftp_factory(chan, home)

    async def handle_process(process: asyncssh.SSHServerProcess[str]) -> None:
        await _run_process(process, commands)

    options.setdefault("server_host_keys", [host_key])
    server = await asyncssh.create_server(
        lambda: _MediaServer(endpoint, authorized),
        host,
        port,
        process_factory=handle_process,
        sftp_factory=make_sftp,
        allow_scp=False,
        **options,
    )
    endpoint.server = server
    endpoint.port = server.get_port()
    await asyncio.to_thread(
        write_bytes_atomic,
        endpoint.known_hosts,
        known_hosts_line(host, endpoint.port, host_key).encode("ascii"),
    )
    log.info("sandbox SSH listening on %s:%d (media root %s)", host, endpoint.port, media_root)
    return endpoint


async def stop_ssh_server(endpoint: SshEndpoint) -> None:
    endpoint.close()
    await endpoint.wait_closed()


async def _run_process(process: asyncssh.SSHServerProcess[str], commands: _Commands) -> None:
    command = process.command
    try:
        if process.subsystem:
            raise Refused(f"subsystem {process.subsystem!r}")
        if command is None:
            raise Refused("interactive shell (this account runs md5sum, mkdir -p, mv only)")
        argv = parse_command(command)
        out, err, status = await asyncio.to_thread(commands.run, argv)
    except Refused as exc:
        log.info("refused exec %r: %s", command, exc)
        out, err, status = "", f"refused: {exc}\n", REFUSED
    except OSError as exc:  # unexpected local failure: report it like a command would
        out, err, status = "", f"error: {exc.strerror or exc}\n", 1
    try:
        if out:
            process.stdout.write(out)
        if err:
            process.stderr.write(err)
        process.exit(status)
    except (OSError, asyncssh.Error, BrokenPipeError):
        pass


__all__ = [
    "FAULT_KINDS",
    "MEDIA_DIR",
    "MEDIA_USER",
    "REFUSED",
    "FaultySFTPServer",
    "SandboxSFTPServer",
    "SftpFactory",
    "SftpFault",
    "SshEndpoint",
    "client_options",
    "known_hosts_line",
    "parse_command",
    "start_ssh_server",
    "stop_ssh_server",
]
