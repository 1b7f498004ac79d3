"""Helper processes that take a share of a download (``Limits.sftp_processes``).

One asyncio process is bounded by its event loop: SSH packet handling and SFTP requests are
Python code, so a second process with its own connection adds throughput where a second
connection in the same process does not (issue 4's measurements, confirmed here). The
parent keeps the decisions, the cache and the summary; a worker only copies the files it
is given, exactly as the parent would (``LocalSide.put`` from the server's
:class:`.sides.SftpSide`: verified while written), and reports each outcome as one message.
The process machinery (the job on stdin, JSON lines back, logging relayed, dying with the
parent) is the general one of :mod:`longterm_sync.procs`; this module is the download job
run in it. The REST token is never passed to a worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..config import Limits, ServerProfile
from ..errors import FileFailed, LongtermError
from ..events import Event, Progress
from ..procs import Message, child_main, emit, emit_fatal, run_child
from .meter import Meter
from .remote import FileInfo, Tree
from .sftp import SftpPool
from .sides import LocalSide, SftpSide

log = logging.getLogger("longterm_sync.media.worker")

PROGRESS_EVERY = 4 << 20  # bytes between progress lines
WHAT = "download worker"


def job_of(
    profile: ServerProfile,
    limits: Limits,
    dest: Path,
    files: Sequence[FileInfo],
    partials: dict[str, int],
) -> Message:
    """What a worker reads on stdin. The profile goes without its token; a key's
    passphrase, when one was asked for, goes along (a pipe: never argv or the environment)."""
    return {
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
        "files": [[f.rel, f.size, f.mtime, partials.get(f.rel, 0)] for f in files],
    }


async def run_worker(
    profile: ServerProfile,
    limits: Limits,
    dest: Path,
    files: Sequence[FileInfo],
    partials: dict[str, int],
    on_event: Callable[[Message], None],
) -> None:
    """One worker process for ``files``, its messages fed to ``on_event``. A fatal error in
    the worker is raised here as the same error class; cancelling this kills the worker."""
    job = job_of(profile, limits, dest, files, partials)
    await run_child(__name__, job, on_event, what=WHAT)


# ------------------------------------------------------------------ inside the worker


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
            emit({"progress": self.pending})
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
            server = SftpSide(pool, profile.media_dir)
            server.listed = Tree(files={video.rel: video for video in files})
            local = LocalSide(dest)

            async def one(video: FileInfo) -> None:
                try:
                    copied = await local.put(
                        video.rel, server, progress=progress, resume=partials.get(video.rel, 0)
                    )
                except FileFailed as exc:
                    emit({"failed": video.rel, "reason": str(exc)})
                    return
                relay.flush()
                mine = copied.info
                emit(
                    {
                        "done": video.rel,
                        "md5": copied.md5,
                        "size": mine.size,
                        "mtime": mine.mtime,
                        "mtime_ns": mine.mtime_ns,
                    }
                )

            async with asyncio.TaskGroup() as tg:
                for video in files:
                    tg.create_task(one(video))
    except* LongtermError as group:
        exc = group.exceptions[0]
        assert isinstance(exc, LongtermError)
        emit_fatal(exc)
    relay.flush()
    if progress.resumed_bytes:
        emit({"resumed": progress.resumed_bytes})


def main() -> int:
    return child_main(_serve, what=WHAT)
