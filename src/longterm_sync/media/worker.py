"""Helper processes that take a share of a download (``Limits.sftp_processes``).

One asyncio process is bounded by its event loop: SSH packet handling and SFTP requests are
Python code, so a second process with its own connection adds throughput where a second
connection in the same process does not (issue 4's measurements, confirmed here). The
parent keeps the decisions, the cache and the summary; a worker only downloads the files it
is given, verifies them exactly as the parent would (:func:`.transfer.download`), and
reports each outcome as one JSON line on stdout. Its logging is relayed the same way, so
nothing is printed behind the CLI's back. The REST token is never passed to a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from .. import errors
from ..config import Limits, ServerProfile
from ..errors import FileFailed, LongtermError
from ..events import Event, Progress
from .meter import Meter
from .names import local_path
from .remote import FileInfo, SftpRemote
from .sftp import SftpPool
from .transfer import download

log = logging.getLogger("longterm_sync.media.worker")

PROGRESS_EVERY = 4 << 20  # bytes between progress lines
# Not ``-m``: the package imports this module, and runpy would warn about a second copy.
WORKER_MAIN = "import sys; from longterm_sync.media.worker import main; sys.exit(main())"

Message = dict[str, Any]


def job_bytes(
    profile: ServerProfile,
    limits: Limits,
    dest: Path,
    files: Sequence[FileInfo],
    partials: dict[str, int],
) -> bytes:
    """What a worker reads on stdin (a pipe, never argv or the environment). The profile
    goes without its token; a key's passphrase, when one was asked for, goes along."""
    return orjson.dumps(
        {
            "profile": {
                "name": profile.name,
                "url": profile.url,
                "ssh_user": profile.ssh_user,
                "ssh_host": profile.ssh_host,
                "ssh_port": profile.ssh_port,
                "key": str(profile.key),
                "known_hosts": str(profile.known_hosts),
                "media_dir": profile.media_dir,
                "timezone": profile.timezone,
                "key_passphrase": profile.key_passphrase,
            },
            "limits": asdict(limits),
            "dest": str(dest),
            "parent": os.getpid(),
            "files": [[f.rel, f.size, f.mtime, partials.get(f.rel, 0)] for f in files],
        }
    )


async def run_worker(
    profile: ServerProfile,
    limits: Limits,
    dest: Path,
    files: Sequence[FileInfo],
    partials: dict[str, int],
    on_event: Callable[[Message], None],
) -> None:
    """Start one worker process for ``files`` and feed its events to ``on_event``.

    A fatal error in the worker is raised here as the same error class; cancelling this
    coroutine kills the worker."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WORKER_MAIN,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=1 << 20,
    )
    assert proc.stdin is not None and proc.stdout is not None
    fatal: LongtermError | None = None
    try:
        proc.stdin.write(job_bytes(profile, limits, dest, files, partials))
        await proc.stdin.drain()
        proc.stdin.close()
        while line := await proc.stdout.readline():
            event: Message = orjson.loads(line)
            if "fatal" in event:
                cls = getattr(errors, str(event["fatal"]), LongtermError)
                if not (isinstance(cls, type) and issubclass(cls, LongtermError)):
                    cls = LongtermError
                fatal = cls(str(event["message"]), hint=event.get("hint"))
            elif "log" in event:
                log.log(int(event["log"]), "%s", event["message"])
            else:
                on_event(event)
        status = await proc.wait()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    if fatal is not None:
        raise fatal
    if status != 0:
        raise errors.LocalIOError(f"a download worker process exited with status {status}")


# ------------------------------------------------------------------ inside the worker


def _emit(event: Message) -> None:
    sys.stdout.buffer.write(orjson.dumps(event) + b"\n")
    sys.stdout.buffer.flush()


class _RelayHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        _emit({"log": record.levelno, "message": record.getMessage()})


class _RelayProgress:
    """Bytes moved, relayed to the parent in batches (a line per block would cost more than
    the bar is worth); the parent's own meter turns them into events."""

    def __init__(self) -> None:
        self.pending = 0

    def emit(self, event: Event) -> None:
        if isinstance(event, Progress):
            self.pending += event.bytes
            if abs(self.pending) >= PROGRESS_EVERY:
                self.flush()

    def flush(self) -> None:
        if self.pending:
            _emit({"progress": self.pending})
            self.pending = 0


async def _serve(job: dict[str, Any]) -> None:
    raw = job["profile"]
    profile = ServerProfile(
        **{**raw, "key": Path(raw["key"]), "known_hosts": Path(raw["known_hosts"])}
    )
    limits = Limits(**job["limits"])
    dest = Path(job["dest"])
    relay = _RelayProgress()
    progress = Meter(relay)
    files = [FileInfo(rel, int(size), int(mtime)) for rel, size, mtime, _ in job["files"]]
    partials = {rel: int(partial) for rel, _, _, partial in job["files"]}
    try:
        async with SftpPool(profile, limits) as pool:
            remote = SftpRemote(pool, profile.media_dir, concurrency=limits.checkers)

            async def one(video: FileInfo) -> None:
                try:
                    landed = await download(
                        pool,
                        remote.path(video.rel),
                        video,
                        remote.read_sidecar(video.rel),
                        local_path(dest, video.rel),
                        progress,
                        partials.get(video.rel, 0),
                    )
                except FileFailed as exc:
                    _emit({"failed": video.rel, "reason": str(exc)})
                    return
                st = landed.stat
                assert st is not None
                relay.flush()
                _emit(
                    {
                        "done": video.rel,
                        "md5": landed.md5,
                        "size": st.st_size,
                        "mtime": int(st.st_mtime),
                        "mtime_ns": st.st_mtime_ns,
                    }
                )

            async with asyncio.TaskGroup() as tg:
                for video in files:
                    tg.create_task(one(video))
    except* LongtermError as group:
        exc = group.exceptions[0]
        assert isinstance(exc, LongtermError)
        _emit({"fatal": type(exc).__name__, "message": exc.message, "hint": exc.hint})
    relay.flush()
    if progress.resumed_bytes:
        _emit({"resumed": progress.resumed_bytes})


PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies: a helper whose parent was
    killed (``kill -9``) must not go on writing partial files into the destination."""
    with contextlib.suppress(Exception):  # not Linux: the parent's kill() still applies
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent and os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def main() -> int:
    root = logging.getLogger("longterm_sync")
    root.handlers[:] = [_RelayHandler()]
    root.setLevel(logging.INFO)
    root.propagate = False
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    job = orjson.loads(sys.stdin.buffer.read())
    die_with_parent(int(job.get("parent", 0)))
    from ..runner import run_async

    try:
        run_async(_serve(job))
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM reaches the helpers too: the parent reports
        return 130
    except Exception as exc:  # a bug: still one line for the parent, not a traceback
        _emit({"fatal": "LongtermError", "message": f"download worker failed: {exc!r}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
