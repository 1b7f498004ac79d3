"""JSON arrays written item by item, byte-identical to dumping the whole list at once.

``results_all.json`` holds every result of a study (hundreds of MB), so it is never built in
memory: items are serialized one at a time and appended to a file opened with
:func:`longterm_sync.atomic.atomic_writer`.

The output format (documented in the README): UTF-8 with non-ASCII characters unescaped,
two-space indentation, keys in the server's order, a final newline; exactly what
``orjson.dumps(items, option=OPT_INDENT_2 | OPT_APPEND_NEWLINE)`` gives for the whole list
(``[]`` for an empty one). An item inside the array is its own indented dump shifted right by
two spaces; that shift is a plain byte replace because JSON strings cannot hold a raw newline,
so every newline orjson writes is layout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson

from .atomic import atomic_writer

DUMP_OPTIONS = orjson.OPT_INDENT_2
COPY_CHUNK = 8 << 20
_OPEN = b"[\n"
_CLOSE = b"\n]\n"
_EMPTY = b"[]\n"


def encode_item(item: Any) -> bytes:
    """One array element, indented as it sits inside the array."""
    return b"  " + orjson.dumps(item, option=DUMP_OPTIONS).replace(b"\n", b"\n  ")


def encode_items(items: Iterable[Any]) -> bytes:
    """The inside of an array (between ``[\\n`` and ``\\n]``) for these items."""
    return b",\n".join(encode_item(item) for item in items)


def dump_array(items: Iterable[Any]) -> bytes:
    """A whole array document; same bytes as :class:`ArrayWriter` writing the same items."""
    inner = encode_items(items)
    return _OPEN + inner + _CLOSE if inner else _EMPTY


class ArrayWriter:
    """Appends pre-encoded elements to an open binary file (blocking; use in a thread)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.count = 0
        self.bytes = 0

    def write_parts(self, parts: Sequence[bytes]) -> None:
        """Append elements encoded by :func:`encode_item`."""
        for part in parts:
            self._put(_OPEN if self.count == 0 else b",\n")
            self._put(part)
            self.count += 1

    def splice_file(self, path: Path, count: int) -> None:
        """Append the elements of an array file this module wrote, without parsing it."""
        if count <= 0:
            return
        size = path.stat().st_size
        if size <= len(_EMPTY):
            return
        self._put(_OPEN if self.count == 0 else b",\n")
        with path.open("rb") as src:
            src.seek(len(_OPEN))
            left = size - len(_OPEN) - len(_CLOSE)
            while left > 0:
                chunk = src.read(min(COPY_CHUNK, left))
                if not chunk:
                    raise OSError(f"{path} shrank while being copied")
                self._put(chunk)
                left -= len(chunk)
        self.count += count

    def finish(self) -> None:
        self._put(_CLOSE if self.count else _EMPTY)

    def _put(self, data: bytes) -> None:
        self.fh.write(data)
        self.bytes += len(data)


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
