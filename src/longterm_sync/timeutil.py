"""Datetimes the way the platform reads and writes them.

The server's zone is Europe/Warsaw: a naive datetime in a request means Warsaw local time,
and responses carry the Warsaw offset with microseconds only when non-zero.
"""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

WARSAW = ZoneInfo("Europe/Warsaw")


def parse_datetime(value: str, tz: ZoneInfo = WARSAW) -> datetime:
    """Parse an ISO date or datetime; naive values are local time in ``tz``.

    Raises ValueError with the offending value when it is not ISO 8601.
    """
    text = value.strip()
    if not text:
        raise ValueError("empty date")
    try:
        if "T" not in text and " " not in text and len(text) <= 10:
            parsed = datetime.combine(date.fromisoformat(text), time())
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not an ISO date/time: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed


def format_server_datetime(value: datetime, tz: ZoneInfo = WARSAW) -> str:
    """Render as the platform does: local offset, microseconds only when non-zero."""
    local = value.astimezone(tz)
    return local.isoformat(timespec="microseconds" if local.microsecond else "seconds")


def today_in(tz: ZoneInfo = WARSAW) -> date:
    return datetime.now(tz).date()
