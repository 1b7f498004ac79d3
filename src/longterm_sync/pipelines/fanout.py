"""Fan-out over participants for the report pipelines (user_feedback, user_activity).

Participants are worked by :func:`longterm_sync.workers.run_items` (``rest_concurrency`` at
once); each participant's range is fetched window by window (:mod:`longterm_sync.windows`).
What an error stops is the errors module's one policy: a window that still fails after the
client's retries (:class:`TransientError`) or an answer that is not what the platform sends
(:class:`ProtocolError`: invalid JSON, not a list) fails that participant and the others go
on; a rejected token, a missing route, an unreachable server stop the run as one error.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from ..api import PlatformClient, decode_list
from ..atomic import local_io_error
from ..config import Limits
from ..errors import LocalIOError
from ..events import Job
from ..ids import REFUSED_REASON, shown_id
from ..select import UNKNOWN_REASON, Directory, Participant, Selection, resolve_participants
from ..windows import participant_windows
from ..workers import first_error, run_items

T = TypeVar("T")


def check_output_dir(folder: Path) -> None:
    """Fail before downloading anything when the output folder cannot take a file."""
    if folder.exists() and not folder.is_dir():
        raise LocalIOError(f"output folder {folder} is a file", hint="choose another --output-dir")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        os.close(fd)
        Path(name).unlink()
    except OSError as exc:
        raise local_io_error(exc, folder) from None


async def resolve_into(selection: Selection, client: Directory, job: Job) -> list[Participant]:
    """Who the run covers; warnings, skipped spreadsheet rows and participants the server
    does not know (failures: listed, exit 1, no file written for them) go to ``job``."""
    resolved = await resolve_participants(selection, client)
    summary = job.summary
    job.warn_all(resolved.warnings)
    for p in resolved.unknown:
        job.failed(f"participant {p.external_id}", UNKNOWN_REASON)
    for p in resolved.refused:
        job.failed(f"participant {shown_id(p.external_id)}", REFUSED_REASON)
    if selection.skipped:
        summary.counts.setdefault("participants", 0)  # keep "participants" first in the line
        summary.count("skipped", len(selection.skipped))
        summary.details["skipped"] = selection.skipped_records()
    return resolved.participants


async def fetch_windows(
    client: PlatformClient,
    route: str,
    participant: Participant,
    limits: Limits,
    *,
    start: datetime | None,
    stop: datetime | None,
    now: datetime,
) -> list[Any]:
    """All rows of one participant in ``(start, stop)``, in window order."""
    chunks = await fetch_window_bodies(
        client, route, participant, limits, start=start, stop=stop, now=now
    )
    rows: list[Any] = []
    for body in chunks:
        rows.extend(await decode_list(body, route))
    return rows


async def fetch_window_bodies(
    client: PlatformClient,
    route: str,
    participant: Participant,
    limits: Limits,
    *,
    start: datetime | None,
    stop: datetime | None,
    now: datetime,
) -> list[bytes]:
    """The raw JSON bodies of one participant's windows over ``(start, stop)``, in order.

    Windows run in parallel (the client's connector bounds the connections). Bodies are
    compact; a caller that only needs a digest of the rows parses them one at a time, since
    parsed rows take several times the memory of their JSON. With an open start there is no
    schedule here to anchor windows on, so the range is one request.
    """
    windows = participant_windows(
        start, stop, days=limits.window_days, schedule=None, tz=client.profile.tz, now=now
    )
    ext = participant.external_id
    if len(windows) == 1:
        return await client.list_route_split(route, ext, windows[0].start, windows[0].stop, hi=now)
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(client.list_route_split(route, ext, w.start, w.stop, hi=now))
                for w in windows
            ]
    except BaseExceptionGroup as exc:
        raise first_error(exc) from None
    return [body for task in tasks for body in task.result()]


async def per_participant(
    participants: Sequence[Participant],
    limits: Limits,
    fetch: Callable[[Participant], Awaitable[T]],
    job: Job,
) -> list[T | None]:
    """``fetch`` every participant with ``rest_concurrency`` workers; ``None`` = failed.

    Results keep the participants' order whatever order they finish in.
    """
    return await run_items(
        participants,
        fetch,
        workers=limits.rest_concurrency,
        job=job,
        label=lambda p: f"participant {p.external_id}",
    )
