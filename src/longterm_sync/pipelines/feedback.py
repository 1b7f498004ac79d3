"""``user_feedback``: every free-text feedback comment of the selected participants, one CSV.

``user_feedback.csv`` has the columns ``date,external_id,video,comment``, newest first (ties
keep the participants' order, then the server's). ``date`` is written as the server sent it
(ISO 8601 with the Warsaw offset); sorting uses the parsed instant, so ``+01:00`` and
``+02:00`` values order correctly across a DST change. The file is UTF-8 without a BOM;
comments keep their newlines and commas, quoted as CSV requires. A comment without a date is
kept, listed last, and counted as incomplete.

Every participant (no selection flag, or ``--user_time=,,,start,stop``) is one request
without an ``external_id`` filter, as the original did: comments are a few hundred bytes each,
so even a whole study's stay small, and the per-participant requests cost more than the
bodies. Named participants are fetched each over their own range, window by window (``[limits]
window_days``); one the server does not know is a failure (exit 1).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..api import FEEDBACK_COMMENTS, PlatformClient
from ..atomic import write_text_atomic
from ..config import Limits, ServerProfile
from ..events import Job, Reporter
from ..ids import REFUSED_REASON, is_safe_id, shown_id
from ..select import Participant, Selection
from ..summary import Summary
from ..timeutil import parse_datetime
from .fanout import (
    check_output_dir,
    decode_list,
    fetch_windows,
    per_participant,
    resolve_into,
)

log = logging.getLogger("longterm_sync.pipelines.feedback")

CSV_NAME = "user_feedback.csv"
COLUMNS = ("date", "external_id", "video", "comment")


@dataclass(frozen=True, kw_only=True)
class FeedbackOptions:
    selection: Selection
    output_dir: Path = Path()


def _sort_key(row: dict[str, Any]) -> float:
    value = row.get("date")
    if isinstance(value, str):
        try:
            return parse_datetime(value).timestamp()
        except ValueError:
            pass
    return float("-inf")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def feedback_csv(rows: list[dict[str, Any]]) -> str:
    """The CSV text, newest first; rows without a parsable date last."""
    import pandas as pd

    ordered = sorted(rows, key=_sort_key, reverse=True)  # stable: ties keep fetch order
    frame = pd.DataFrame(
        [[_text(r.get(c)) for c in COLUMNS] for r in ordered], columns=list(COLUMNS)
    )
    return str(frame.to_csv(index=False, lineterminator="\n"))


async def run_feedback(
    profile: ServerProfile,
    limits: Limits,
    options: FeedbackOptions,
    *,
    reporter: Reporter | None = None,
) -> Summary:
    """Fetch every selected participant's comments and write ``user_feedback.csv``."""
    job = Job("user_feedback", reporter)
    summary = job.summary
    now = datetime.now(profile.tz)
    await asyncio.to_thread(check_output_dir, options.output_dir)
    async with PlatformClient(profile, limits) as client:
        selection = options.selection
        if selection.is_all:
            # Every participant: one request, as the original did. Comments are small, so
            # the whole study's answer stays small; per-participant fan-out only costs
            # requests (measured on the platform: 42 requests 1.3-2.0 s, one 0.55-0.79 s).
            body = await client.list_everyone_bytes(
                FEEDBACK_COMMENTS, selection.start, selection.stop
            )
            chunks: list[list[Any] | None] = [await decode_list(body, FEEDBACK_COMMENTS)]
            job.warn_all(selection.warnings)
        else:
            participants = await resolve_into(selection, client, job)
            job.planned(len(participants))

            async def fetch(p: Participant) -> list[Any]:
                rows = await fetch_windows(
                    client, FEEDBACK_COMMENTS, p, limits, start=p.start, stop=p.stop, now=now
                )
                job.done(f"participant {p.external_id}", {"comments": len(rows)})
                return rows

            chunks = await per_participant(participants, limits, fetch, job)
        summary.bytes = client.bytes_received
        summary.details["requests"] = client.requests
        summary.details["retried"] = client.retried
    rows = [r if isinstance(r, dict) else {} for chunk in chunks if chunk for r in chunk]
    if selection.is_all:
        rows = _drop_refused(rows, job)
    incomplete = sum(1 for r in rows if _sort_key(r) == float("-inf") or not r.get("video"))
    text = await asyncio.to_thread(feedback_csv, rows)
    path = options.output_dir / CSV_NAME
    await asyncio.to_thread(write_text_atomic, path, text)
    summary.files.append(str(path))
    # For everyone, the one request does not say who has no comment: count who has one.
    covered = (
        len({str(r.get("external_id") or "") for r in rows} - {""})
        if selection.is_all
        else len(participants)
    )
    summary.count("participants", covered)
    summary.count("comments", len(rows))
    if incomplete:
        summary.count("incomplete comments", incomplete)
        job.warn(f"{incomplete} comment(s) lack a date or a video")
    job.finish()
    log.debug("user_feedback: %d comments of %d participants", len(rows), covered)
    return summary


def _drop_refused(rows: list[dict[str, Any]], job: Job) -> list[dict[str, Any]]:
    """Comments of participants whose id breaks the id rule are left out, each id a failure,
    as in every command (the study-wide answer bypasses the participant listing)."""
    refused: list[str] = []
    kept = []
    for row in rows:
        ext = row.get("external_id")
        if isinstance(ext, str) and ext and not is_safe_id(ext):
            if ext not in refused:
                refused.append(ext)
        else:
            kept.append(row)
    for ext in refused:
        job.failed(f"participant {shown_id(ext)}", REFUSED_REASON)
    return kept
