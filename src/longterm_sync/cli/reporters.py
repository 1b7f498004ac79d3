"""Renderers of the event stream (:mod:`longterm_sync.events`): what a run looks like.

The pipelines emit one kind of event stream; here it becomes

- a rich progress bar on stderr, only when a person is watching (:func:`watching`): bytes
  and rate for a media job (:class:`ByteBar`), items done for a participant job
  (:class:`ItemBar`). Transient: pipes, cron and tests see exactly the summary;
- the detail lines of finished items on stdout (:class:`Echo`: a merge plan, a sent
  schedule), governed by ``--quiet`` and ``--json`` like every other line;
- a JSON-lines log (:class:`JsonLines`, ``--log-json FILE``): one object per event except
  byte progress, then one ``summary`` or ``error`` record, appended to a file only its owner
  can read. It is what a nightly cron job keeps: every failed item with its reason and
  the run's outcome, greppable and parseable without scraping the human text.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from ..atomic import local_io_error
from ..events import Event, ItemDone, ItemFailed, Planned, Progress
from ..summary import Summary


class Renderer(Protocol):
    def emit(self, event: Event) -> None: ...

    def close(self) -> None: ...


def watching(args: argparse.Namespace) -> bool:
    """Whether a person is watching stderr: a terminal, and neither ``--quiet`` nor
    ``--json`` (a bar would only be noise in a pipe, a log or a script)."""
    return (
        sys.stderr.isatty()
        and not getattr(args, "quiet", False)
        and not getattr(args, "json", False)
    )


class ByteBar:
    """A rich bar of bytes (files, rate, ETA) for the events of one media job."""

    def __init__(self, description: str, job: str = "videos") -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as RichProgress

        self.job = job
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
        self._files = self._done = 0

    def emit(self, event: Event) -> None:
        if event.job != self.job:
            return
        if isinstance(event, Planned):
            if not self._started:
                self._bar.start()
                self._started = True
            self._files = event.items
            self._bar.update(self._task, total=event.bytes, files=f"0/{event.items} files")
        elif isinstance(event, Progress):
            self._bar.update(self._task, advance=event.bytes)
        elif isinstance(event, ItemDone | ItemFailed):
            self._done += 1
            self._bar.update(self._task, files=f"{self._done}/{self._files} files")

    def close(self) -> None:
        if self._started:
            self._bar.stop()
            self._started = False


class ItemBar:
    """A rich bar of participants done, with the counts of their items summed."""

    def __init__(self, description: str, job: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichProgress

        self.job = job
        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "participants, {task.fields[results]} results, "
                "{task.fields[feedback]} feedback, {task.fields[failed]} failed"
            ),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._bar.add_task(description, total=None, results=0, feedback=0, failed=0)
        self._results = self._feedback = self._failed = 0
        self._started = False

    def emit(self, event: Event) -> None:
        if event.job != self.job:
            return
        if isinstance(event, Planned):
            self._bar.update(self._task, total=event.items)
            if not self._started:
                self._bar.start()
                self._started = True
        elif not self._started:  # before the plan: the selection's unknown participants
            return
        elif isinstance(event, ItemDone):
            self._results += event.counts.get("results", 0)
            self._feedback += event.counts.get("feedback", 0)
            self._advance()
        elif isinstance(event, ItemFailed) and event.item.startswith("participant "):
            self._failed += 1
            self._advance()

    def _advance(self) -> None:
        self._bar.update(
            self._task,
            advance=1,
            results=self._results,
            feedback=self._feedback,
            failed=self._failed,
        )

    def close(self) -> None:
        if self._started:
            self._bar.stop()
            self._started = False


class Echo:
    """The detail lines of finished items: ``lines`` as output, ``notices`` as lines that
    ``-q`` must not swallow. ``lines_of`` lets a command render an item itself (the
    upload's merge plan in full with ``-v``)."""

    def __init__(
        self,
        echo: Callable[[str], None],
        notice: Callable[[str], None],
        lines_of: Callable[[ItemDone], tuple[list[str], list[str]]] | None = None,
    ) -> None:
        self.echo, self.notice, self.lines_of = echo, notice, lines_of

    def emit(self, event: Event) -> None:
        if not isinstance(event, ItemDone) or not (event.lines or event.notices):
            return
        lines, notices = (
            self.lines_of(event) if self.lines_of else (list(event.lines), list(event.notices))
        )
        for line in lines:
            self.echo(line)
        for line in notices:
            self.notice(line)

    def close(self) -> None:
        return None


LOG_MODE = 0o600
"""A log names participants' external ids and the server: for its owner's eyes only."""


class JsonLines:
    """``--log-json FILE``: one JSON object per line, appended, each line written whole.

    Progress events are left out (a large mirror would write millions of lines that say
    nothing a summary does not). Each record has ``time`` (UTC, ISO 8601) and ``command``.
    Lines are written under a lock: a pipeline may report from a worker thread.
    """

    def __init__(self, path: Path, command: str) -> None:
        self.path, self.command = path, command
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, LOG_MODE)
        except OSError as exc:
            raise local_io_error(exc, path) from None
        self._fh = os.fdopen(fd, "ab", buffering=0)
        self._lock = threading.Lock()

    def _write(self, record: dict[str, Any]) -> None:
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "command": self.command,
            **record,
        }
        data = orjson.dumps(line, default=str) + b"\n"
        with self._lock:
            if self._fh.closed:
                return
            try:
                self._fh.write(data)
            except OSError as exc:
                raise local_io_error(exc, self.path) from None

    def emit(self, event: Event) -> None:
        if not isinstance(event, Progress):
            self._write(event.as_dict())

    def summary(self, summary: Summary) -> None:
        self._write({"event": "summary", **summary.to_dict()})

    def error(self, message: str, exit_code: int) -> None:
        self._write({"event": "error", "message": message, "exit_code": exit_code})

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                try:
                    os.fsync(self._fh.fileno())
                except OSError:
                    pass
                self._fh.close()
