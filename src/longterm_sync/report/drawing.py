"""The analysis commands' sensor figure of one viewing, as the site's :class:`~.figures.Drawer`.

The figure is download-plot-gyro-sequence's (:func:`longterm_sync.analysis.plots.draw`): the
site shows what that command draws, except the feedback lines of its title. Comments are on
the participant's page instead, so a new comment (which the platform attaches to every
viewing of that video) does not invalidate the cached figures of older viewings.

The thumbnail is the one that command makes for its contact sheet (the PNG scaled down, not
drawn twice).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..analysis import plots
from ..atomic import write_bytes_atomic
from .figures import Drawer

DRAWING_VERSION = "plots-1"
"""Part of every figure's cache key: change it when the drawing changes, and every figure is
drawn again on the next build."""


def _prepare(tz: ZoneInfo, item: dict[str, Any]) -> Any | None:
    data = plots.plot_data(item, tz, feedback=[])
    return None if data is None or data.problem else data


def render(data: Any, full: Path, thumb: Path) -> None:
    """Runs in a worker process: the command's PNG, and its contact-sheet thumbnail."""
    drawn = plots.render(data, full, "png")
    write_bytes_atomic(thumb, drawn.thumbnail)


def plots_drawer(tz: ZoneInfo) -> Drawer:
    return Drawer(version=DRAWING_VERSION, prepare=partial(_prepare, tz), render=render)
