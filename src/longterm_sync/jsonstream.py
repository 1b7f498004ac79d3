"""JSON arrays written item by item: one compact item per line.

``results_all.json`` holds every result of a study (hundreds of MB), so it is never built in
memory: items are encoded one at a time and appended to a file opened with
:func:`longterm_sync.atomic.atomic_writer`.

The format of the results and feedback files (documented in the README): a JSON array with
one element per line, each element compact (no spaces), UTF-8 with non-ASCII characters
unescaped, keys in the server's order, numbers exactly as the server wrote them::

    [
    {"external_id":"...","date":"2022-01-07T20:18:46.889000+01:00","result":{...}},
    {"external_id":"...","date":"...","result":{...}}
    ]

(``[]`` for an empty list), with a final newline. Any JSON reader loads it; ``grep`` and
``wc -l`` work per item; ``jq .`` pretty-prints it. It is chosen over an indented dump because
a result is mostly sensor samples: indentation puts every number on its own line, which makes
the files 1.7 times larger and costs more time to write than the download itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import msgspec

from .atomic import atomic_writer

_ENCODER = msgspec.json.Encoder()
SYNC_EVERY = 32 << 20
_OPEN = b"[\n"
_CLOSE = b"\n]\n"
_EMPTY = b"[]\n"


def encode_item(item: Any) -> bytes:
    """One array element on one line (``msgspec.Raw`` values are copied verbatim)."""
    return _ENCODER.encode(item)


def encode_items(items: Iterable[Any]) -> bytes:
    """The inside of an array (between ``[\\n`` and ``\\n]``) for these items."""
    return b",\n".join(encode_item(item) for item in items)


def dump_array(items: Iterable[Any]) -> bytes:
    """A whole array document: the bytes :class:`ArrayWriter` writes for the same items."""
    inner = encode_items(items)
    return _OPEN + inner + _CLOSE if inner else _EMPTY


class ArrayWriter:
    """Appends pre-encoded elements to an open binary file (blocking; use in a thread)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.count = 0
        self.bytes = 0
        self._synced = 0

    def write_parts(self, parts: Sequence[bytes]) -> None:
        """Append elements encoded by :func:`encode_item`."""
        for part in parts:
            self._put(_OPEN if self.count == 0 else b",\n")
            self._put(part)
            self.count += 1
        self._maybe_sync()

    def splice_file(self, path: Path, count: int) -> None:
        """Append the elements of an array file this module wrote, without parsing it."""
        if count <= 0:
            return
        size = path.stat().st_size
        if size <= len(_EMPTY):
            return
        self._put(_OPEN if self.count == 0 else b",\n")
        self.fh.flush()
        left = size - len(_OPEN) - len(_CLOSE)
        with path.open("rb") as src:
            offset = len(_OPEN)
            while left > 0:
                n = _copy_range(src, self.fh, left, offset)
                if n <= 0:
                    raise OSError(f"{path} shrank while being copied")
                offset += n
                left -= n
                self.bytes += n
        self.count += count
        self._maybe_sync()

    def finish(self) -> None:
        self._put(_CLOSE if self.count else _EMPTY)

    def _put(self, data: bytes) -> None:
        self.fh.write(data)
        self.bytes += len(data)

    def _maybe_sync(self) -> None:
        """Push written data to the disk as we go, so the final fsync has little left.

        A results file can be hundreds of MB; flushing it all at the end would stall the
        run's last step on the disk instead of overlapping with the downloads.
        """
        if self.bytes - self._synced >= SYNC_EVERY:
            self.fh.flush()
            os.fdatasync(self.fh.fileno())
            self._synced = self.bytes


def _copy_range(src: IO[bytes], dst: IO[bytes], count: int, offset: int) -> int:
    """Copy up to ``count`` bytes of ``src`` from ``offset`` to ``dst``'s position.

    In-kernel (``copy_file_range``) where the system allows it, so the bytes of a large
    file never pass through Python; plain reads and writes otherwise.
    """
    try:
        return os.copy_file_range(src.fileno(), dst.fileno(), count, offset)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            raise
    src.seek(offset)
    chunk = src.read(min(count, 8 << 20))
    dst.write(chunk)
    dst.flush()
    return len(chunk)


class AsyncArrayFile:
    """An :class:`ArrayWriter` on an atomic file, driven from the event loop.

    Writes run in a worker thread. The final name appears only when ``async with`` exits
    cleanly; any exception (cancellation included) removes the
    temporary file, so an interrupted run never leaves a partial file under a final name.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cm: contextlib.AbstractContextManager[IO[bytes]] | None = None
        self._writer: ArrayWriter | None = None
        self._lock = asyncio.Lock()

    @property
    def writer(self) -> ArrayWriter:
        if self._writer is None:
            raise RuntimeError("AsyncArrayFile used outside 'async with'")
        return self._writer

    @property
    def count(self) -> int:
        return self.writer.count

    async def __aenter__(self) -> AsyncArrayFile:
        cm = atomic_writer(self.path)
        fh = await asyncio.to_thread(cm.__enter__)
        self._cm = cm
        self._writer = ArrayWriter(fh)
        return self

    async def write_parts(self, parts: Sequence[bytes]) -> None:
        async with self._lock:
            await asyncio.to_thread(self.writer.write_parts, parts)

    async def splice_file(self, path: Path, count: int) -> None:
        async with self._lock:
            await asyncio.to_thread(self.writer.splice_file, path, count)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        cm, self._cm = self._cm, None
        if cm is None:
            return
        if exc_type is None:
            await asyncio.to_thread(self._finish, cm)
        else:
            # Cleanup is an unlink: cheap enough to do right here, even while cancelled.
            cm.__exit__(exc_type, exc, tb)

    def _finish(self, cm: contextlib.AbstractContextManager[IO[bytes]]) -> None:
        try:
            self.writer.finish()
        except BaseException as exc:
            cm.__exit__(type(exc), exc, exc.__traceback__)
            raise
        cm.__exit__(None, None, None)
