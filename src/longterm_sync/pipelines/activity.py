"""``user_activity``: one row per participant, one cell per day of the report window.

A cell describes every result whose ``date`` (the moment the phone finished the viewing, read
in the profile's timezone) falls on that day; several results on one day are joined with
``" | "`` in date order. Each result gives ``WATCH[POSE] ANSWER``:

``WATCH``
    ``ok`` when the watched duration is within ``±sec_margin`` of the video's duration;
    ``<+12s`` when it was longer (paused or slowed down); ``>-7s`` when shorter (skipped or
    sped up); ``?`` when the result lacks the fields to tell (counted as incomplete).
    *Watched duration* is the wall-clock time from ``playback_started`` to ``playback_ended``
    (both set by the phone); when either is missing, the span of ``playback_data.timestamp``
    (first to last sample) is used instead. Pausing lengthens it, seeking forward shortens it.
``POSE``
    `` ↓`` when the phone lay face down: the median accelerometer ``z`` is below -0.8 after
    dropping the first max(10 % of the samples, the samples of the first 3 s); `` ???`` when the
    result has no accelerometer data (or none is left after that cut); nothing otherwise.
``ANSWER``
    the answer to the question whose ``optional_id`` is ``--question`` (default ``q2``):
    booleans as ``yes``/``no``, numbers as written, text shortened to 30 characters; `` x``
    when it went unanswered (no answer, a null answer, or the question is not in the form).

A day without any result is ``-``. A participant whose results could not be fetched gets
``error`` in every cell (and the run exits 1), so a failure never reads as inactivity.

Columns are ``no, external_id`` and then the days of the report window, **oldest first**
(left to right like a calendar), named ``YYYY-MM-DD``. The window is the ``report_days`` days
ending with today (``--until`` moves its last day); only results inside it are fetched,
further clipped to a participant's own range from the selection.
"""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from ..analysis.stats import watched_seconds
from ..api import WATCH_RESULTS, PlatformClient
from ..config import PARSE_SLOTS, Limits, ServerProfile
from ..errors import ProtocolError
from ..events import Job, Reporter
from ..render.activity import activity_csv, activity_xlsx
from ..select import Participant, Selection
from ..summary import Summary
from ..timeutil import parse_datetime
from .fanout import check_output_dir, fetch_window_bodies, per_participant, resolve_into

log = logging.getLogger("longterm_sync.pipelines.activity")

CSV_NAME = "user_activity.csv"
XLSX_NAME = "user_activity.xlsx"
NO_RESULT = "-"
FAILED = "error"
UNKNOWN_WATCH = "?"
FACE_DOWN = " ↓"
NO_ACCEL = " ???"
UNANSWERED = " x"
JOIN = " | "
FACE_DOWN_Z = -0.8
SETTLE_FRACTION = 0.10
SETTLE_SECONDS = 3.0
ANSWER_CHARS = 30


@dataclass(frozen=True, kw_only=True)
class ActivityOptions:
    selection: Selection
    output_dir: Path = Path()
    sec_margin: float = 3.0
    report_days: int = 30
    question: str = "q2"
    xlsx: bool = False
    until: date | None = None  # last day of the report; None = today in the profile's zone


# -- one result -> one cell part --------------------------------------------------------------


@dataclass(frozen=True)
class Viewing:
    """What one watch result says, reduced to the three parts of a cell."""

    when: datetime | None
    watch: str
    pose: str
    answer: str
    incomplete: bool = False

    @property
    def text(self) -> str:
        return f"{self.watch}{self.pose}{self.answer}"


def watch_part(result: dict[str, Any], margin: float) -> str:
    watched = watched_seconds(result)
    duration_ms = result.get("video_duration")
    if (
        watched is None
        or isinstance(duration_ms, bool)
        or not isinstance(duration_ms, int | float)
        or duration_ms <= 0
    ):
        return UNKNOWN_WATCH
    diff = watched - duration_ms / 1000.0
    if abs(diff) <= margin:
        return "ok"
    seconds = math.floor(abs(diff) + 0.5)
    return f"<+{seconds}s" if diff > 0 else f">-{seconds}s"


def _numbers(values: Any) -> list[float] | None:
    if not isinstance(values, list):
        return None
    out = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return out if len(out) == len(values) else None


