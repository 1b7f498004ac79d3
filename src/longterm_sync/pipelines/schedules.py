"""download-schedule --mode json: each selected participant's stored schedule, to a file.

``schedule_{external_id}.json`` holds the schedule object exactly as the server stores it
(``external_id``, ``language``, ``comments``, ``schedule`` ...), keys in the server's order,
with the entry list narrowed to the requested range: an entry is kept when its ``start``
lies in ``[start, stop)`` (a date-only stop already means "through that whole day"). Entries
whose start cannot be read are kept and reported, never dropped silently. Format as in
:mod:`longterm_sync.jsonstream` (2-space indent, UTF-8 unescaped, final newline).

Selection already fetches the participants' schedules (one request, or a few for a long id
list), so this costs no further request. A selected participant the server has no schedule
for fails alone (named in the summary, exit status 1).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from ..api import PlatformClient
from ..atomic import write_bytes_atomic
from ..config import Limits, ServerProfile
from ..events import Job, Reporter
from ..ids import id_file_name
from ..select import UNKNOWN_REASON, Participant, Selection
from ..summary import Summary
from ..timeutil import parse_datetime
from .fanout import check_output_dir, resolve_into
from .results import ScheduleMemo

log = logging.getLogger("longterm_sync.schedules")


@dataclass(frozen=True)
class ScheduleOptions:
    output_dir: Path
    selection: Selection


@dataclass
class Narrowed:
    schedule: dict[str, Any]
    kept: int
    total: int
    unreadable: int


def in_range(start: datetime, lo: datetime | None, hi: datetime | None) -> bool:
    return (lo is None or start >= lo) and (hi is None or start < hi)


def narrow_schedule(
    schedule: dict[str, Any], lo: datetime | None, hi: datetime | None, tz: ZoneInfo
) -> Narrowed:
    """A copy of ``schedule`` whose entry list keeps the entries starting in ``[lo, hi)``."""
    entries = schedule.get("schedule")
    if not isinstance(entries, list):
        return Narrowed(copy.copy(schedule), 0, 0, 0)
    kept: list[Any] = []
    unreadable = 0
    for entry in entries:
        start = entry.get("start") if isinstance(entry, dict) else None
        try:
            moment = parse_datetime(start, tz) if isinstance(start, str) else None
        except ValueError:
            moment = None
        if moment is None:
            unreadable += 1
            kept.append(entry)
        elif in_range(moment, lo, hi):
            kept.append(entry)
    narrowed = dict(schedule)
    narrowed["schedule"] = kept
    return Narrowed(narrowed, len(kept), len(entries), unreadable)


def schedule_file_name(external_id: str) -> str:
    return id_file_name("schedule_{}.json", external_id)


def _write_all(
    output_dir: Path, items: list[tuple[Participant, Narrowed]]
) -> list[tuple[str, int]]:
    written: list[tuple[str, int]] = []
    for p, narrowed in items:
        data = orjson.dumps(
            narrowed.schedule, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
        )
        name = schedule_file_name(p.external_id)
        written.append((name, write_bytes_atomic(output_dir / name, data)))
    return written


async def run_download_schedule(
    profile: ServerProfile,
    limits: Limits,
    options: ScheduleOptions,
    *,
    reporter: Reporter | None = None,
) -> Summary:
    """Write one schedule file per selected participant; missing ones fail alone."""
    job = Job("download-schedule", reporter)
    summary = job.summary
    await asyncio.to_thread(check_output_dir, options.output_dir)
    async with PlatformClient(profile, limits) as client:
        memo = ScheduleMemo(client)
        participants = await resolve_into(options.selection, memo, job)
        await memo.ensure([p.external_id for p in participants])
        summary.bytes = client.bytes_received
        summary.details["requests"] = client.requests
    ready: list[tuple[Participant, Narrowed]] = []
    for p in participants:
        schedule = memo.by_id.get(p.external_id)
        if schedule is None:
            job.failed(f"participant {p.external_id}", UNKNOWN_REASON)
            continue
        ready.append((p, narrow_schedule(schedule, p.start, p.stop, profile.tz)))
    job.planned(len(ready))
    written = await asyncio.to_thread(_write_all, options.output_dir, ready)
    for (p, n), (name, _) in zip(ready, written, strict=True):
        job.done(f"participant {p.external_id}", {"entries": n.kept}, data=name)
    summary.files.extend(name for name, _ in written)
    summary.count("participants", len(ready))
    summary.count("entries", sum(n.kept for _, n in ready))
    dropped = sum(n.total - n.kept for _, n in ready)
    if dropped:
        summary.count("entries outside the range", dropped)
    for p, n in ready:
        if n.unreadable:
            job.warn(
                f"participant {p.short}: {n.unreadable} entr(y/ies) with an unreadable start, "
                "kept in the file"
            )
    summary.details["output_dir"] = str(options.output_dir)
    job.finish()
    log.debug("wrote %d schedule files to %s", len(written), options.output_dir)
    return summary
