"""Small files in batches: one remote ``tar`` stream for many files and their sidecars.

Over SFTP a small file costs about seven requests (open, reads, close, and the same for its
sidecar), each Python work on our side; at 40 ms the client's CPU per file, not the link,
was the limit (bench/README.md, issue 11). Where the media account has a shell
(docs/PROTOCOL.md: it runs ``md5sum``, ``mkdir``, ``mv``), one ``tar`` command per batch
streams the videos and their ``.md5sum`` files back to back on one channel, parsed here as
it arrives.

Nothing here trusts the stream more than SFTP's bytes: every file is still written to its
partial name, fsynced, checked against its sidecar and renamed by :mod:`.transfer`. A member
is matched to a request by its exact name (names we asked for, never extracted by a path
the server chose), so a hostile name cannot place anything. Whatever the batch does not
deliver whole (a missing file, another size, a non-regular member, a stream that stops or
does not parse, no ``tar`` on the server) is answered with ``None`` and fetched over SFTP
as before; an account without a usable ``tar`` is remembered and never asked again.

Uploads (:class:`TarSender`) go the other way: a batch of files of one folder, with their
sidecars, is extracted by the server's ``tar`` into a hidden folder beside them and hashed
there by ``md5sum`` in the same command; the files whose md5 matches are then renamed into
place over SFTP, each video before its sidecar (a rename never lands inside a folder of
that name). A file that does not match, or does not move, fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
import posixpath
import shlex
import tarfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import asyncssh

from ..config import SMALL_FILE
from .names import SIDECAR_SUFFIX

log = logging.getLogger("longterm_sync.media.tarbatch")

BATCH_FILES = 64
"""Files per ``tar`` command: one command's channel open, exec and process start are
shared by this many files (about 16 MiB of 256 KiB clips: one SSH window)."""
BATCH_BYTES = 16 << 20
"""A batch is sent as soon as its files add up to this much (bounds the memory of one)."""
BATCH_LINGER = 0.01
"""Seconds a first request waits for others before its batch starts."""
BATCHES_IN_FLIGHT = 4
"""``tar`` commands at once per pool: while one streams, the next ones' round trips to
start are already under way."""

IN_FLIGHT_BYTES = 64 << 20
"""Bytes of small files between their request and their commit (fsync, rename) at once per
process: the batches' streams and the files waiting for the disk. A commit waits on the
disk for tens of milliseconds and a batch for a few round trips, so at 40 ms 66 files in
flight (the SFTP allowance) left the batches at 4 files each; 256 clips of 256 KiB fill
every batch in flight. Memory: this, at most."""
BATCHED_FILES = BATCH_FILES * BATCHES_IN_FLIGHT
"""Small files a download keeps in flight when they go by batch (see IN_FLIGHT_BYTES)."""

TAR_COMMAND = (
    "tar -cf - --format=gnu --no-recursion --hard-dereference --null --verbatim-files-from -T -"
)
"""GNU tar, names NUL-separated on stdin (any byte but NUL, a leading ``-`` not read as an
option); ``--hard-dereference``: a file linked twice is sent twice, not as a link."""

BLOCK = 512
R = TypeVar("R", bound="_Queued")

Result = tuple[bytes, bytes] | None
"""A file's bytes and its sidecar's, or None: fetch it over SFTP."""


class _Unusable(Exception):
    """The stream is not a tar archive we can read (no GNU tar, a forced command)."""


@dataclass
class _Request:
    path: str
    size: int
    future: asyncio.Future[Result]
    data: bytes | None = None
    sidecar: bytes | None = None


def member_name(path: str) -> str:
    """The name GNU tar gives ``path`` in its archive (leading slashes removed)."""
    return path.lstrip("/")


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


class Budget:
    """A byte semaphore: a request waits until its size fits (one larger than the whole
    budget waits until nothing else holds any)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.free = total
        self._cond = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        size = min(size, self.total)
        async with self._cond:
            await self._cond.wait_for(lambda: self.free >= size)
            self.free -= size
        try:
            yield
        finally:
            async with self._cond:
                self.free += size
                self._cond.notify_all()


