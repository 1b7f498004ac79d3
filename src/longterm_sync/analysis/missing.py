"""Missing-video reports joined with the schedule entry they belong to.

A phone reports a video it could not fetch. The entry it belongs to is the participant's
schedule entry whose ``start``..``end`` holds the report's date; ``status`` says whether the
reported video was due in it (``due``), was not (``not due``: the phone asked for a video of
another day, usually a prefetch), or no entry covers that moment (``no entry``).
``scheduled_on`` lists the start days of the entries that name the video (nearest first), so
an analyst sees when it was really due.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..timeutil import parse_datetime
from .source import item_date

CSV_NAME = "missing_videos.csv"
XLSX_NAME = "missing_videos.xlsx"
COLUMNS = [
    "external_id",
    "reported_at",
    "video",
    "status",
    "entry_day",
    "entry_start",
    "entry_end",
    "due_videos",
    "scheduled_on",
]
DUE = "due"
NOT_DUE = "not due"
NO_ENTRY = "no entry"
NO_SCHEDULE = "no schedule"


@dataclass(frozen=True)
class Entry:
    start: datetime
    end: datetime
    start_text: str
    end_text: str
    videos: tuple[str, ...]


def schedule_entries(schedule: Any, tz: ZoneInfo) -> list[Entry]:
    """The entries of one schedule object (``{"schedule": [...]}``) that have readable bounds."""
    rows = schedule.get("schedule") if isinstance(schedule, dict) else None
    out: list[Entry] = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        start, end = row.get("start"), row.get("end")
        if not isinstance(start, str) or not isinstance(end, str):
            continue
        try:
            a, b = parse_datetime(start, tz), parse_datetime(end, tz)
        except ValueError:
            continue
        services = row.get("service")
        videos = tuple(
            str(s["video"])
            for s in (services if isinstance(services, list) else [])
            if isinstance(s, dict) and isinstance(s.get("video"), str)
        )
        out.append(Entry(a, b, start, end, videos))
    return out


def join_reports(
    reports: Iterable[Any], schedules: Mapping[str, Any], tz: ZoneInfo
) -> list[dict[str, Any]]:
    """One row per report, in (participant, date) order."""
    entries = {ext: schedule_entries(s, tz) for ext, s in schedules.items()}
    rows = []
    for report in reports:
        if not isinstance(report, dict):
            continue
        ext = str(report.get("external_id") or "")
        when = item_date(report, tz)
        video = report.get("video") if isinstance(report.get("video"), str) else None
        own = entries.get(ext)
        row: dict[str, Any] = {
            "external_id": ext,
            "reported_at": when.isoformat(timespec="seconds") if when else report.get("date"),
            "video": video,
            "status": NO_SCHEDULE,
            "entry_day": None,
            "entry_start": None,
            "entry_end": None,
            "due_videos": None,
            "scheduled_on": None,
        }
        if own is not None:
            row["status"] = NO_ENTRY
            holding = [e for e in own if when is not None and e.start <= when <= e.end]
            if holding:
                entry = holding[0]
                row.update(
                    status=DUE if video in entry.videos else NOT_DUE,
                    entry_day=entry.start.date().isoformat(),
                    entry_start=entry.start_text,
                    entry_end=entry.end_text,
                    due_videos=" ".join(entry.videos),
                )
            naming = [e for e in own if video in e.videos]
            if when is not None:
                naming.sort(key=lambda e: abs((e.start - when).total_seconds()))
            days = list(dict.fromkeys(e.start.date().isoformat() for e in naming))
            row["scheduled_on"] = " ".join(days) or None
        rows.append(row)
    rows.sort(key=lambda r: (r["external_id"], str(r["reported_at"] or "")))
    return rows


def rows_frame(rows: list[dict[str, Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame.from_records(rows, columns=COLUMNS)


def summary_lines(rows: list[dict[str, Any]]) -> list[str]:
    by_id: dict[str, dict[str, int]] = {}
    for row in rows:
        counts = by_id.setdefault(row["external_id"], {})
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    lines = [f"{'participant':<14} {'reports':>7} {'due':>5} {'not due':>7} {'other':>5}"]
    for ext, c in by_id.items():
        total = sum(c.values())
        other = total - c.get(DUE, 0) - c.get(NOT_DUE, 0)
        lines.append(
            f"{ext[:12]:<14} {total:>7} {c.get(DUE, 0):>5} {c.get(NOT_DUE, 0):>7} {other:>5}"
        )
    return lines
