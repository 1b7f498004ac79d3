"""Splitting one participant's time range into request windows.

The list routes answer every matching row in one response (no pagination), so a request for
a whole study grows with the study: a participant followed for two years is ~180 MB in one
answer. Asking window by window keeps every response, and so the client's memory, bounded by
``window_days``, whatever the study's length.

The server's bounds are strict (``start_date < date < stop_date``) and dates have microsecond
resolution, so consecutive windows share a boundary ``b`` like this::

    (start, b1 + 1us)   (b1, b2 + 1us)   (b2, b3 + 1us)   ...   (bk, stop)

A row dated exactly ``b1`` satisfies ``date < b1 + 1us`` and fails ``date > b1``: it is in the
first window only. The union of the windows is exactly ``(start, stop)``, the range one
unwindowed request would cover, with no row lost or counted twice, so no dedupe is needed
(none would be possible: rows carry no id).

The participant's schedule (first entry to last entry, or today) says where rows can exist:
boundaries are placed only there, and the first and last windows reach out to the asked
start and stop (or stay open when none was asked), so a row dated before the schedule's
first day or after today is still fetched once. Without any date to anchor on, one
unbounded request is made.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .timeutil import parse_datetime

ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Window:
    """Strict bounds sent as ``start_date`` / ``stop_date``; ``None`` = not sent (open)."""

    start: datetime | None
    stop: datetime | None


def split_window(
    window: Window,
    *,
    lo: datetime | None = None,
    hi: datetime | None = None,
    min_days: float = 1.0,
) -> tuple[Window, Window] | None:
    """Two parts covering exactly what ``window`` covers (strict bounds, like the server's
    filter), or None when it is not longer than ``min_days``: used when one window's answer
    is too large to take whole. An open end is first cut at ``lo`` (where rows can start,
    e.g. the schedule's first day) or ``hi`` (now), the open part holding no rows."""
    if window.start is None:
        if lo is None or (window.stop is not None and lo >= window.stop):
            return None
        return Window(None, lo + ONE_MICROSECOND), Window(lo, window.stop)
    if window.stop is None:
        if hi is None or hi <= window.start:
            return None
        return Window(window.start, hi + ONE_MICROSECOND), Window(hi, None)
    span = window.stop - window.start
    if span <= timedelta(days=min_days):
        return None
    mid = window.start + span / 2
    return Window(window.start, mid), Window(mid - ONE_MICROSECOND, window.stop)


def plan_windows(
    start: datetime | None,
    stop: datetime | None,
    *,
    days: int,
    anchor_start: datetime | None = None,
    anchor_end: datetime | None = None,
) -> list[Window]:
    """Windows covering exactly ``(start, stop)`` (``None`` = open end).

    Boundaries are placed every ``days`` days from the later of ``start`` and
    ``anchor_start`` up to the earlier of ``stop`` and ``anchor_end``: where rows can exist.
    Outside that span the first and last windows reach out to ``start`` and ``stop``, so a
    range of ten years around a two-month schedule is a handful of requests, not a hundred.
    """
    if days <= 0:
        raise ValueError("window days must be positive")
    lo = _bound(max, start, anchor_start)
    hi = _bound(min, stop, anchor_end)
    if lo is None or hi is None or lo >= hi:
        return [Window(start, stop)]
    step = timedelta(days=days)
    bounds: list[datetime] = []
    b = lo + step
    while b < hi:
        bounds.append(b)
        b = b + step
    if not bounds:
        return [Window(start, stop)]
    windows = [Window(start, bounds[0] + ONE_MICROSECOND)]
    for a, b in itertools.pairwise(bounds):
        windows.append(Window(a, b + ONE_MICROSECOND))
    windows.append(Window(bounds[-1], stop))
    return windows


def _bound(pick: Any, a: datetime | None, b: datetime | None) -> datetime | None:
    """``pick`` (min or max) of the values that are given."""
    given = [v for v in (a, b) if v is not None]
    return pick(given) if given else None


def schedule_span(
    schedule: Mapping[str, Any] | None, tz: ZoneInfo
) -> tuple[datetime, datetime] | None:
    """First entry start and last entry end (or start) of a stored schedule, if any parse."""
    if not isinstance(schedule, Mapping):
        return None
    entries = schedule.get("schedule")
    if not isinstance(entries, list):
        return None
    moments: list[datetime | None] = []
    for entry in entries:
        if isinstance(entry, Mapping):
            moments.extend(_parsed(entry.get(key), tz) for key in ("start", "end"))
    found = [m for m in moments if m is not None]
    if not found:
        return None
    return min(found), max(found)


def _parsed(value: Any, tz: ZoneInfo) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value, tz)
    except ValueError:
        return None


def participant_windows(
    start: datetime | None,
    stop: datetime | None,
    *,
    days: int,
    schedule: Mapping[str, Any] | None,
    tz: ZoneInfo,
    now: datetime,
) -> list[Window]:
    """Windows for one participant, boundaries within its schedule's span.

    Boundaries never go past ``now``: rows from the future do not exist yet, and the last
    window is open anyway when no stop was asked.
    """
    span = schedule_span(schedule, tz)
    anchor_start = span[0] if span else None
    anchor_end = min(span[1], now) if span else now
    return plan_windows(start, stop, days=days, anchor_start=anchor_start, anchor_end=anchor_end)


def windows_contiguous(windows: Iterable[Window]) -> bool:
    """True when every row of the range lies in exactly one window (no gap, no overlap)."""
    items = list(windows)
    return all(
        a.stop is not None and b.start is not None and b.start == a.stop - ONE_MICROSECOND
        for a, b in itertools.pairwise(items)
    )
