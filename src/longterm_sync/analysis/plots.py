"""Sensor figures of one viewing: gyroscope, accelerometer and a playback strip.

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no global state), so one
figure can be drawn in any thread or process; only :func:`show_sequence` touches pyplot and a
GUI backend. What a worker needs is a :class:`PlotData`: the sensor samples as float32
arrays (a few hundred KB for a long viewing), never the viewing's JSON.

Layout, as the original script drew it: x/y/z in red/green/blue against seconds since the
first sample of the viewing, gyroscope fixed to +-2.5 rad/s and accelerometer to +-1.2 g so
that figures compare at a glance; under them a thin strip with playing (0/1), brightness
(0..1) and fullscreen (0/1). The title holds the participant, the study date, the video and
every feedback comment on that video with its date.
"""

from __future__ import annotations

import io
import re
import textwrap
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from ..atomic import atomic_writer
from .source import item_date
from .stats import AccelStats, accel_stats, numbers, stamps_seconds

FORMATS = ("png", "pdf", "svg")
GYRO_RANGE = 2.5
ACC_RANGE = 1.2
COLOURS = ("red", "green", "blue")
SIZE_IN = (10.0, 6.5)
DPI = 100
THUMB_DPI = 24
SHEET_COLUMNS = 4
WRAP = 110
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class Series:
    """Seconds since the viewing's first sample and the sampled channels."""

    t: np.ndarray
    channels: dict[str, np.ndarray]


@dataclass
class PlotData:
    """One viewing reduced to what a figure needs (picklable, for worker processes)."""

    external_id: str
    when: datetime | None
    video: str
    feedback: list[tuple[str, str]] = field(default_factory=list)  # (date, comment)
    gyro: Series | None = None
    acc: Series | None = None
    playback: Series | None = None
    stats: AccelStats | None = None
    problem: str | None = None  # why no figure is drawn

    @property
    def label(self) -> str:
        when = self.when.strftime("%Y-%m-%d %H:%M") if self.when else "undated"
        return f"{when} {self.video}"

    @property
    def title(self) -> str:
        lines = [f"{self.external_id[:12]}  study date {self.label}"]
        for date, comment in self.feedback:
            lines.extend(textwrap.wrap(f"feedback {date}: {comment}", WRAP) or [""])
        return "\n".join(lines)

    def file_name(self, fmt: str) -> str:
        when = self.when.strftime("%Y-%m-%d_%H%M%S") if self.when else "undated"
        video = self.video.rsplit(".", 1)[0] if "." in self.video else self.video
        name = f"{self.external_id}_{when}_{video}"
        return _UNSAFE.sub("_", name).strip("._") + f".{fmt}"