class _Queued(Protocol):
    size: int
    future: asyncio.Future[Any]


class _Scheduler:
    """When batches start: when one is full, or :data:`BATCH_LINGER` after a first request,
    but only while fewer than ``in_flight`` run; otherwise requests keep waiting and go out
    as the next batches when one ends (tiny batches queued behind busy ones would each pay
    a command's round trips)."""

    def __init__(self, in_flight: int) -> None:
        self.usable: bool | None = None
        self._in_flight = in_flight
        self._timer: asyncio.TimerHandle | None = None
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def eligible(self, size: int) -> bool:
        return self.usable is not False and 0 < size <= SMALL_FILE

    async def _wait(self, req: _Queued, waiting: int) -> Any:
        """Arm the batching for a request just queued (``waiting`` beside it) and wait."""
        if self._running < self._in_flight:
            if waiting >= BATCH_FILES:
                self._kick()
            elif self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(BATCH_LINGER, self._kick)
        try:
            return await req.future
        finally:
            if not req.future.done():
                req.future.cancel()

    def _kick(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._running < self._in_flight and (job := self._next()) is not None:
            self._running += 1
            task = asyncio.ensure_future(job)
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _next(self) -> Coroutine[Any, Any, None] | None:
        """The next batch's coroutine, or None when nothing waits."""
        raise NotImplementedError

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._running -= 1
        self._kick()

    async def _guarded(
        self, live: list[R], work: Callable[[list[R]], Awaitable[Any]], what: str
    ) -> Any:
        """``work(live)``, and whatever it left undone goes over SFTP. A first batch that
        finds no usable tar says so once and turns batching off for the pool; any other
        failure costs only its batch (a lost connection is met again by SFTP, which says
        so)."""
        try:
            if live and self.usable is not False:
                return await work(live)
        except asyncio.CancelledError:
            _settle(live)
            raise
        except _Unusable as exc:
            if self.usable is None:
                log.info("no usable tar on the server (%s); %s over SFTP", exc, what)
                self.usable = False
            else:
                log.debug("a tar batch of %s failed (%s); over SFTP", what, exc)
        except (asyncssh.Error, OSError) as exc:
            log.debug("a tar batch of %s failed (%s); over SFTP", what, exc)
        finally:
            _settle(live)
        return None

    def _close(self, waiting: list[_Queued]) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        _settle(waiting)
        for task in self._tasks:
            task.cancel()


def _take(waiting: list[R]) -> list[R]:
    """The first requests of ``waiting``, removed from it: one batch's worth."""
    batch: list[R] = []
    size = 0
    while waiting and len(batch) < BATCH_FILES and size < BATCH_BYTES:
        req = waiting.pop(0)
        batch.append(req)
        size += req.size
    return batch


class TarFetcher(_Scheduler):
    """Batches small-file requests into ``tar`` commands on ``open_process``'s connection.

    ``open_process(command)`` starts a command with stdin and stdout as bytes. ``usable``
    is None until the first batch answers, then whether the account runs GNU tar."""

    def __init__(
        self, open_process: Callable[[str], Awaitable[asyncssh.SSHClientProcess[bytes]]]
    ) -> None:
        super().__init__(BATCHES_IN_FLIGHT)
        self._open = open_process
        self.budget = Budget(IN_FLIGHT_BYTES)
        self._pending: list[_Request] = []

    async def fetch(self, path: str, size: int) -> Result:
        """The bytes of ``path`` (expected ``size``) and of its sidecar, from a batch."""
        if not self.eligible(size):
            return None
        req = _Request(path, size, asyncio.get_running_loop().create_future())
        self._pending.append(req)
        result: Result = await self._wait(req, len(self._pending))
        return result

    def _next(self) -> Coroutine[Any, Any, None] | None:
        return self._run(_take(self._pending)) if self._pending else None

    def close(self) -> None:
        self._close(list(self._pending))
        self._pending.clear()

    async def _run(self, batch: list[_Request]) -> None:
        live = [r for r in batch if not r.future.done()]
        delivered = await self._guarded(live, self._stream, "small files")
        if delivered:
            self.usable = True

    async def _stream(self, live: list[_Request]) -> int:
        """Run one ``tar`` for ``live`` and hand out each file as soon as its sidecar is in;
        returns how many were delivered."""
        wanted: dict[str, tuple[_Request, bool]] = {}
        names: list[bytes] = []
        for req in live:
            for is_side, path in ((False, req.path), (True, req.path + SIDECAR_SUFFIX)):
                wanted.setdefault(member_name(path), (req, is_side))
                names.append(path.encode("utf-8", "surrogateescape") + b"\0")
        began = time.monotonic()
        proc = await self._open(TAR_COMMAND)
        errors = asyncio.ensure_future(proc.stderr.read())
        delivered = 0
        try:
            proc.stdin.write(b"".join(names))
            proc.stdin.write_eof()
            reader = proc.stdout
            while True:
                header = await _read(reader, BLOCK, at_start=not delivered)
                if header is None or header == bytes(BLOCK):
                    break
                try:
                    info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
                except tarfile.HeaderError as exc:
                    raise _Unusable(f"not a tar header: {exc}") from exc
                name = info.name
                if info.type == tarfile.GNUTYPE_LONGNAME:
                    raw = await _read_exact(reader, _padded(info.size))
                    name = raw[: info.size].rstrip(b"\0").decode("utf-8", "surrogateescape")
                    header = await _read_exact(reader, BLOCK)
                    try:
                        info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
                    except tarfile.HeaderError as exc:
                        raise _Unusable(f"not a tar header: {exc}") from exc
                size = info.size if info.type in tarfile.REGULAR_TYPES else 0
                data = (await _read_exact(reader, _padded(size)))[:size] if size else b""
                hit = wanted.get(name) if info.type in tarfile.REGULAR_TYPES else None
                if hit is None:
                    continue
                req, is_side = hit
                if req.future.done():
                    continue
                if is_side:
                    req.sidecar = data
                    if req.data is not None:
                        req.future.set_result((req.data, data))
                        delivered += 1
                elif len(data) == req.size:
                    req.data = data
            await proc.wait_closed()
            stderr = await errors
            if stderr:
                text = stderr.decode("utf-8", "replace").strip().splitlines()
                log.debug("tar on the server: %s", text[-1][:200] if text else "")
            log.debug(
                "tar batch of %d files: %d delivered in %.2f s (%s ... %s)",
                len(live),
                delivered,
                time.monotonic() - began,
                live[0].path,
                live[-1].path,
            )
            if not delivered and proc.exit_status not in (0, 1, 2, None):
                raise _Unusable(f"tar exited with {proc.exit_status}")
            if not delivered and proc.exit_status is None:
                raise _Unusable("tar gave no exit status")
        finally:
            if not errors.done():
                errors.cancel()
            with contextlib.suppress(BaseException):
                await errors
            proc.close()
        return delivered


async def _read(reader: asyncssh.SSHReader[bytes], n: int, *, at_start: bool) -> bytes | None:
    """``n`` bytes, or None at a clean end of the stream (tar ends with zero blocks, but a
    batch of files that all vanished may end with nothing at all)."""
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            if at_start:
                raise _Unusable("no output") from exc
            return None
        raise _Unusable("the stream stopped inside a header") from exc


async def _read_exact(reader: asyncssh.SSHReader[bytes], n: int) -> bytes:
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError as exc:
        raise _Unusable("the stream stopped inside a file") from exc


def _settle(requests: Sequence[_Queued]) -> None:
    """Whatever a batch did not deliver goes over SFTP."""
    for req in requests:
        if not req.future.done():
            req.future.set_result(None)


# ---------------------------------------------------------------------------- uploads

UP_BATCHES_IN_FLIGHT = 4
"""Upload ``tar`` commands at once per pool: OpenSSH gives each channel a 2 MiB window, so
one batch moves at most that much per round trip; several channels add up."""
END_MARK = "longterm-batch-end"


@dataclass
class SendRequest:
    """One file to upload by batch: ``md5`` the expected one (None: whatever was read)."""

    local: Path
    name: str  # the final name, in the batch's folder
    size: int
    mtime: int
    md5: str | None
    future: asyncio.Future[SendResult | None]


@dataclass(frozen=True)
class SendResult:
    """``ok``: in place with its sidecar. Else ``why`` it is not, and whether it was because
    the server's md5 differed (the caller tries once more over SFTP) or it did not move."""

    digest: str
    ok: bool
    why: str = ""
    mismatch: bool = False


class TarSender(_Scheduler):
    """Batches small uploads per folder into ``tar -x`` + ``md5sum`` commands."""

    def __init__(
        self,
        run: Callable[[str, bytes], Awaitable[asyncssh.SSHCompletedProcess]],
        move: Callable[[str, str], Awaitable[None]],
        rmdir: Callable[[str], Awaitable[None]],
    ) -> None:
        super().__init__(UP_BATCHES_IN_FLIGHT)
        self._run_command = run
        self._move = move
        self._rmdir = rmdir
        self._pending: dict[str, list[SendRequest]] = {}

    def eligible(self, size: int) -> bool:
        return self.usable is not False and size <= SMALL_FILE

    async def send(
        self, local: Path, rpath: str, size: int, mtime: int, md5: str | None
    ) -> SendResult | None:
        """Upload ``local`` to ``rpath`` in a batch of its folder; None: not done, use SFTP."""
        if not self.eligible(size):
            return None
        folder, name = posixpath.split(rpath)
        req = SendRequest(local, name, size, mtime, md5, asyncio.get_running_loop().create_future())
        waiting = self._pending.setdefault(folder, [])
        waiting.append(req)
        result: SendResult | None = await self._wait(req, len(waiting))
        return result

    def _next(self) -> Coroutine[Any, Any, None] | None:
        if not self._pending:
            return None
        folder = max(self._pending, key=lambda f: len(self._pending[f]))
        batch = _take(self._pending[folder])
        if not self._pending[folder]:
            del self._pending[folder]
        return self._batch(folder, batch)

    def close(self) -> None:
        self._close([req for waiting in self._pending.values() for req in waiting])
        self._pending.clear()

    async def _place(self, src: str, folder: str, req: SendRequest) -> str:
        """Rename a verified file, then its sidecar, over their final names; why not, or ""."""
        final = posixpath.join(folder, req.name)
        try:
            await self._move(src, final)
            await self._move(src + ".s", final + SIDECAR_SUFFIX)
        except asyncssh.SFTPError as exc:
            return " ".join(str(exc.reason or exc).split())
        return ""

    async def _batch(self, folder: str, batch: list[SendRequest]) -> None:
        live = [r for r in batch if not r.future.done()]
        await self._guarded(live, lambda todo: self._send(folder, todo), "small uploads")

    async def _send(self, folder: str, live: list[SendRequest]) -> None:
        began = time.monotonic()
        archive, digests = await asyncio.to_thread(_archive, live)
        loaded = time.monotonic()
        members = [str(i) for i in range(len(live)) if digests[i] is not None]
        if not members:
            return  # every file vanished locally: SFTP says so
        cd = f"cd -- {shlex.quote(folder or '.')}"
        # One command: a hidden folder beside the targets (same file system: the moves are
        # renames), the files extracted there, hashed there; its name first, a marker last.
        first = (
            f"{cd} && t=$(mktemp -d .longterm-up.XXXXXXXX) && printf '%s\\n' \"$t\" && "
            f'tar -xf - -C "$t" && cd -- "$t" && md5sum -- {" ".join(members)} && '
            f"echo {END_MARK}"
        )
        result = await self._run_command(first, archive)
        sent = time.monotonic()
        out = _text(result.stdout).splitlines()
        if not out or not out[0].startswith(".longterm-up."):
            raise _Unusable(f"exit {result.exit_status}: {_text(result.stderr).strip()[:120]}")
        tmp = out[0]
        cleaned = False
        try:
            if out[-1] != END_MARK:
                raise _Unusable(f"exit {result.exit_status}: {_text(result.stderr).strip()[:120]}")
            self.usable = True
            theirs: dict[str, str] = {}
            for line in out[1:-1]:
                hexdigest, _, member = line.partition("  ")
                theirs[member] = hexdigest.lower()
            placed: list[tuple[int, SendRequest, str]] = []
            results: list[tuple[SendRequest, SendResult]] = []
            for i, req in enumerate(live):
                read = digests[i]
                if read is None or req.future.done():
                    continue
                want = req.md5 or read
                got = theirs.get(str(i))
                if got == want:
                    placed.append((i, req, want))
                else:
                    why = f"md5sum on the server {got}, expected {want}"
                    results.append((req, SendResult(want, False, why, mismatch=True)))
            # The moves over SFTP, all at once: a rename each in sshd's own sftp-server, where
            # an mv per file was a process start each on the server (seconds per batch on a
            # loaded machine). Video before sidecar, as over SFTP.
            here = posixpath.join(folder, tmp)
            moved = await asyncio.gather(
                *(self._place(posixpath.join(here, str(i)), folder, req) for i, req, _ in placed)
            )
            for (_, req, want), why in zip(placed, moved, strict=True):
                failed = f"could not move it into place: {why}" if why else ""
                results.append((req, SendResult(want, not why, failed)))
            # The hidden folder goes before any file is answered: once the last answer is in,
            # the caller may close the connection.
            if len(placed) == len(members) and not any(moved):
                with contextlib.suppress(asyncssh.SFTPError):
                    await self._rmdir(here)
                    cleaned = True
            if not cleaned:
                await self._run_command(f"{cd} && rm -rf -- {shlex.quote(tmp)}", b"")
                cleaned = True
            for req, outcome in results:
                if not req.future.done():  # else its upload was cancelled meanwhile
                    req.future.set_result(outcome)
        finally:
            if not cleaned:
                with contextlib.suppress(asyncssh.Error, OSError):
                    await self._run_command(f"{cd} && rm -rf -- {shlex.quote(tmp)}", b"")
            log.debug(
                "tar upload of %d files to %s: %.2f s (read %.2f s, sent and hashed %.2f s)",
                len(live),
                folder,
                time.monotonic() - began,
                loaded - began,
                sent - loaded,
            )


def _archive(live: list[SendRequest]) -> tuple[bytes, list[str | None]]:
    """Blocking: a tar of the batch's files as ``0``, ``1``, ... and their sidecars as
    ``0.s``, ..., each with the local mtime; and each file's md5 of the bytes read (None:
    it could not be read, or its size changed: SFTP reports that)."""
    buf = io.BytesIO()
    digests: list[str | None] = []
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for i, req in enumerate(live):
            try:
                data = req.local.read_bytes()
            except OSError:
                digests.append(None)
                continue
            if len(data) != req.size:
                digests.append(None)
                continue
            digest = hashlib.md5(data).hexdigest()
            digests.append(digest)
            side = f"{req.md5 or digest}\n".encode()
            for name, blob in ((str(i), data), (f"{i}.s", side)):
                info = tarfile.TarInfo(name)
                info.size = len(blob)
                info.mtime = req.mtime
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(blob))
    return buf.getvalue(), digests


def _text(data: object) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return str(data or "")
