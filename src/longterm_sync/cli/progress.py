"""Progress on an interactive terminal, for the REST commands (the media engine has its own).

A long study on a real server (a few MB/s per large list) takes minutes; a bar of participants
done, with the results and feedback counted so far, shows that the run is moving. It draws on
stderr only when stderr is a terminal and neither ``--quiet`` nor ``--json`` was given, so
pipes, cron and tests see exactly the summary.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


class ParticipantBar:
    """A rich bar of participants; implements the results pipeline's reporter protocol."""

    def __init__(self, description: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(
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

    def planned(self, participants: int) -> None:
        self._bar.update(self._task, total=participants)
        self._bar.start()

    def participant_done(self, external_id: str, results: int, feedback: int) -> None:
        self._results += results
        self._feedback += feedback
        self._advance()

    def participant_failed(self, external_id: str, reason: str) -> None:
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
        self._bar.stop()


def participant_bar(args: argparse.Namespace, description: str) -> Any:
    """A bar when a person is watching, else None (the pipelines accept no reporter)."""
    if sys.stderr.isatty() and not getattr(args, "quiet", False) and not args.json:
        return ParticipantBar(description)
    return None
