"""The one event protocol: what every pipeline tells the outside world while it runs.

A pipeline never prints; it emits events to a :class:`Reporter`, and the CLI decides how
they look (``cli/reporters.py``: a rich bar on a terminal, echoed detail lines, a JSON-lines
log for a nightly cron job) while tests record them. Five kinds cover every job::

    Planned(items, bytes)        how much work is ahead (bytes 0 when not known)
    Progress(item, bytes)        bytes moved; negative when a retry rewinds a file
    ItemDone(item, counts, ...)  one participant / file / schedule finished
    ItemFailed(item, reason)     one item failed (errors.Scope.ITEM); the run goes on
    Warned(text)                 something worth reading that is not a failure

Events are frozen and carry only plain data in :meth:`as_dict` (what a log keeps); an
``ItemDone`` may hold ``data`` for in-process consumers (a merge plan, for the CLI's
verbose rendering), never written out. :class:`Job` is the pipelines' side: it emits and
fills the :class:`~longterm_sync.summary.Summary` in one call, so the two cannot disagree.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from .summary import Summary

E = TypeVar("E", bound="Event")


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of the five kinds; ``job`` names the (sub-)command that emitted it."""

    job: str = ""
    kind = "event"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.kind}
        if self.job:
            out["job"] = self.job
        return out


@dataclass(frozen=True, kw_only=True)
class Planned(Event):
    items: int
    bytes: int = 0
    kind = "planned"

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "items": self.items, "bytes": self.bytes}


@dataclass(frozen=True, kw_only=True)
class Progress(Event):
    bytes: int
    item: str = ""
    kind = "progress"

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "item": self.item, "bytes": self.bytes}


@dataclass(frozen=True, kw_only=True)
class ItemDone(Event):
    """``lines`` are shown as normal output (``-q`` hides them); ``notices`` are lines ``-q``
    must not swallow (they go to stderr then)."""

    item: str
    counts: Mapping[str, int] = field(default_factory=dict)
    lines: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()
    data: Any = field(default=None, compare=False, repr=False)
    kind = "item_done"

    def as_dict(self) -> dict[str, Any]:
        out = {**super().as_dict(), "item": self.item, "counts": dict(self.counts)}
        if self.lines or self.notices:
            out["lines"] = [*self.lines, *self.notices]
        return out


@dataclass(frozen=True, kw_only=True)
class ItemFailed(Event):
    item: str
    reason: str
    kind = "item_failed"

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "item": self.item, "reason": self.reason}


@dataclass(frozen=True, kw_only=True)
class Warned(Event):
    text: str
    kind = "warning"

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "text": self.text}


class Reporter(Protocol):
    """Where events go. ``emit`` runs on the event loop: it must not block."""

    def emit(self, event: Event) -> None: ...


class NullReporter:
    def emit(self, event: Event) -> None:
        return None


NULL = NullReporter()


class RecordingReporter:
    """Keeps every event, in order; for tests and in-process consumers."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]


class Tee:
    """Every event to each of several reporters, in order."""

    def __init__(self, reporters: Iterable[Reporter]) -> None:
        self.reporters = list(reporters)

    def emit(self, event: Event) -> None:
        for reporter in self.reporters:
            reporter.emit(event)


class Job:
    """A pipeline's handle on its events and its summary: each call does both."""

    def __init__(
        self, command: str, reporter: Reporter | None = None, summary: Summary | None = None
    ) -> None:
        self.command = command
        self.reporter: Reporter = reporter or NULL
        self.summary = summary if summary is not None else Summary(command=command)
        self.began = time.monotonic()

    def finish(self) -> Summary:
        """The summary with the job's wall time since it was made (every pipeline returns
        one; timing it here keeps the clock in one place)."""
        self.summary.elapsed_s = time.monotonic() - self.began
        return self.summary

    def planned(self, items: int, nbytes: int = 0) -> None:
        self.reporter.emit(Planned(items=items, bytes=nbytes, job=self.command))

    def progress(self, nbytes: int, item: str = "") -> None:
        self.reporter.emit(Progress(bytes=nbytes, item=item, job=self.command))

    def done(
        self,
        item: str,
        counts: Mapping[str, int] | None = None,
        *,
        lines: Iterable[str] = (),
        notices: Iterable[str] = (),
        data: Any = None,
    ) -> None:
        """One item finished; its counts go into the event only (the pipeline counts what
        its summary shows, in the order it shows them)."""
        self.reporter.emit(
            ItemDone(
                item=item,
                counts=dict(counts or {}),
                lines=tuple(lines),
                notices=tuple(notices),
                data=data,
                job=self.command,
            )
        )

    def failed(self, item: str, reason: str) -> None:
        self.summary.fail(item, reason)
        reason = self.summary.failures[-1].reason  # as the summary keeps it: one line
        self.reporter.emit(ItemFailed(item=item, reason=reason, job=self.command))

    def warn(self, text: str) -> None:
        self.summary.warnings.append(text)
        self.reporter.emit(Warned(text=text, job=self.command))

    def warn_all(self, texts: Iterable[str]) -> None:
        for text in texts:
            self.warn(text)

    def child(self, command: str) -> Job:
        """A sub-job with a summary of its own, emitting to the same reporter."""
        return Job(command, self.reporter)
