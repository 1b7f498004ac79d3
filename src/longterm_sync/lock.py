"""One run per destination folder, and what killed runs left behind there.

Two runs writing into one folder share temporary names (a video's ``.name.partial`` is its
resume point) and overwrite each other's work: a mirror was seen to finish a video with its
first 8 MiB zeroed, the size and mtime equal to the server's, so every later run skipped it.
So every command that writes into a folder first takes an exclusive ``flock`` on
``<folder>/.longterm.lock``. The kernel drops it when the process dies, however it dies, so a
lock is never stale; a clean exit also removes the file, so the folder holds only output. A
second run stops at once with :class:`DestinationBusy` (exit status 5) naming the pid that
holds it, or waits for it with ``--wait``.

Holding the lock also makes it safe to remove what killed runs left: the temporary files of
atomic writes (``.<name>.<8 random>.partial``), write probes and sidecar partials. Video
partials (``.<video>.partial``) are kept, since a later run resumes from them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .atomic import local_io_error
from .errors import ExitCode, LocalIOError, LongtermError

log = logging.getLogger("longterm_sync.lock")

LOCK_NAME = ".longterm.lock"
WAIT_POLL_SECONDS = 0.2

# mkstemp's names in atomic.py: "." + final name + "." + 8 of [a-z0-9_] + ".partial"
_ATOMIC_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.partial$")
_WRITE_PROBE = re.compile(r"^\.write-test\.[a-z0-9_]{8}$")
_SIDECAR_PARTIAL = re.compile(r"^\..+\.md5sum\.partial$")


class DestinationBusy(LongtermError):
    """Another run holds the destination's lock."""

    exit_code = ExitCode.BUSY


def is_stale_temp(name: str) -> bool:
    """A temporary file no later run can use (video partials are not: they are resumed)."""
    return bool(
        _ATOMIC_TEMP.match(name) or _WRITE_PROBE.match(name) or _SIDECAR_PARTIAL.match(name)
    )


@dataclass
class Cleanup:
    files: int = 0
    bytes: int = 0


def remove_stale_temps(folder: Path, *, recursive: bool) -> Cleanup:
    """Delete the temporary files of killed runs; call only while holding the lock."""
    done = Cleanup()
    todo = [folder]
    while todo:
        current = todo.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if recursive:
                        todo.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False) and is_stale_temp(entry.name):
                    size = entry.stat(follow_symlinks=False).st_size
                    Path(entry.path).unlink()
                    done.files += 1
                    done.bytes += size
            except OSError:
                continue
    return done


class DestinationLock:
    """``with DestinationLock(folder):`` holds ``folder``'s lock (creating the folder)."""

    def __init__(self, folder: Path, *, wait: bool = False, recursive: bool = False) -> None:
        self.folder = folder
        self.wait = wait
        self.recursive = recursive
        self.fd: int | None = None
        self.cleaned = Cleanup()

    @property
    def path(self) -> Path:
        return self.folder / LOCK_NAME

    def __repr__(self) -> str:
        return f"DestinationLock({self.folder}, {'held' if self.fd is not None else 'free'})"

    def holder(self) -> str:
        """The pid written by the run that holds the lock (best effort)."""
        try:
            text = self.path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            return "?"
        return text if text.isdigit() else "?"

    def _open(self) -> int:
        if self.folder.exists() and not self.folder.is_dir():
            raise LocalIOError(
                f"output folder {self.folder} is a file", hint="choose another folder"
            )
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise local_io_error(exc, self.path) from None

    def _still_linked(self, fd: int) -> bool:
        """The file we locked is still the one at the path (a releasing run unlinks it)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)

    def acquire(self) -> None:
        fd = self._open()
        told = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    if self._still_linked(fd):
                        break
                    os.close(fd)  # we locked a file its holder just removed: start over
                    fd = self._open()
                    continue
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise local_io_error(exc, self.path) from None
                if not self.wait:
                    raise DestinationBusy(
                        f"{self.folder} is in use by another longterm run (pid {self.holder()})",
                        hint="let it finish, or pass --wait to wait for it",
                    )
                if not told:
                    log.warning(
                        "waiting for pid %s, which is writing into %s", self.holder(), self.folder
                    )
                    told = True
                time.sleep(WAIT_POLL_SECONDS)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self.cleaned = remove_stale_temps(self.folder, recursive=self.recursive)
        if self.cleaned.files:
            log.info(
                "removed %d temporary file(s) (%.1f MB) left in %s by interrupted runs",
                self.cleaned.files,
                self.cleaned.bytes / 1e6,
                self.folder,
            )

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()  # still locked: a waiter sees it unlinked and opens a new one
        os.close(fd)  # closing drops the flock

    def __enter__(self) -> DestinationLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def locked(
    folders: Sequence[Path], *, wait: bool = False, recursive: Sequence[Path] = ()
) -> Iterator[list[DestinationLock]]:
    """Hold the locks of several folders (each once, in a fixed order: no deadlock)."""
    deep = {p.resolve() for p in recursive}
    unique = sorted({p.resolve() for p in folders})
    with contextlib.ExitStack() as stack:
        held = [
            stack.enter_context(DestinationLock(p, wait=wait, recursive=p in deep)) for p in unique
        ]
        yield held
