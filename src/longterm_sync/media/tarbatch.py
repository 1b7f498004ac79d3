"""Small downloads in batches: one remote ``tar`` stream for many files and their sidecars.

Over SFTP a small file costs about seven requests (open, reads, close, and the same for its
sidecar), each Python work on our side; at 40 ms the client's CPU per file, not the link,
was the limit (bench/README.md, issue 11). Where the media account has a shell (API.md: it
runs ``md5sum``, ``find``), one ``tar`` command per batch streams the videos and their
``.md5sum`` files back to back on one channel, parsed here as it arrives.

Nothing here trusts the stream more than SFTP's bytes: every file is still written to its
partial name, fsynced, checked against its sidecar and renamed by :mod:`.transfer`. A member
is matched to a request by its exact name (names we asked for, never extracted by a path
the server chose), so a hostile name cannot place anything. Whatever the batch does not
deliver whole (a missing file, another size, a non-regular member, a stream that stops or
does not parse, no ``tar`` on the server) is answered with ``None`` and fetched over SFTP
as before; an account without a usable ``tar`` is remembered and never asked again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tarfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

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
BATCHES_IN_FLIGHT = 2
"""``tar`` commands at once per pool: while one streams, the next one's round trips to
start are already under way."""

TAR_COMMAND = (
    "tar -cf - --format=gnu --no-recursion --hard-dereference --null --verbatim-files-from -T -"
)
"""GNU tar, names NUL-separated on stdin (any byte but NUL, a leading ``-`` not read as an
option); ``--hard-dereference``: a file linked twice is sent twice, not as a link."""

BLOCK = 512

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


@dataclass
class _Batch:
    requests: list[_Request] = field(default_factory=list)
    size: int = 0


def member_name(path: str) -> str:
    """The name GNU tar gives ``path`` in its archive (leading slashes removed)."""
    return path.lstrip("/")


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


class TarFetcher:
    """Batches small-file requests into ``tar`` commands on ``open_process``'s connection.

    ``open_process(command)`` starts a command with stdin and stdout as bytes. ``usable``
    is None until the first batch answers, then whether the account runs GNU tar."""

    def __init__(
        self, open_process: Callable[[str], Awaitable[asyncssh.SSHClientProcess[bytes]]]
    ) -> None:
        self._open = open_process
        self.usable: bool | None = None
        self._pending = _Batch()
        self._timer: asyncio.TimerHandle | None = None
        self._running = 0
        self._queue: list[_Batch] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def eligible(self, size: int) -> bool:
        return self.usable is not False and 0 < size <= SMALL_FILE

    async def fetch(self, path: str, size: int) -> Result:
        """The bytes of ``path`` (expected ``size``) and of its sidecar, from a batch."""
        if not self.eligible(size):
            return None
        loop = asyncio.get_running_loop()
        req = _Request(path, size, loop.create_future())
        self._pending.requests.append(req)
        self._pending.size += size
        if len(self._pending.requests) >= BATCH_FILES or self._pending.size >= BATCH_BYTES:
            self._seal()
        elif self._timer is None:
            self._timer = loop.call_later(BATCH_LINGER, self._seal)
        try:
            return await req.future
        finally:
            if not req.future.done():
                req.future.cancel()

    def _seal(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending.requests:
            self._queue.append(self._pending)
            self._pending = _Batch()
        self._start()

    def _start(self) -> None:
        while self._queue and self._running < BATCHES_IN_FLIGHT:
            batch = self._queue.pop(0)
            self._running += 1
            task = asyncio.ensure_future(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._running -= 1
        self._start()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for batch in [self._pending, *self._queue]:
            for req in batch.requests:
                if not req.future.done():
                    req.future.set_result(None)
        for task in self._tasks:
            task.cancel()

    async def _run(self, batch: _Batch) -> None:
        live = [r for r in batch.requests if not r.future.done()]
        if not live:
            return
        if self.usable is False:
            _settle(live)
            return
        try:
            delivered = await self._stream(live)
        except asyncio.CancelledError:
            _settle(live)
            raise
        except _Unusable as exc:
            if self.usable is None:
                log.info("no usable tar on the server (%s); small files over SFTP", exc)
                self.usable = False
            else:
                log.debug("a tar batch did not parse (%s); its files over SFTP", exc)
        except (asyncssh.Error, OSError) as exc:
            # The caller's SFTP fallback meets a lost connection again and reports it.
            log.debug("tar batch failed (%s); its files over SFTP", exc)
        else:
            if delivered:
                self.usable = True
        _settle(live)

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


def _settle(requests: list[_Request]) -> None:
    """Whatever a batch did not deliver goes over SFTP."""
    for req in requests:
        if not req.future.done():
            req.future.set_result(None)
