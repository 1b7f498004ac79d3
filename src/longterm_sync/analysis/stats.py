"""Numbers of one viewing shared by the table, the figures and their printed lines.

The settle rule is user_activity's (and the original plot script's): the first max(10 % of
the samples, the samples of the first 3 s) are dropped before the accelerometer is judged,
because the phone is still being picked up or put down then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from ..timeutil import parse_datetime

SETTLE_FRACTION = 0.10
SETTLE_SECONDS = 3.0
FACE_DOWN_Z = -0.8


def stamps_seconds(stamps: Any) -> np.ndarray | None:
    """Timestamps as seconds since the epoch (float64), None when any is not a date."""
    if not isinstance(stamps, list):
        return None
    out = np.empty(len(stamps), dtype=np.float64)
    try:
        for i, stamp in enumerate(stamps):
            out[i] = parse_datetime(str(stamp)).timestamp()
    except ValueError:
        return None
    return out


def numbers(values: Any) -> np.ndarray | None:
    """A list of numbers as float64, None when anything in it is not a number."""
    if not isinstance(values, list):
        return None
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
        return None
    return np.asarray(values, dtype=np.float64)


def settle_count(seconds: np.ndarray | None, n: int) -> int:
    """How many leading samples to drop: max(10 %, those within the first 3 s)."""
    by_fraction = math.ceil(n * SETTLE_FRACTION)
    if seconds is None or len(seconds) != n or n == 0:
        return by_fraction
    by_time = int(np.searchsorted(seconds, seconds[0] + SETTLE_SECONDS, side="left"))
    return max(by_fraction, by_time)


@dataclass(frozen=True)
class AccelStats:
    """Medians and standard deviations (population) of x, y, z after the settle cut."""

    samples: int
    kept: int
    median: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def face_down(self) -> bool:
        return self.median[2] < FACE_DOWN_Z

    def line(self) -> str:
        m = ", ".join(f"{v:+.3f}" for v in self.median)
        s = ", ".join(f"{v:.3f}" for v in self.std)
        return f"acc median x,y,z = {m}; std = {s} ({self.kept} of {self.samples} samples)"


def accel_stats(accel: Any) -> AccelStats | None:
    """None when the result has no usable accelerometer data (or none after the cut)."""
    if not isinstance(accel, dict):
        return None
    axes = [numbers(accel.get(k)) for k in ("x", "y", "z")]
    if any(a is None for a in axes):
        return None
    x, y, z = (a for a in axes if a is not None)
    n = len(z)
    if n == 0 or len(x) != n or len(y) != n:
        return None
    cut = settle_count(stamps_seconds(accel.get("timestamp")), n)
    if cut >= n:
        return None
    rest = [a[cut:] for a in (x, y, z)]
    med = tuple(float(np.median(a)) for a in rest)
    std = tuple(float(np.std(a)) for a in rest)
    return AccelStats(n, n - cut, med, std)  # type: ignore[arg-type]


def seconds_between(a: Any, b: Any) -> float | None:
    if not isinstance(a, str) or not isinstance(b, str):
        return None
    try:
        return (parse_datetime(b) - parse_datetime(a)).total_seconds()
    except ValueError:
        return None


def watched_seconds(result: dict[str, Any]) -> float | None:
    """Wall-clock playback time: playback_ended - playback_started, or the span of the
    playback samples when either is missing (user_activity's definition)."""
    span = seconds_between(result.get("playback_started"), result.get("playback_ended"))
    if span is not None:
        return span
    playback = result.get("playback_data")
    if isinstance(playback, dict):
        stamps = playback.get("timestamp")
        if isinstance(stamps, list) and len(stamps) >= 2:
            return seconds_between(stamps[0], stamps[-1])
    return None


def duration_seconds(result: dict[str, Any]) -> float | None:
    value = result.get("video_duration")
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value) / 1000.0


def answer_value(answer: Any) -> Any:
    """The answer of one question: ``content`` (the phone's key) or ``value`` (older apps)."""
    if isinstance(answer, dict):
        return answer.get("content", answer.get("value"))
    return answer


def form_content(result: dict[str, Any]) -> list[Any]:
    form = result.get("reply_form")
    content = form.get("content") if isinstance(form, dict) else form
    return content if isinstance(content, list) else []


def local_iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds")
