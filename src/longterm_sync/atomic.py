"""Crash-safe file writes: temporary name in the same folder, fsync, rename, fsync the folder.

A crash at any moment leaves either the previous good file or the new complete one under the
final name, never a half-written file. Every output of longterm_sync goes through here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import LocalIOError

PARTIAL_SUFFIX = ".partial"


def local_io_error(exc: OSError, path: Path | str) -> LocalIOError:
    """Turn an OSError into a one-line error that says what to do about it."""
    if exc.errno == errno.ENOSPC:
        return LocalIOError(f"disk full while writing {path}", hint="free some space and re-run")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return LocalIOError(
            f"cannot write {path}: permission denied",
            hint="choose a writable --output-dir or fix the folder's permissions",
        )
    if exc.errno == errno.ENOENT:
        return LocalIOError(f"cannot write {path}: folder does not exist")
    return LocalIOError(f"cannot write {path}: {exc.strerror or exc}")


def fsync_dir(folder: Path) -> None:
    """Make a rename durable: the directory entry must reach the disk too."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_writer(
    path: Path | str, mode: str = "wb", *, permissions: int | None = None
) -> Iterator[IO[bytes]]:
    """Yield a file object; on clean exit its content replaces ``path`` atomically.

    On any exception the temporary file is removed and ``path`` is untouched. The file is
    created with the permissions a plain ``open`` would give (umask honoured), or exactly
    ``permissions`` (a file holding secrets is never readable by others, not even briefly).
    """
    target = Path(path)
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=PARTIAL_SUFFIX, dir=folder
        )
    except OSError as exc:
        raise local_io_error(exc, target) from exc
    tmp = Path(tmp_name)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask if permissions is None else permissions)
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(target)
        fsync_dir(folder)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise local_io_error(exc, target) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_bytes_atomic(path: Path | str, data: bytes) -> int:
    """Write ``data`` to ``path`` atomically; return the number of bytes written."""
    with atomic_writer(path) as fh:
        fh.write(data)
    return len(data)


def write_text_atomic(path: Path | str, text: str) -> int:
    return write_bytes_atomic(path, text.encode("utf-8"))
