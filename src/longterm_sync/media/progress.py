"""Progress of a media job as events: the engine reports, a reporter renders.

The engine never prints. :class:`Progress` counts files and bytes and derives the rate and
ETA; it forwards every event to a reporter (the CLI's rich bar on a tty, a recording one in
tests, or nothing). A retry that rewinds a file's bytes says so with a negative advance.
"""

from __future__ import annotations

import time
from typing import Protocol


class MediaReporter(Protocol):
    def planned(self, files: int, nbytes: int) -> None: ...

    def advanced(self, progress: Progress, nbytes: int) -> None: ...

    def finished(self, progress: Progress, rel: str, outcome: str) -> None: ...


class NullReporter:
    def planned(self, files: int, nbytes: int) -> None:
        return None

    def advanced(self, progress: Progress, nbytes: int) -> None:
        return None

    def finished(self, progress: Progress, rel: str, outcome: str) -> None:
        return None


class RecordingReporter(NullReporter):
    """Keeps every event; for tests and for ``--json`` consumers."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, int]] = []

    def planned(self, files: int, nbytes: int) -> None:
        self.events.append(("planned", str(files), nbytes))

    def advanced(self, progress: Progress, nbytes: int) -> None:
        self.events.append(("advanced", "", nbytes))

    def finished(self, progress: Progress, rel: str, outcome: str) -> None:
        self.events.append(("finished", rel, 0 if outcome == "ok" else 1))


class Progress:
    def __init__(self, reporter: MediaReporter | None = None) -> None:
        self.reporter: MediaReporter = reporter or NullReporter()
        self.files_total = 0
        self.bytes_total = 0
        self.files_done = 0
        self.bytes_done = 0
        self.resumed_bytes = 0  # taken over from .partial files of an interrupted run
        self.started = time.monotonic()

    def __repr__(self) -> str:
        return (
            f"Progress({self.files_done}/{self.files_total} files, "
            f"{self.bytes_done}/{self.bytes_total} bytes, {self.rate / 1e6:.1f} MB/s)"
        )

    def plan(self, files: int, nbytes: int) -> None:
        self.files_total, self.bytes_total = files, nbytes
        self.started = time.monotonic()
        self.reporter.planned(files, nbytes)

    def advance(self, nbytes: int) -> None:
        self.bytes_done += nbytes
        self.reporter.advanced(self, nbytes)

    def finish(self, rel: str, outcome: str = "ok") -> None:
        self.files_done += 1
        self.reporter.finished(self, rel, outcome)

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


class RichReporter(NullReporter):
    """A rich progress bar (files, bytes, rate, ETA) on stderr; for interactive terminals."""

    def __init__(self, description: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[files]}"),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._bar.add_task(description, total=0, files="")
        self._started = False

    def planned(self, files: int, nbytes: int) -> None:
        if not self._started:
            self._bar.start()
            self._started = True
        self._bar.update(self._task, total=nbytes, files=f"0/{files} files")

    def advanced(self, progress: Progress, nbytes: int) -> None:
        self._bar.update(self._task, advance=nbytes)

    def finished(self, progress: Progress, rel: str, outcome: str) -> None:
        self._bar.update(self._task, files=f"{progress.files_done}/{progress.files_total} files")

    def close(self) -> None:
        if self._started:
            self._bar.stop()
            self._started = False
