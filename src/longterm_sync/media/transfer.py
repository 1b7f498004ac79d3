"""Verified transfers of single files. Nothing unverified ever has a final name.

Download: pipelined SFTP reads (``max_requests`` in flight, in order) feed a worker thread
that writes the ``.partial`` file and hashes it at the same time (cheaper than a second
pass); then fsync, compare with the server's sidecar, rename. A mismatch deletes the
partial and retries once; a second mismatch fails the file and keeps the old local copy.
An interrupted download resumes from its partial file (whose prefix is hashed first).

Upload: pipelined writes to a hidden partial name on the server, verification (``md5sum``
over exec where the account allows it, else size; ``full`` also reads the file back),
rename over the final name, and only then the sidecar, itself written to a partial name.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import inspect
import logging
import os
import posixpath
import queue
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import asyncssh

from ..atomic import fsync_dir, local_io_error
from ..config import COMMIT_THREADS, DOWNLOAD_BACKLOG
from ..errors import FileFailed, LocalIOError
from .meter import Meter
from .names import SIDECAR_SUFFIX, partial_name
from .remote import FileInfo, parse_md5
from .sftp import CONNECTION_LOST, SftpPool, connection_lost, sftp_error_text

log = logging.getLogger("longterm_sync.media.transfer")

EARLY_SYNC = 64 << 20
"""A large download is flushed to disk every this many bytes while it streams, so the fsync
before its rename does not wait for the whole file to reach the disk at the end."""
THREAD_MIN_SIZE = 4 << 20  # smaller files are written and hashed in one to_thread call
READ_AHEAD = 1 << 20  # local bytes read (and hashed) per thread hop when uploading


_COMMIT_POOL: ThreadPoolExecutor | None = None


def _commit_pool() -> ThreadPoolExecutor:
    global _COMMIT_POOL
    if _COMMIT_POOL is None:
        _COMMIT_POOL = ThreadPoolExecutor(COMMIT_THREADS, thread_name_prefix="media-commit")
    return _COMMIT_POOL


@dataclass(frozen=True)
class Landed:
    """What a finished download produced: its md5 and, when it verified, the final stat."""

    md5: str
    stat: os.stat_result | None  # None: md5 mismatch, the partial was removed


class _Sink:
    """Writes and hashes a partial file, in order, off the event loop.

    Large files stream through a dedicated thread while the download runs; small ones are
    buffered and written in the same single thread hop that verifies and installs them.
    """

    def __init__(self, path: Path, offset: int, threaded: bool) -> None:
        self.path = path
        self.offset = offset
        self.threaded = threaded
        self.error: OSError | None = None
        self._chunks: list[bytes] = []
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._hash = hashlib.md5()
        self._fh: BinaryIO | None = None
        self._thread: threading.Thread | None = None
        self._backlog = 0  # bytes queued, not yet written (threaded mode)
        self._drained = threading.Condition()

    def start(self) -> None:
        if self.threaded:
            self._thread = threading.Thread(target=self._run, name="media-sink", daemon=True)
            self._thread.start()

    def _open(self) -> BinaryIO:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.offset:
            fh = open(self.path, "r+b")  # noqa: SIM115 - closed in _finish_sync/abort
            remaining = self.offset
            while remaining:
                block = fh.read(min(remaining, 1 << 20))
                if not block:
                    fh.close()
                    raise OSError(errno.EIO, "partial file shrank while resuming")
                self._hash.update(block)
                remaining -= len(block)
            fh.truncate(self.offset)
            return fh
        return open(self.path, "wb")

    def _run(self) -> None:
        try:
            self._fh = self._open()
        except OSError as exc:
            self.error = exc
        unsynced = 0
        while (item := self._queue.get()) is not None:
            if self._fh is not None and self.error is None:
                try:
                    self._fh.write(item)
                    self._hash.update(item)
                    unsynced += len(item)
                    if unsynced >= EARLY_SYNC:
                        self._fh.flush()
                        os.fdatasync(self._fh.fileno())
                        unsynced = 0
                except OSError as exc:
                    self.error = exc
            with self._drained:
                self._backlog -= len(item)
                self._drained.notify_all()

    def put(self, data: bytes) -> None:
        if self.threaded:
            with self._drained:
                self._backlog += len(data)
            self._queue.put(data)
        else:
            self._chunks.append(data)

    def _wait_below(self, limit: int) -> None:
        with self._drained:
            self._drained.wait_for(lambda: self._backlog <= limit or self.error is not None)

    async def drain(self) -> None:
        """Backpressure: when the disk is slower than the network, stop reading until the
        writer has caught up, instead of buffering the file in memory."""
        if self.threaded and self._backlog > DOWNLOAD_BACKLOG:
            await asyncio.to_thread(self._wait_below, DOWNLOAD_BACKLOG // 2)

    def _join(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _finish_sync(self, mtime: int, expected: str, final: Path) -> Landed:
        """Blocking: flush, fsync, verify; on a match rename into place beside a sidecar."""
        self._join()
        if not self.threaded:
            self._fh = self._open()
            for chunk in self._chunks:
                self._fh.write(chunk)
                self._hash.update(chunk)
            self._chunks.clear()
        if self.error is not None:
            raise self.error
        fh = self._fh
        assert fh is not None
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        md5 = self._hash.hexdigest()
        if md5 != expected:
            _unlink(self.path)
            return Landed(md5, None)
        os.utime(self.path, (mtime, mtime))
        self.path.replace(final)
        side = final.with_name(final.name + SIDECAR_SUFFIX)
        side_tmp = side.with_name(partial_name(side.name))
        with open(side_tmp, "wb") as out:
            out.write(f"{md5}\n".encode())
            out.flush()
            os.fsync(out.fileno())
        side_tmp.replace(side)
        fsync_dir(final.parent)
        return Landed(md5, final.stat())

    async def finish(self, mtime: int, expected: str, final: Path) -> Landed:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_commit_pool(), self._finish_sync, mtime, expected, final)

    def _abort_sync(self) -> None:
        self._join()
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()

    async def abort(self) -> None:
        await asyncio.to_thread(self._abort_sync)


async def _pipelined_read(
    fh: asyncssh.SFTPClientFile,
    start: int,
    size: int,
    block: int,
    depth: int,
    sink: _Sink,
    progress: Meter,
) -> None:
    """Read ``[start, size)`` with ``depth`` requests in flight, delivering in order."""
    window: deque[tuple[int, int, asyncio.Future[bytes]]] = deque()
    pos = start
    try:
        while pos < size or window:
            while pos < size and len(window) < depth:
                n = min(block, size - pos)
                window.append((pos, n, asyncio.ensure_future(fh.read(n, pos))))
                pos += n
            offset, want, fut = window.popleft()
            data = await fut
            got = 0
            await sink.drain()
            while True:
                sink.put(data)
                progress.advance(len(data))
                if sink.error is not None:
                    raise sink.error
                got += len(data)
                if got >= want:
                    break
                # A short read: ask for the rest of this block before going on.
                data = cast(bytes, await fh.read(want - got, offset + got))
                if not data:
                    raise FileFailed("the file shrank on the server during the transfer")
    finally:
        for _, _, fut in window:
            fut.cancel()
        if window:
            await asyncio.gather(*(f for _, _, f in window), return_exceptions=True)


async def _fetch(
    pool: SftpPool,
    rpath: str,
    video: FileInfo,
    partial: Path,
    final: Path,
    expected: Callable[[], Awaitable[str]],
    progress: Meter,
    resume: bool,
    partial_size: int | None,
) -> Landed:
    """Download into ``partial``, then verify against ``expected`` and install.

    ``partial_size``: the partial file's size if the caller listed it (0: none), None to
    look here (one more thread hop per file)."""
    offset = 0
    if resume:
        have = partial_size
        if have is None:
            with contextlib.suppress(OSError):
                have = (await asyncio.to_thread(partial.stat)).st_size
        if have and 0 < have <= video.size:
            offset = have
            log.info("resuming %s at %d of %d bytes", rpath, have, video.size)
    sink = _Sink(partial, offset, threaded=video.size - offset >= THREAD_MIN_SIZE)
    sink.start()
    progress.advance(offset)
    progress.resumed_bytes += offset
    finished = False
    try:
        async with (
            pool.transfer(video.size) as sftp,
            sftp.open(rpath, "rb", block_size=0) as fh,
        ):
            await _pipelined_read(
                fh,
                offset,
                video.size,
                pool.block_size,
                pool.limits.sftp_max_requests,
                sink,
                progress,
            )
        want = await expected()
        finished = True
        return await sink.finish(video.mtime, want, final)
    finally:
        if not finished:
            await sink.abort()


async def download(
    pool: SftpPool,
    rpath: str,
    video: FileInfo,
    expected: Awaitable[str | None],
    final: Path,
    progress: Meter,
    partial_size: int | None = None,
) -> Landed:
    """Fetch one verified file to ``final`` (and its ``.md5sum`` beside it).

    A small file comes with its sidecar in a batched ``tar`` stream where the server allows
    it (:meth:`SftpPool.fetch_small`), else over SFTP. ``expected`` (the server's sidecar)
    is then awaited only once the bytes are in, so reading it overlaps the download. Raises
    FileFailed (this file only), LocalIOError (local disk) or ConnectError (link lost).
    """
    partial = final.with_name(partial_name(final.name))
    first = 1
    batched = await _from_batch(pool, rpath, video, partial, final, progress)
    if batched is not None:
        if batched.stat is not None:
            _discard(expected)
            return batched
        first = 2  # the batch's copy did not match: one more try, over SFTP
    sidecar = asyncio.ensure_future(expected)

    async def want() -> str:
        md5 = await sidecar
        if md5 is None:
            raise FileFailed("its .md5sum vanished from the server")
        return md5

    landed = batched or Landed("", None)
    try:
        for attempt in range(first, 3):
            try:
                landed = await _fetch(
                    pool, rpath, video, partial, final, want, progress, attempt == 1, partial_size
                )
            except CONNECTION_LOST as exc:
                raise connection_lost(pool.profile, exc) from exc
            except asyncssh.SFTPEOFError as exc:
                _unlink(partial)
                raise FileFailed("the file shrank on the server during the transfer") from exc
            except asyncssh.SFTPError as exc:
                raise FileFailed(f"server refused the read: {sftp_error_text(exc)}") from exc
            except FileFailed:
                _unlink(partial)
                raise
            except OSError as exc:
                _unlink(partial)
                raise _local_error(exc, final) from exc
            if landed.stat is not None:
                return landed
            progress.advance(-video.size)  # rewind: the whole file comes again
            log.warning(
                "%s: corrupted on transfer (md5 %s, sidecar says %s)%s",
                rpath,
                landed.md5,
                sidecar.result(),
                "; retrying once" if attempt == 1 else "",
            )
    finally:
        if not sidecar.done():
            sidecar.cancel()
        # Always collect it: an unretrieved error would be logged by asyncio on stderr.
        await asyncio.gather(sidecar, return_exceptions=True)
    raise FileFailed(
        f"corrupted on transfer: md5 differs (server sidecar {sidecar.result()}, received "
        f"{landed.md5}) twice; the local copy was left as it was"
    )


async def _from_batch(
    pool: SftpPool, rpath: str, video: FileInfo, partial: Path, final: Path, progress: Meter
) -> Landed | None:
    """The first attempt from a batched ``tar`` stream: the bytes and the sidecar that came
    with them, installed exactly as an SFTP download is (partial, fsync, md5, rename).
    None: not delivered whole by a batch (or no md5 in the sidecar), fetch over SFTP."""
    if not pool.small_batched(video.size):
        return None
    async with pool.tar.budget.hold(video.size):  # until it is on the disk
        got = await pool.fetch_small(rpath, video.size)
        if got is None:
            return None
        data, side = got
        theirs = parse_md5(side)
        if theirs is None:
            return None  # the SFTP path says what is wrong with the sidecar
        sink = _Sink(partial, 0, threaded=False)
        sink.put(data)
        progress.advance(len(data))
        try:
            landed = await sink.finish(video.mtime, theirs, final)
        except OSError as exc:
            _unlink(partial)
            raise _local_error(exc, final) from exc
    if landed.stat is None:
        progress.advance(-video.size)
        log.warning(
            "%s: corrupted on transfer (md5 %s, sidecar says %s); retrying once",
            rpath,
            landed.md5,
            theirs,
        )
    return landed


def _discard(awaitable: Awaitable[object]) -> None:
    """Drop an awaitable that will not be awaited (no 'never awaited' warning)."""
    if inspect.iscoroutine(awaitable):
        awaitable.close()
    elif isinstance(awaitable, asyncio.Future):
        awaitable.cancel()


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _local_error(exc: OSError, path: Path) -> LocalIOError:
    if exc.errno == errno.EFBIG:
        return LocalIOError(
            f"disk full while writing {path} (file size limit reached)",
            hint="free some space or raise the limit, then re-run",
        )
    return local_io_error(exc, path)


# ---------------------------------------------------------------------------- uploads


def _read_hashing(fh: BinaryIO, n: int, hasher: Any | None) -> bytes:
    """Blocking: the next ``n`` bytes, fed to ``hasher`` on the way (same thread hop)."""
    data = fh.read(n)
    if hasher is not None:
        hasher.update(data)
    return data


async def _send(
    sftp: asyncssh.SFTPClient,
    local: Path,
    rpartial: str,
    info: FileInfo,
    block: int,
    depth: int,
    progress: Meter,
    offset: int = 0,
    hasher: Any | None = None,
) -> None:
    """Write ``local`` from ``offset`` on to ``rpartial`` with ``depth`` writes in flight,
    then stamp its mtime. With ``hasher``, the whole local file is hashed as it is read
    (its md5 was not needed to decide, so it costs no separate pass)."""
    pending: deque[asyncio.Future[None]] = deque()
    try:
        fh_local = await asyncio.to_thread(open, local, "rb")
    except OSError as exc:
        raise FileFailed(f"cannot read the local file: {exc.strerror}") from exc
    try:
        if offset:
            prefix = await asyncio.to_thread(_read_hashing, fh_local, offset, hasher)
            if len(prefix) != offset:
                raise FileFailed("the local file shrank during the upload")
        async with sftp.open(rpartial, "r+b" if offset else "wb", block_size=0) as fh:
            pos = offset
            while pos < info.size:
                want = max(READ_AHEAD, block)
                chunk = await asyncio.to_thread(_read_hashing, fh_local, want, hasher)
                if not chunk:
                    raise FileFailed("the local file shrank during the upload")
                view = memoryview(chunk)
                for i in range(0, len(chunk), block):
                    if len(pending) >= depth:
                        await pending.popleft()
                    piece = bytes(view[i : i + block])
                    pending.append(asyncio.ensure_future(_write(fh, piece, pos, progress)))
                    pos += len(piece)
            while pending:
                await pending.popleft()
            await fh.utime((info.mtime, info.mtime))
    except OSError as exc:
        if isinstance(exc, CONNECTION_LOST):
            raise
        raise FileFailed(f"cannot read the local file: {exc.strerror or exc}") from exc
    finally:
        for fut in pending:
            fut.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        fh_local.close()


async def _write(fh: asyncssh.SFTPClientFile, data: bytes, pos: int, progress: Meter) -> None:
    await fh.write(data, pos)
    progress.advance(len(data))


async def _read_back_md5(pool: SftpPool, rpath: str, size: int) -> str:
    h = hashlib.md5()

    class _HashSink(_Sink):
        def put(self, data: bytes) -> None:
            h.update(data)

    sink = _HashSink(Path(os.devnull), 0, threaded=False)
    async with pool.transfer(size) as sftp, sftp.open(rpath, "rb", block_size=0) as fh:
        await _pipelined_read(
            fh, 0, size, pool.block_size, pool.limits.sftp_max_requests, sink, Meter()
        )
    return h.hexdigest()


async def _verify_remote(
    pool: SftpPool, rpath: str, info: FileInfo, md5: str, verify: str
) -> tuple[bool, str, bool]:
    """Did ``rpath`` arrive intact? md5sum on the server when allowed, else its size.

    Returns (ok, why, by_content): the last is False when only the size was compared."""
    if verify == "md5":
        got_md5 = await pool.remote_md5(rpath)
        if got_md5 is not None:
            return got_md5 == md5, f"md5sum on the server {got_md5}, expected {md5}", True
    attrs = await pool.sftp.stat(rpath)
    if attrs.size != info.size:
        return False, f"size on the server is {attrs.size}, expected {info.size}", False
    if verify == "full":
        got = await _read_back_md5(pool, rpath, info.size)
        return got == md5, f"read-back md5 {got}, expected {md5}", True
    return True, "size only", False


async def _resumable(pool: SftpPool, rpartial: str, info: FileInfo, verify: str) -> int:
    """Bytes of an interrupted upload's partial worth keeping: only when the result will
    be checked by content (a size check cannot tell a stale prefix)."""
    if verify == "size" or (verify == "md5" and pool.exec_available is False):
        return 0
    try:
        attrs = await pool.sftp.stat(rpartial)
    except asyncssh.SFTPError:
        return 0
    size = int(attrs.size or 0)
    return size if 0 < size <= info.size else 0


async def upload(
    pool: SftpPool,
    local: Path,
    rpath: str,
    info: FileInfo,
    md5: str | None,
    verify: str,
    progress: Meter,
) -> tuple[FileInfo, FileInfo, str]:
    """Send one file, verify it, rename it into place, then write its sidecar.

    ``md5`` None: hash the file while sending it. Both files get the local file's mtime,
    so the returned (video, sidecar, md5) state, which the md5 cache records, is known
    without another round trip."""
    known = md5
    digest = ""
    rdir, name = posixpath.split(rpath)
    rpartial = posixpath.join(rdir, partial_name(name))
    why = ""
    first = 1
    if verify == "md5" and pool.exec_available is not False:
        sent = await pool.tar_up.send(local, rpath, info.size, info.mtime, known)
        if sent is not None:
            if sent.ok:
                progress.advance(info.size)
                return (
                    FileInfo(info.rel, info.size, info.mtime),
                    FileInfo(info.rel + SIDECAR_SUFFIX, len(sent.digest) + 1, info.mtime),
                    sent.digest,
                )
            if not sent.mismatch:
                raise FileFailed(sent.why)
            log.warning("%s: upload did not verify (%s); retrying once", rpath, sent.why)
            first = 2  # the batch was the first try
    try:
        for attempt in range(first, 3):
            offset = await _resumable(pool, rpartial, info, verify) if attempt == 1 else 0
            if offset:
                log.info("resuming upload of %s at %d of %d bytes", rpath, offset, info.size)
                progress.advance(offset)
                progress.resumed_bytes += offset
            hasher = hashlib.md5() if known is None else None
            async with pool.transfer(info.size) as sftp:
                await _send(
                    sftp,
                    local,
                    rpartial,
                    info,
                    pool.block_size,
                    pool.limits.upload_depth(pool.block_size),
                    progress,
                    offset,
                    hasher,
                )
            digest = hasher.hexdigest() if hasher is not None else str(known)
            ok, why, by_content = await _verify_remote(pool, rpartial, info, digest, verify)
            if ok and offset and not by_content:
                ok, why = False, "a resumed upload cannot be verified by its size alone"
            if ok:
                break
            with contextlib.suppress(asyncssh.SFTPError):
                await pool.sftp.remove(rpartial)
            progress.advance(-info.size)  # rewind: the whole file goes again
            log.warning(
                "%s: upload did not verify (%s)%s",
                rpath,
                why,
                "; retrying once" if attempt == 1 else "",
            )
        else:
            raise FileFailed(
                f"upload did not verify twice ({why}); the server copy was left as it was"
            )
        sftp = pool.sftp
        await pool.replace(rpartial, rpath)
        side_partial = posixpath.join(rdir, partial_name(name + SIDECAR_SUFFIX))
        side_data = f"{digest}\n".encode()
        async with sftp.open(side_partial, "wb") as fh:
            await fh.write(side_data, 0)
            await fh.utime((info.mtime, info.mtime))
        await pool.replace(side_partial, rpath + SIDECAR_SUFFIX)
    except CONNECTION_LOST as exc:
        raise connection_lost(pool.profile, exc) from exc
    except asyncssh.SFTPError as exc:
        raise FileFailed(f"server refused: {sftp_error_text(exc)}") from exc
    return (
        FileInfo(info.rel, info.size, info.mtime),
        FileInfo(info.rel + SIDECAR_SUFFIX, len(side_data), info.mtime),
        digest,
    )
