"""The per-viewing sensor figures of the site, in a cache keyed by each result's content.

A figure's file name is the sha256 of the drawing's version and the result item's JSON
(without the feedback comments download-results attaches, which the figure does not show): a
result that did not change keeps its figure, so a nightly rebuild of a long study draws only
the new viewings. Figures nothing refers to any more are removed at the end of a build.

Drawing is CPU work in matplotlib: it runs in worker processes (``[limits] plot_processes``,
default 2) fed by the thread that reads the folder; at most a few jobs wait at once, each
the viewing reduced to float32 arrays, so memory does not grow with the study. What is drawn
and how is the analysis code's (:mod:`longterm_sync.analysis.plots`), through a
:class:`Drawer`: this module only caches and schedules.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

log = logging.getLogger("longterm_sync.report")

FIGURES = "figures"
CACHE_VERSION = "1"
QUEUED_PER_WORKER = 4


@dataclass(frozen=True)
class Drawer:
    """How a viewing becomes a full-size PNG and a thumbnail.

    ``prepare`` runs in the reading thread and returns a small picklable object (None when
    the viewing cannot be drawn: no sensor data); ``render`` runs in a worker process and must
    be a module-level function writing both files atomically."""

    version: str
    prepare: Callable[[dict[str, Any]], Any | None]
    render: Callable[[Any, Path, Path], None]


class FigureCache:
    """The ``figures/`` folder of a site and the pool that fills it."""

    def __init__(self, site: Path, drawer: Drawer | None, *, workers: int) -> None:
        self.folder = site / FIGURES
        self.drawer = drawer
        self.workers = max(1, workers)
        self.pool: ProcessPoolExecutor | None = None
        self.slots = threading.BoundedSemaphore(self.workers * QUEUED_PER_WORKER)
        self.futures: list[Future[None]] = []
        self.known: set[str] = set()
        self.skipped = 0  # viewings without sensor data
        self.reused = 0
        self._lock = threading.Lock()
        try:  # one listing instead of two stat calls per viewing
            self.on_disk = {p.name for p in self.folder.iterdir()}
        except OSError:
            self.on_disk = set()

    @property
    def enabled(self) -> bool:
        return self.drawer is not None

    def full_name(self, key: str) -> str:
        return f"{FIGURES}/{key}.png"

    def thumb_name(self, key: str) -> str:
        return f"{FIGURES}/{key}.thumb.png"

    def key(self, item: dict[str, Any]) -> str:
        """The result's JSON without ``user_feedback`` (the figure does not show comments,
        and a new comment on a video reaches every viewing of it), and the drawing's version."""
        assert self.drawer is not None
        digest = hashlib.sha256(f"{CACHE_VERSION}:{self.drawer.version}:".encode())
        result = item.get("result")
        if isinstance(result, dict) and "user_feedback" in result:
            result = {k: v for k, v in result.items() if k != "user_feedback"}
            item = {**item, "result": result}
        digest.update(orjson.dumps(item))
        return digest.hexdigest()[:40]

    def cached(self, key: str) -> bool:
        if key in self.known:
            return True
        if f"{key}.png" in self.on_disk and f"{key}.thumb.png" in self.on_disk:
            with self._lock:
                self.known.add(key)
                self.reused += 1
            return True
        return False

    def submit(self, key: str, item: dict[str, Any]) -> bool:
        """Queue one figure (blocks while the workers are busy); False when it cannot be
        drawn. Called from the reading thread."""
        assert self.drawer is not None
        data = self.drawer.prepare(item)
        if data is None:
            self.skipped += 1
            return False
        if self.pool is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            # spawn: the parent runs threads (asyncio's), which fork would copy half-locked
            context = multiprocessing.get_context("spawn")
            self.pool = ProcessPoolExecutor(self.workers, mp_context=context)
        self.slots.acquire()
        full = self.folder / f"{key}.png"
        thumb = self.folder / f"{key}.thumb.png"
        try:
            future = self.pool.submit(self.drawer.render, data, full, thumb)
        except BaseException:
            self.slots.release()
            raise
        future.add_done_callback(lambda _f: self.slots.release())
        with self._lock:
            self.known.add(key)
            self.futures.append(future)
        return True

    def finish(self) -> tuple[int, list[str]]:
        """Wait for every queued figure: (drawn, problems). Blocking."""
        problems: list[str] = []
        drawn = 0
        for future in self.futures:
            try:
                future.result()
                drawn += 1
            except Exception as exc:  # one bad figure must not lose the site
                problems.append(f"{type(exc).__name__}: {exc}")
        self.futures.clear()
        self.close()
        return drawn, problems

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def prune(self, used: set[str]) -> int:
        """Remove figures no page refers to (and temporary files of killed builds)."""
        if not self.folder.is_dir():
            return 0
        removed = 0
        for path in self.folder.iterdir():
            name = path.name
            key = name.split(".", 1)[0]
            stale = name.startswith(".") or key not in used
            if stale and path.is_file():
                try:
                    path.unlink()
                    removed += 1
                except OSError as exc:
                    log.debug("could not remove %s: %s", path, exc)
        return removed


def default_drawer(tz: ZoneInfo) -> Drawer | None:
    """The analysis commands' sensor figures as a :class:`Drawer`, where that code exists."""
    try:
        from .drawing import plots_drawer
    except ImportError:  # a build without the plotting code: the site says so
        return None
    return plots_drawer(tz)