def _sensor(data: Any, keys: tuple[str, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    if not isinstance(data, dict):
        return None
    stamps = stamps_seconds(data.get("timestamp"))
    if stamps is None or len(stamps) == 0:
        return None
    channels = {}
    for key in keys:
        values = numbers(data.get(key))
        if values is None or len(values) != len(stamps):
            return None
        channels[key] = values.astype(np.float32)
    return stamps, channels


def _playback(data: Any) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    if not isinstance(data, dict):
        return None
    stamps = stamps_seconds(data.get("timestamp"))
    if stamps is None or len(stamps) == 0:
        return None
    n = len(stamps)

    def column(key: str, convert: Any) -> np.ndarray:
        raw = data.get(key)
        if not isinstance(raw, list) or len(raw) != n:
            return np.full(n, np.nan, dtype=np.float32)
        return np.asarray([convert(v) for v in raw], dtype=np.float32)

    def brightness(v: Any) -> float:
        ok = isinstance(v, int | float) and not isinstance(v, bool)
        return float(v) if ok else np.nan

    channels = {
        "playing": column("playing", lambda v: 1.0 if v is True else 0.0),
        "brightness": column("brightness", brightness),
        "fullscreen": column("fullscreen_status", lambda v: 1.0 if v == "FULLSCREEN" else 0.0),
    }
    return stamps, channels


def plot_data(
    item: Any, tz: ZoneInfo, feedback: list[dict[str, Any]] | None = None
) -> PlotData | None:
    """One results item -> its PlotData (``problem`` set when it cannot be drawn); None for
    an item that is not a result at all. ``feedback`` is the participant's comments on this
    video (default: the result's own ``user_feedback``, as download-results rebuilt it)."""
    if not isinstance(item, dict) or not isinstance(item.get("result"), dict):
        return None
    result = item["result"]
    video = result.get("video") if isinstance(result.get("video"), str) else "(no video)"
    data = PlotData(str(item.get("external_id") or ""), item_date(item, tz), video)
    comments = feedback if feedback is not None else result.get("user_feedback")
    for c in comments if isinstance(comments, list) else []:
        if isinstance(c, dict) and isinstance(c.get("comment"), str):
            date = str(c.get("date") or "")
            try:
                date = item_date(c, tz).strftime("%Y-%m-%d %H:%M")  # type: ignore[union-attr]
            except AttributeError:
                pass
            data.feedback.append((date, c["comment"]))
    gyro = _sensor(result.get("gyroscope_data"), ("x", "y", "z"))
    acc = _sensor(result.get("accelerometer_data"), ("x", "y", "z"))
    missing = [name for name, s in (("gyroscope", gyro), ("accelerometer", acc)) if s is None]
    if missing:
        data.problem = f"no {' or '.join(missing)} data"
        return data
    assert gyro is not None and acc is not None
    playback = _playback(result.get("playback_data"))
    t0 = min(s[0].min() for s in (gyro, acc, playback) if s is not None)
    data.gyro = Series((gyro[0] - t0).astype(np.float32), gyro[1])
    data.acc = Series((acc[0] - t0).astype(np.float32), acc[1])
    if playback is not None:
        data.playback = Series((playback[0] - t0).astype(np.float32), playback[1])
    data.stats = accel_stats(result.get("accelerometer_data"))
    return data


def draw(data: PlotData, figure: Any = None) -> Any:
    """Draw into ``figure`` (a new Agg-backed one by default) and return it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = figure if figure is not None else Figure(figsize=SIZE_IN, dpi=DPI)
    if figure is None:
        FigureCanvasAgg(fig)
    axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 3, 1]})
    for ax, series, name, limit, unit in (
        (axes[0], data.gyro, "gyro", GYRO_RANGE, "rad/s"),
        (axes[1], data.acc, "acc", ACC_RANGE, "g"),
    ):
        if series is not None:
            for (key, values), colour in zip(series.channels.items(), COLOURS, strict=True):
                ax.plot(series.t, values, color=colour, linewidth=0.6, label=f"{name} {key}")
        ax.set_ylim(-limit, limit)
        ax.set_ylabel(f"{name} [{unit}]")
        ax.grid(True, linewidth=0.3)
        ax.legend(loc="upper right", fontsize=7, ncol=3)
    strip = axes[2]
    if data.playback is not None:
        styles = {"playing": "black", "brightness": "orange", "fullscreen": "purple"}
        for key, values in data.playback.channels.items():
            strip.step(data.playback.t, values, where="post", color=styles[key],
                       linewidth=0.8, label=key)  # fmt: skip
        strip.legend(loc="upper right", fontsize=6, ncol=3)
    strip.set_ylim(-0.1, 1.1)
    strip.set_yticks([0, 1])
    strip.set_ylabel("playback", fontsize=8)
    strip.set_xlabel("seconds since the first sample")
    fig.suptitle(data.title, fontsize=8, x=0.01, horizontalalignment="left")
    top = 0.92 - 0.025 * max(0, data.title.count("\n"))
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.08, top=max(0.5, top), hspace=0.12)
    return fig


@dataclass(frozen=True)
class Drawn:
    path: str
    thumbnail: bytes  # a small PNG for the contact sheet


def render(data: PlotData, path: Path, fmt: str) -> Drawn:
    """Draw one figure into ``path`` (atomically), with the title in the file's metadata.
    Runs in a worker process or thread: the figure is freed before returning."""
    fig = draw(data)
    meta = {"Title": data.title}
    if fmt == "png":
        # the thumbnail is scaled down from the PNG itself: a second render costs half again
        png = io.BytesIO()
        fig.savefig(png, format="png", metadata=meta)
        fig.clear()
        with atomic_writer(path) as fh:
            fh.write(png.getbuffer())
        return Drawn(str(path), _thumbnail(png))
    with atomic_writer(path) as fh:
        fig.savefig(fh, format=fmt, metadata=meta)
    thumb = io.BytesIO()
    fig.savefig(thumb, format="png", dpi=THUMB_DPI)
    fig.clear()
    return Drawn(str(path), thumb.getvalue())


def _thumbnail(png: io.BytesIO) -> bytes:
    from PIL import Image

    png.seek(0)
    with Image.open(png) as image:
        small = image.reduce(DPI // THUMB_DPI)
    out = io.BytesIO()
    small.save(out, format="png")
    return out.getvalue()


def contact_sheet(items: list[tuple[str, bytes]], path: Path, title: str) -> None:
    """All thumbnails in a grid, each under its label, as one PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.image import imread

    rows = max(1, -(-len(items) // SHEET_COLUMNS))
    fig = Figure(figsize=(SHEET_COLUMNS * 3.0, rows * 2.2 + 0.4), dpi=DPI)
    FigureCanvasAgg(fig)
    fig.suptitle(title, fontsize=9)
    for i, (label, png) in enumerate(items):
        ax = fig.add_subplot(rows, SHEET_COLUMNS, i + 1)
        ax.imshow(imread(io.BytesIO(png), format="png"))
        ax.set_title(label, fontsize=6)
        ax.axis("off")
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.5 / (rows * 2.2 + 0.4),
                        wspace=0.05, hspace=0.25)  # fmt: skip
    with atomic_writer(path) as fh:
        fig.savefig(fh, format="png")


def interactive_backend() -> str | None:
    """A GUI backend that can open windows here, or None (no display, no toolkit)."""
    import os

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return None
    import matplotlib

    for backend in ("QtAgg", "TkAgg", "GTK3Agg"):
        try:
            matplotlib.use(backend, force=True)
            import matplotlib.pyplot as plt

            plt.figure().clear()
            plt.close("all")
            return backend
        except Exception:  # any toolkit failure means "not this one"
            continue
    matplotlib.use("Agg", force=True)
    return None


def show_sequence(viewings: list[PlotData]) -> None:
    """One window after another: closing one shows the next, as the original script did."""
    import matplotlib.pyplot as plt

    for data in viewings:
        fig = plt.figure(figsize=SIZE_IN)
        draw(data, fig)
        plt.show()
        plt.close(fig)
