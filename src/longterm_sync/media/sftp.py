"""A small pool of SSH connections to the media account, and the errors they map to.

Settings that measurably matter on this path (issue 4): the AES-GCM cipher first (asyncssh
prefers chacha20, about 30 % slower here), compression off (zlib was 4-8x slower), and a
bounded number of files in flight per connection. A second connection in one process does
not add throughput (the event loop is the limit), so ``sftp_connections`` defaults to 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shlex
import stat
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from ..config import SMALL_FILE, Limits, ServerProfile
from ..errors import AuthError, ConfigError, ConnectError, FileFailed, RemoteError
from .hostkeys import HostKeyPolicy, client_factory
from .tarbatch import TarFetcher, TarSender

log = logging.getLogger("longterm_sync.media.sftp")

ENCRYPTION_PREFERENCE = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
)

#: Errors that mean the connection itself is gone: every other file would fail too.
MD5_BATCH = 512
"""Files per remote ``md5sum`` command (one process start on the server per batch)."""
MD5_BATCHES = 2
"""Remote ``md5sum`` commands at once: hashing is the server's CPU, shared with sshd."""
MD5_LINGER = 0.02
"""Seconds a first verification request waits for others before its command starts. A
command costs a channel open, an exec and a close (three round trips or more, plus a process
start on the server), so files finishing together share one instead of one each; 20 ms is
little next to that even on loopback."""


class _Paths:
    """A batch's paths in a debug line: first and last only (a batch holds up to 512)."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def __str__(self) -> str:
        if len(self.paths) <= 2:
            return ", ".join(self.paths)
        return f"{self.paths[0]} ... {self.paths[-1]}"


CONNECTION_LOST = (
    asyncssh.SFTPConnectionLost,
    asyncssh.ConnectionLost,
    asyncssh.DisconnectError,
    BrokenPipeError,
    ConnectionResetError,
)


def describe(profile: ServerProfile) -> str:
    return f"{profile.ssh_user}@{profile.ssh_host}:{profile.ssh_port}"


def connection_lost(profile: ServerProfile, exc: BaseException) -> ConnectError:
    reason = getattr(exc, "reason", "") or str(exc) or type(exc).__name__
    return ConnectError(
        f"SSH connection to {describe(profile)} lost: {reason}",
        hint="re-run: interrupted downloads resume from their .partial files",
    )


_WARNED_KEYS: set[Path] = set()


def key_permission_warning(path: Path) -> str | None:
    """OpenSSH refuses a private key that group or others may read; we use it, but say so."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (
            f"SSH key {path} is readable by others (mode {stat.S_IMODE(mode):o}); OpenSSH "
            f"refuses such keys: run chmod 600 {path}"
        )
    return None


def _wants_passphrase(exc: Exception) -> bool:
    """asyncssh says "passphrase must be specified" (a KeyImportError) for a protected key
    read without one, and raises KeyEncryptionError for a wrong one."""
    return isinstance(exc, asyncssh.KeyEncryptionError) or "passphrase" in str(exc).lower()


def key_is_encrypted(path: Path) -> bool:
    """Whether the key needs a passphrase (False for a key that is unreadable otherwise: the
    error about that comes when it is loaded)."""
    try:
        asyncssh.read_private_key(str(path))
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError, ValueError) as exc:
        return _wants_passphrase(exc)
    except OSError:
        return False
    return False


def agent_socket() -> str | None:
    return os.environ.get("SSH_AUTH_SOCK") or None