def _settle_count(stamps: Any, n: int) -> int:
    """How many leading samples to drop: max(10 %, those within the first 3 s)."""
    by_fraction = math.ceil(n * SETTLE_FRACTION)
    if not isinstance(stamps, list) or len(stamps) != n or n == 0:
        return by_fraction
    try:
        first = parse_datetime(str(stamps[0]))
        limit = first + timedelta(seconds=SETTLE_SECONDS)
        by_time = n
        for i, stamp in enumerate(stamps):
            if parse_datetime(str(stamp)) >= limit:
                by_time = i
                break
    except ValueError:
        return by_fraction
    return max(by_fraction, by_time)


def pose_part(result: dict[str, Any]) -> str:
    accel = result.get("accelerometer_data")
    if not isinstance(accel, dict):
        return NO_ACCEL
    z = _numbers(accel.get("z"))
    if not z:
        return NO_ACCEL
    rest = z[_settle_count(accel.get("timestamp"), len(z)) :]
    if not rest:
        return NO_ACCEL
    return FACE_DOWN if statistics.median(rest) < FACE_DOWN_Z else ""


def _format_answer(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, list | dict):
        text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
    else:
        text = str(value)
    text = " ".join(text.replace("|", "/").split())
    if not text:
        return None
    return text if len(text) <= ANSWER_CHARS else text[: ANSWER_CHARS - 1] + "…"


def answer_part(result: dict[str, Any], question: str) -> str:
    form = result.get("reply_form")
    content = form.get("content") if isinstance(form, dict) else form
    if not isinstance(content, list):
        return UNANSWERED
    for item in content:
        if isinstance(item, dict) and item.get("optional_id") == question:
            answer = item.get("answer")
            value = answer
            if isinstance(answer, dict):
                value = answer.get("content", answer.get("value"))
            text = _format_answer(value)
            return f" {text}" if text is not None else UNANSWERED
    return UNANSWERED


def viewing(item: Any, *, margin: float, question: str, tz: ZoneInfo) -> Viewing:
    """One list item ``{"external_id", "date", "result"}`` -> its cell part (never raises)."""
    item = item if isinstance(item, dict) else {}
    when: datetime | None = None
    if isinstance(item.get("date"), str):
        try:
            when = parse_datetime(item["date"], tz).astimezone(tz)
        except ValueError:
            when = None
    result = item.get("result")
    if not isinstance(result, dict):
        return Viewing(when, UNKNOWN_WATCH, NO_ACCEL, UNANSWERED, incomplete=True)
    watch = watch_part(result, margin)
    return Viewing(
        when,
        watch,
        pose_part(result),
        answer_part(result, question),
        incomplete=watch == UNKNOWN_WATCH or when is None,
    )


# -- the table --------------------------------------------------------------------------------


def report_days(until: date, count: int) -> list[date]:
    """The report window's days, oldest first."""
    return [until - timedelta(days=count - 1 - i) for i in range(count)]


