"""Counting a media job's files and bytes, and turning them into events.

The engine never prints. A :class:`Meter` counts files and bytes, derives the rate and ETA,
and emits the one event protocol (:mod:`longterm_sync.events`) to a reporter: the CLI's bar
on a terminal, a recording one in tests, the JSON-lines log, or nothing. A retry that
rewinds a file's bytes says so with a negative :class:`~longterm_sync.events.Progress`.
"""

from __future__ import annotations

import time

from ..events import NULL, ItemDone, ItemFailed, Planned, Progress, Reporter

JOB = "videos"
"""The ``job`` of the media events (and the command of the media summaries)."""


class Meter:
    def __init__(self, reporter: Reporter | None = None) -> None:
        self.reporter: Reporter = reporter or NULL
        self.files_total = 0
        self.bytes_total = 0
        self.files_done = 0
        self.bytes_done = 0
        self.resumed_bytes = 0  # taken over from .partial files of an interrupted run
        self.started = time.monotonic()

    def __repr__(self) -> str:
        return (
            f"Meter({self.files_done}/{self.files_total} files, "
            f"{self.bytes_done}/{self.bytes_total} bytes, {self.rate / 1e6:.1f} MB/s)"
        )

    def plan(self, files: int, nbytes: int) -> None:
        self.files_total, self.bytes_total = files, nbytes
        self.started = time.monotonic()
        self.reporter.emit(Planned(items=files, bytes=nbytes, job=JOB))

    def advance(self, nbytes: int) -> None:
        self.bytes_done += nbytes
        self.reporter.emit(Progress(bytes=nbytes, job=JOB))

    def finish(self, rel: str) -> None:
        self.files_done += 1
        self.reporter.emit(ItemDone(item=rel, job=JOB))

    def fail(self, rel: str, reason: str) -> None:
        self.files_done += 1
        self.reporter.emit(ItemFailed(item=rel, reason=" ".join(reason.split()), job=JOB))

    @property
    def rate(self) -> float:
        """Bytes per second since the transfers started."""
        elapsed = time.monotonic() - self.started
        return self.bytes_done / elapsed if elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        rate = self.rate
        if rate <= 0:
            return None
        return max(0.0, (self.bytes_total - self.bytes_done) / rate)
