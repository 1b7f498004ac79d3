"""The overview's "needs attention" list: what an experimenter should act on this morning.

Rules (``until`` is the report's last day, ``week`` the 7 days ending with it):

- **no viewing for N days** (``--alert-days``, default 3): the participant's newest viewing is
  more than N days before ``until``, or there is none at all, while a schedule entry was due
  in those days (a participant whose schedule ended is not chased);
- **face down** / **sped up**: 2 or more viewings in the week with the phone face down, or
  watched shorter than the video (user_activity's ``↓`` and ``>-Ns``);
- **missing videos**: any missing-video report dated in the week;
- **new phone**: a device change (brand, model or OS version; device-report's spans) whose
  first viewing is in the week.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..pipelines.activity import FACE_DOWN
from ..timeutil import parse_datetime
from .study import ParticipantData

WEEK_DAYS = 7
REPEAT = 2


@dataclass(frozen=True)
class Alert:
    external_id: str
    alias: str | None
    kind: str  # silent, face_down, sped_up, missing_video, new_device
    text: str


def _in_week(day: date | None, until: date) -> bool:
    return day is not None and until - timedelta(days=WEEK_DAYS - 1) <= day <= until


def _day_of(text: object, tz: ZoneInfo) -> date | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return parse_datetime(text, tz).astimezone(tz).date()
    except ValueError:
        return None


def _was_due(p: ParticipantData, first: date, until: date, tz: ZoneInfo) -> bool:
    """A schedule entry overlapped ``first..until`` (no schedule known: assume yes)."""
    if not p.has_schedule:
        return True
    lo = datetime.combine(first, time(), tzinfo=tz)
    hi = datetime.combine(until + timedelta(days=1), time(), tzinfo=tz)
    return any(e.start < hi and e.end >= lo for e in p.entries)


def alerts_for(p: ParticipantData, until: date, alert_days: int, tz: ZoneInfo) -> list[Alert]:
    out: list[Alert] = []

    def add(kind: str, text: str) -> None:
        out.append(Alert(p.external_id, p.alias, kind, text))

    days = [v.day for v in p.viewings if v.day is not None and v.day <= until]
    last = max(days) if days else None
    quiet_since = until - timedelta(days=alert_days - 1)
    if (last is None or last < quiet_since) and _was_due(p, quiet_since, until, tz):
        if last is None:
            add("silent", "no viewing at all")
        else:
            add("silent", f"no viewing for {(until - last).days} days (last {last.isoformat()})")
    week = [v for v in p.viewings if _in_week(v.day, until)]
    down = sum(FACE_DOWN in v.cell.pose for v in week)
    if down >= REPEAT:
        add("face_down", f"{down} viewings face down in the last {WEEK_DAYS} days")
    fast = sum(v.cell.watch.startswith(">") for v in week)
    if fast >= REPEAT:
        add("sped_up", f"{fast} viewings shorter than the video in the last {WEEK_DAYS} days")
    reports = [m for m in p.missing if _in_week(_day_of(m.get("reported_at"), tz), until)]
    if reports:
        videos = ", ".join(sorted({str(m.get("video")) for m in reports}))
        add("missing_video", f"{len(reports)} missing-video report(s): {videos}")
    for previous, span in zip(p.devices, p.devices[1:], strict=False):
        if _in_week(_day_of(span.first_seen, tz), until):
            old = " ".join(x for x in previous.device if x) or "unknown"
            new = " ".join(x for x in span.device if x) or "unknown"
            add("new_device", f"phone changed {span.first_seen[:10]}: {old} -> {new}")
    return out


def needs_attention(
    participants: Sequence[ParticipantData], until: date, alert_days: int, tz: ZoneInfo
) -> list[Alert]:
    out: list[Alert] = []
    for p in participants:
        out.extend(alerts_for(p, until, alert_days, tz))
    return out