def report_bounds(days: Sequence[date], tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Fetch bounds for the server's strict filters (``start < date < stop``): one
    microsecond before the first midnight, the midnight after the last day."""
    start = datetime.combine(days[0], time(), tzinfo=tz) - timedelta(microseconds=1)
    stop = datetime.combine(days[-1] + timedelta(days=1), time(), tzinfo=tz)
    return start, stop


def clip(
    participant: Participant, start: datetime, stop: datetime
) -> tuple[datetime, datetime] | None:
    """The report bounds narrowed to the participant's own range; None when they miss."""
    if participant.start is not None and participant.start > start:
        start = participant.start
    if participant.stop is not None and participant.stop < stop:
        stop = participant.stop
    return (start, stop) if start < stop else None


def row_cells(viewings: Iterable[Viewing], days: Sequence[date]) -> list[str]:
    by_day: dict[date, list[Viewing]] = {d: [] for d in days}
    for v in viewings:
        if v.when is not None and v.when.date() in by_day:
            by_day[v.when.date()].append(v)
    cells = []
    for d in days:
        todays = sorted(by_day[d], key=lambda v: v.when or datetime.min)
        cells.append(JOIN.join(v.text for v in todays) if todays else NO_RESULT)
    return cells


@dataclass
class ParticipantRow:
    external_id: str
    cells: list[str]
    results: int = 0
    incomplete: int = 0


@dataclass
class ActivityTable:
    days: list[date]
    rows: list[ParticipantRow] = field(default_factory=list)

    @property
    def header(self) -> list[str]:
        return ["no", "external_id", *(d.isoformat() for d in self.days)]

    def frame(self) -> Any:
        import pandas as pd

        records = [[i, r.external_id, *r.cells] for i, r in enumerate(self.rows, start=1)]
        return pd.DataFrame(records, columns=self.header)


def cell_kind(text: str) -> str:
    if text == FAILED:
        return "failed"
    if text == NO_RESULT:
        return "none"
    parts = text.split(JOIN)
    if any(FACE_DOWN in p for p in parts):
        return "face_down"
    if any(p.startswith(("<", ">")) for p in parts):
        return "off_time"
    if any(NO_ACCEL in p or p.startswith(UNKNOWN_WATCH) for p in parts):
        return "unknown"
    return "ok"


# -- the pipeline -----------------------------------------------------------------------------


async def run_activity(
    profile: ServerProfile,
    limits: Limits,
    options: ActivityOptions,
    *,
    reporter: Reporter | None = None,
) -> Summary:
    """Fetch the report window's results per participant and write the activity table."""
    tz = profile.tz
    job = Job("user_activity", reporter)
    summary = job.summary
    now = datetime.now(tz)
    until = options.until or now.date()
    days = report_days(until, options.report_days)
    start, stop = report_bounds(days, tz)
    table = ActivityTable(days=days)
    await asyncio.to_thread(check_output_dir, options.output_dir)
    async with PlatformClient(profile, limits) as client:
        participants = await resolve_into(options.selection, client, job)
        job.planned(len(participants))

        # Parsed results take several times the memory of their JSON: bodies are fetched in
        # parallel, but only this many are parsed (and reduced to cells) at once.
        parsing = asyncio.Semaphore(PARSE_SLOTS)

        async def fetch(p: Participant) -> ParticipantRow:
            bounds = clip(p, start, stop)
            views: list[Viewing] = []
            if bounds is not None:
                bodies = await fetch_window_bodies(
                    client, WATCH_RESULTS, p, limits, start=bounds[0], stop=bounds[1], now=now
                )
                bodies.reverse()
                while bodies:  # pop, so each body is freed once reduced
                    body = bodies.pop()
                    async with parsing:
                        views.extend(await asyncio.to_thread(_viewings, body, options, tz))
            row = ParticipantRow(
                p.external_id,
                row_cells(views, days),
                results=len(views),
                incomplete=sum(v.incomplete for v in views),
            )
            log.debug("%s: %d results", p.short, row.results)
            job.done(f"participant {p.external_id}", {"results": row.results})
            return row

        rows = await per_participant(participants, limits, fetch, job)
        table.rows = [
            row if row is not None else ParticipantRow(p.external_id, [FAILED] * len(days))
            for p, row in zip(participants, rows, strict=True)
        ]
        summary.bytes = client.bytes_received
        summary.details["requests"] = client.requests
        summary.details["retried"] = client.retried
    summary.count("participants", len(table.rows))
    summary.count("results", sum(r.results for r in table.rows))
    incomplete = sum(r.incomplete for r in table.rows)
    if incomplete:
        summary.count("incomplete results", incomplete)
        job.warn(
            f"{incomplete} result(s) lack playback times, a video duration or a date "
            f"(shown as '{UNKNOWN_WATCH}')"
        )
    summary.details["days"] = [days[0].isoformat(), days[-1].isoformat()]
    output = options.output_dir
    csv_path = output / CSV_NAME
    frame = await asyncio.to_thread(table.frame)  # the table; render/ writes it
    await asyncio.to_thread(activity_csv, frame, csv_path)
    summary.files.append(str(csv_path))
    if options.xlsx:
        xlsx_path = output / XLSX_NAME
        title = f"user activity {days[0]} .. {days[-1]}, {profile.name}"
        await asyncio.to_thread(
            activity_xlsx, frame, xlsx_path, title=title, kind=cell_kind, notes=__doc__ or ""
        )
        summary.files.append(str(xlsx_path))
    return job.finish()


def _viewings(body: bytes, options: ActivityOptions, tz: ZoneInfo) -> list[Viewing]:
    """Parse one window's JSON and keep only what the cells need (runs in a thread)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"/api/{WATCH_RESULTS}/ sent invalid JSON: {exc}") from None
    if not isinstance(data, list):
        raise ProtocolError(f"/api/{WATCH_RESULTS}/ did not answer a list")
    return [viewing(i, margin=options.sec_margin, question=options.question, tz=tz) for i in data]
