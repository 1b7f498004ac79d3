"""The one bounded worker loop, and the one place that decides what an error stops.

Every pipeline that works through a list (participants, schedules) does it here: ``workers``
tasks take items in order from a shared queue inside one :class:`asyncio.TaskGroup`, so at
most ``workers`` items are in flight, results keep the items' order whatever order they
finish in, and Ctrl-C cancels every task (each writer removes its temporary file).

An error is classified once, by :func:`longterm_sync.errors.scope_of`: an ``ITEM`` error
(one participant's answer, one file) fails that item (summary, ``ItemFailed`` event) and the
loop goes on; a ``JOB`` or ``FATAL`` error cancels the loop and is raised as that one error,
not as an exception group, so the CLI prints it as one line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from .errors import LongtermError, Scope, TransientError, scope_of
from .events import Job

T = TypeVar("T")
R = TypeVar("R")

_RANK = {Scope.FATAL: 0, Scope.JOB: 1, Scope.ITEM: 2}


def leaves(exc: BaseException) -> list[BaseException]:
    """The errors inside a (nested) exception group, or the error itself."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def first_error(group: BaseException) -> BaseException:
    """The one error to raise for ``group``: one of ours that stops the run first (fatal,
    then job), then a per-item one, then anything else (a bug, shown as the traceback it
    deserves). Among per-item errors a wrong answer is named before a retried failure."""
    found = leaves(group)
    ours = sorted(
        (leaf for leaf in found if isinstance(leaf, LongtermError)),
        key=lambda leaf: (_RANK[scope_of(leaf)], isinstance(leaf, TransientError)),
    )
    for choice in (ours, found):
        if choice:
            return choice[0]
    return group


def item_error(exc: BaseException) -> BaseException | None:
    """The error that fails one item, when every error in ``exc`` is of item scope; None
    when something in it must stop the run."""
    found = leaves(exc)
    if found and all(scope_of(leaf) is Scope.ITEM for leaf in found):
        return first_error(exc)
    return None


async def run_items(
    items: Sequence[T],
    work: Callable[[T], Awaitable[R]],
    *,
    workers: int,
    job: Job,
    label: Callable[[T], str] = str,
    reason: Callable[[T, BaseException], str] | None = None,
    settle: Callable[[int, T, R | None], Awaitable[None]] | None = None,
) -> list[R | None]:
    """``work`` on every item with at most ``workers`` at once; ``None`` marks a failed one.

    A failed item is recorded as ``job.failed(label(item), reason)`` (``reason`` defaults to
    the error's one line). ``settle`` runs after each item, in its worker, with the result
    or ``None``; an error there is not an item's and stops the loop.
    """
    out: list[R | None] = [None] * len(items)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(items)):
        queue.put_nowait(index)

    async def worker() -> None:
        while True:
            try:
                index = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            item = items[index]
            try:
                out[index] = await work(item)
            except Exception as exc:  # classified here; re-raised unless of item scope
                failure = item_error(exc)
                if failure is None:
                    raise
                why = reason(item, failure) if reason else str(failure)
                job.failed(label(item), why)
            if settle is not None:
                await settle(index, item, out[index])

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, min(workers, len(items)))):
                group.create_task(worker())
    except BaseExceptionGroup as exc:
        raise first_error(exc) from None
    return out