def load_client_key(profile: ServerProfile) -> asyncssh.SSHKey | None:
    """The decrypted key, or ``None`` when a passphrase-protected key is left to ssh-agent."""
    path = profile.require_key()
    warning = key_permission_warning(path)
    if warning and path not in _WARNED_KEYS:
        _WARNED_KEYS.add(path)
        log.warning("warning: %s", warning)
    try:
        return asyncssh.read_private_key(str(path), profile.key_passphrase)
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError, ValueError) as exc:
        if not _wants_passphrase(exc) and not (
            profile.key_passphrase is not None and "decrypt" in str(exc).lower()
        ):
            raise ConfigError(f"SSH key {path} is not a private key: {exc}") from exc
        if profile.key_passphrase is not None:
            raise ConfigError(f"wrong passphrase for SSH key {path}") from exc
        if agent_socket():
            return None
        raise ConfigError(
            f"SSH key {path} is passphrase-protected and no ssh-agent is running",
            hint=f"run on a terminal to be asked for it, or: eval $(ssh-agent); ssh-add {path}",
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read SSH key {path}: {exc.strerror}") from exc


def key_options(profile: ServerProfile, key: asyncssh.SSHKey | None) -> dict[str, Any]:
    """asyncssh's authentication options: the key itself, or only the agent's copy of it."""
    if key is not None:
        return {"client_keys": [key], "agent_path": None}
    public = Path(f"{profile.key}.pub")
    return {
        # the encrypted file is skipped (ignore_encrypted): only the agent's keys are offered,
        # narrowed to this key when its .pub is beside it
        "client_keys": [str(profile.key)],
        "ignore_encrypted": True,
        "agent_path": agent_socket(),
        "agent_identities": [str(public)] if public.is_file() else None,
    }


async def connect(
    profile: ServerProfile, limits: Limits, *, accept_new_host_key: bool = False
) -> asyncssh.SSHClientConnection:
    """One verified connection to the media account, or a one-line error saying why not."""
    key = load_client_key(profile)
    policy = HostKeyPolicy(
        known_hosts=profile.known_hosts,
        host=profile.ssh_host,
        port=profile.ssh_port,
        accept_new=accept_new_host_key,
    )
    where = describe(profile)
    try:
        async with asyncio.timeout(limits.connect_timeout):
            return await asyncssh.connect(
                profile.ssh_host,
                profile.ssh_port,
                username=profile.ssh_user,
                known_hosts=policy.trusted,
                client_factory=client_factory(policy),
                encryption_algs=list(ENCRYPTION_PREFERENCE),
                compression_algs=None,
                config=None,
                **key_options(profile, key),
                preferred_auth="publickey",
                keepalive_interval=30,
                # One connection moves at most a window per round trip: see Limits.ssh_window.
                window=limits.ssh_window,
                max_pktsize=limits.ssh_packet_size,
            )
    except asyncssh.HostKeyNotVerifiable as exc:
        raise policy.error() or RemoteError(f"host key of {where} not accepted: {exc}") from exc
    except asyncssh.PermissionDenied as exc:
        if key is None:
            raise AuthError(
                f"SSH key {profile.key} is passphrase-protected and the ssh-agent did not "
                f"offer it to {where}, or {where} refused it",
                hint=f"run: ssh-add {profile.key}",
            ) from exc
        raise AuthError(
            f"SSH key {profile.key} was refused by {where}",
            hint="is its public key in the media account's ~/.ssh/authorized_keys?",
        ) from exc
    except TimeoutError as exc:
        raise ConnectError(f"cannot reach SSH host {where}: timed out") from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno in (errno.ECONNREFUSED,):
            reason = "connection refused (is sshd running on that port?)"
        raise ConnectError(f"cannot reach SSH host {where}: {reason}") from exc
    except asyncssh.Error as exc:
        err = policy.error()
        if err is not None:
            raise err from exc
        raise ConnectError(f"SSH connection to {where} failed: {exc.reason}") from exc
    except ValueError as exc:
        err = policy.error()
        if err is not None:
            raise err from exc
        raise ConnectError(f"SSH connection to {where} failed: {exc}") from exc


@dataclass
class _Slot:
    conn: asyncssh.SSHClientConnection
    sftp: asyncssh.SFTPClient
    active: int = 0  # large files in flight
    small: int = 0  # small files in flight


class SftpPool:
    """``connections`` (default ``sftp_connections``) connections, each with at most
    ``sftp_transfers`` large files in flight (:meth:`Limits.small_allowance` small ones).

    Cheap requests (listing, stat, sidecars) use :attr:`sftp` directly; transfers go
    through :meth:`transfer`, which waits for a free slot on the least busy connection.
    """

    def __init__(
        self,
        profile: ServerProfile,
        limits: Limits,
        *,
        accept_new_host_key: bool = False,
        connections: int | None = None,
    ) -> None:
        self.profile = profile
        self.limits = limits
        self.connections = connections or limits.sftp_connections
        self.accept_new_host_key = accept_new_host_key
        self._slots: list[_Slot] = []
        self._free = asyncio.Condition()
        self._waiting = 0
        self.exec_available: bool | None = None
        self._md5_pending: list[tuple[str, asyncio.Future[str | None]]] = []
        self._md5_running = 0
        self._md5_tasks: set[asyncio.Task[None]] = set()
        self._md5_timer: asyncio.TimerHandle | None = None
        self.tar = TarFetcher(self._open_process)
        self.tar_up = TarSender(self._run_input, self.replace, self._rmdir)
        self._turn = 0
        self._more: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        active = sum(s.active + s.small for s in self._slots)
        return (
            f"SftpPool({describe(self.profile)}, {len(self._slots)} connections, "
            f"{active} active, {self._waiting} queued)"
        )

    async def __aenter__(self) -> SftpPool:
        try:
            # The first connection alone: a host key question is asked once, not N times.
            self._slots.append(await self._open())
        except BaseException:
            await self.close()
            raise
        if self.connections > 1:
            # The others while the trees are listed and compared over the first: a run with
            # nothing to send does not wait for them (at 40 ms a login is 5 round trips).
            self._more = asyncio.ensure_future(self._open_more(self.connections - 1))
        return self

    async def _open_more(self, n: int) -> None:
        opened = await asyncio.gather(*(self._open() for _ in range(n)), return_exceptions=True)
        self._slots.extend(slot for slot in opened if isinstance(slot, _Slot))
        for result in opened:
            if isinstance(result, BaseException):
                raise result

    async def opened(self) -> None:
        """Wait until every connection is open; raises what opening one raised."""
        if self._more is not None:
            await self._more

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _open(self) -> _Slot:
        conn = await connect(
            self.profile, self.limits, accept_new_host_key=self.accept_new_host_key
        )
        try:
            sftp = await conn.start_sftp_client()
        except (asyncssh.Error, OSError) as exc:
            conn.close()
            raise ConnectError(
                f"{describe(self.profile)} accepted the key but refused SFTP: {exc}"
            ) from exc
        return _Slot(conn, sftp)

    async def close(self) -> None:
        if self._more is not None:
            if not self._more.done():
                self._more.cancel()
            await asyncio.gather(self._more, return_exceptions=True)
        self.tar.close()
        self.tar_up.close()
        if self._md5_timer is not None:
            self._md5_timer.cancel()
            self._md5_timer = None
        for slot in self._slots:
            slot.sftp.exit()
            slot.conn.close()
        for slot in self._slots:
            with contextlib.suppress(Exception):
                await slot.conn.wait_closed()
        self._slots.clear()

    @property
    def sftp(self) -> asyncssh.SFTPClient:
        return self._slots[0].sftp

    @property
    def block_size(self) -> int:
        """Read/write request size: configured, else what the server says it allows."""
        if self.limits.sftp_block_size:
            return self.limits.sftp_block_size
        lim = self.sftp.limits
        return max(16384, min(lim.max_read_len or 32768, lim.max_write_len or 32768))

    @contextlib.asynccontextmanager
    async def transfer(self, size: int | None = None) -> AsyncIterator[asyncssh.SFTPClient]:
        """A connection with a free transfer slot (waits for one).

        A file of at most :data:`SMALL_FILE` bytes is one or two requests: latency, not
        bandwidth, bounds it, and its buffers are tiny, so such files get their own, larger
        allowance (:meth:`Limits.small_allowance`) instead of holding a large-file slot.
        """
        await self.opened()
        small = size is not None and size <= SMALL_FILE
        cap = self.limits.small_allowance() if small else self.limits.sftp_transfers

        def used(slot: _Slot) -> int:
            return slot.small if small else slot.active

        async with self._free:
            self._waiting += 1
            try:
                await self._free.wait_for(lambda: any(used(s) < cap for s in self._slots))
            finally:
                self._waiting -= 1
            slot = min(self._slots, key=lambda s: (used(s), s.active + s.small))
            if small:
                slot.small += 1
            else:
                slot.active += 1
        try:
            yield slot.sftp
        finally:
            async with self._free:
                if small:
                    slot.small -= 1
                else:
                    slot.active -= 1
                self._free.notify_all()

    async def remote_md5(self, path: str) -> str | None:
        """md5 of a remote file computed by the server (``md5sum`` over exec), or None
        when the account does not allow commands (remembered).

        Requests are batched: a request waits :data:`MD5_LINGER` for others, and while
        ``MD5_BATCHES`` commands run, new requests queue and go out together in the next
        one (one command, its round trips and process start, per batch instead of per
        file). A file whose md5 differs fails alone; the others in its batch do not notice.
        """
        if self.exec_available is False:
            return None
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[str | None] = loop.create_future()
        self._md5_pending.append((path, fut))
        if len(self._md5_pending) >= MD5_BATCH:
            self._md5_kick()
        elif self._md5_timer is None:
            self._md5_timer = loop.call_later(MD5_LINGER, self._md5_kick)
        try:
            return await fut
        finally:
            if not fut.done():  # cancelled: no command for it
                with contextlib.suppress(ValueError):
                    self._md5_pending.remove((path, fut))

    def _md5_kick(self) -> None:
        if self._md5_timer is not None:
            self._md5_timer.cancel()
            self._md5_timer = None
        while self._md5_pending and self._md5_running < MD5_BATCHES:
            batch = self._md5_pending[:MD5_BATCH]
            del self._md5_pending[:MD5_BATCH]
            self._md5_running += 1
            task = asyncio.ensure_future(self._md5_batch(batch))
            self._md5_tasks.add(task)
            task.add_done_callback(self._md5_tasks.discard)

    async def _md5_batch(self, batch: list[tuple[str, asyncio.Future[str | None]]]) -> None:
        began = time.monotonic()
        try:
            results = await self._md5sum_many([p for p, _ in batch])
            log.debug(
                "md5sum of %d files on the server: %.2f s (%s)",
                len(batch),
                time.monotonic() - began,
                _Paths([p for p, _ in batch]),
            )
        except BaseException as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            for path, fut in batch:
                if fut.done():
                    continue
                got = results[path] if results is not None else None
                if isinstance(got, FileFailed):
                    fut.set_exception(got)
                else:
                    fut.set_result(got)
        finally:
            self._md5_running -= 1
            self._md5_kick()

    async def run(self, command: str) -> asyncssh.SSHCompletedProcess:
        """One command on the least busy connection, output as bytes (stdin closed)."""
        conn = min(self._slots, key=lambda s: s.active + s.small).conn
        return await conn.run(command, check=False, encoding=None, stdin=asyncssh.DEVNULL)

    async def _open_process(self, command: str) -> asyncssh.SSHClientProcess[bytes]:
        """A command on the least busy connection, stdin and stdout as bytes streams."""
        conn = min(self._slots, key=lambda s: s.active + s.small).conn
        return await conn.create_process(command, encoding=None)

    async def replace(self, src: str, dst: str) -> None:
        """Rename over an existing file (OpenSSH's posix-rename, else remove + rename)."""
        sftp = self.sftp
        try:
            await sftp.posix_rename(src, dst)
        except asyncssh.SFTPOpUnsupported:
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                await sftp.remove(dst)
            await sftp.rename(src, dst)

    async def _rmdir(self, path: str) -> None:
        await self.sftp.rmdir(path)

    async def _run_input(self, command: str, data: bytes) -> asyncssh.SSHCompletedProcess:
        """A command fed ``data`` on stdin, connections taken in turn (each channel has its
        own window at the server: several batches at once add up)."""
        await self.opened()
        self._turn += 1
        conn = self._slots[self._turn % len(self._slots)].conn
        return await conn.run(command, input=data, check=False, encoding=None)

    def small_batched(self, size: int) -> bool:
        """Whether a download of ``size`` bytes tries a batched ``tar`` first."""
        return self.exec_available is not False and self.tar.eligible(size)

    async def fetch_small(self, path: str, size: int) -> tuple[bytes, bytes] | None:
        """A small file and its sidecar from a batched ``tar`` (:mod:`.tarbatch`), or None
        when it must go over SFTP (no commands, no tar, not delivered whole)."""
        if not self.small_batched(size):
            return None
        return await self.tar.fetch(path, size)

    async def _md5sum_many(self, paths: list[str]) -> dict[str, str | FileFailed] | None:
        if self.exec_available is False:
            return None
        conn = min(self._slots, key=lambda s: s.active + s.small).conn
        command = "md5sum -- " + " ".join(shlex.quote(p) for p in paths)
        try:
            result = await conn.run(command, check=False)
        except asyncssh.ChannelOpenError:
            self._no_exec("the server refused a command channel")
            return None
        except CONNECTION_LOST as exc:
            raise connection_lost(self.profile, exc) from exc
        stdout, stderr = _text(result.stdout), _text(result.stderr)
        found: dict[str, str | FileFailed] = {}
        for line in stdout.splitlines():
            escaped = line.startswith("\\")
            digest, _, name = line.removeprefix("\\").partition("  ")
            if escaped:
                name = name.replace("\\n", "\n").replace("\\\\", "\\")
            if len(digest) == 32:
                found[name] = digest.lower()
        if not found and self.exec_available is None:
            # Refused (126/127), a forced command (sftp-only account), no md5sum at all:
            # nothing usable came back, so this account cannot verify by md5sum.
            self._no_exec(f"md5sum exited with {result.exit_status}: {stderr.strip()[:120]}")
            return None
        if found:
            self.exec_available = True
        why = stderr.strip().splitlines()[-1][:200] if stderr.strip() else "no output"
        for path in paths:
            found.setdefault(path, FileFailed(f"md5sum on the server failed: {why}"))
        return found

    def _no_exec(self, why: str) -> None:
        if self.exec_available is not False:
            log.info(
                "no remote md5sum on %s (%s); verifying uploads by size",
                describe(self.profile),
                why,
            )
        self.exec_available = False


def _text(data: object) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return str(data or "")


def sftp_error_text(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(reason).split()) or type(exc).__name__
