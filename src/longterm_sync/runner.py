"""Running one pipeline coroutine as a program: event loop, signals, interruption.

Below both the CLI and the engine (the media worker process runs its loop through here too),
so neither imports the other. SIGTERM and SIGHUP (what ``timeout``, systemd and a closed
terminal send) are handled exactly like Ctrl-C: the running coroutine is cancelled, every
writer removes its temporary file on the way out, and :class:`Terminated` (a
``KeyboardInterrupt``) reaches the caller, which exits with 128 + the signal's number.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by ``signum``; handled wherever Ctrl-C is."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Outside an event loop: SIGTERM/SIGHUP raise :class:`Terminated` in the main thread."""
    previous = {sig: signal.signal(sig, _raise_terminated) for sig in HANDLED_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (Linux): measurably faster for SSH and many sockets."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion; SIGTERM/SIGHUP cancel it and raise :class:`Terminated`.

    The handlers work the way ``asyncio.Runner`` handles SIGINT (a Python-level handler that
    cancels the main task and wakes the loop), not through ``loop.add_signal_handler``, so
    Ctrl-C and the other two signals take the same path with uvloop and asyncio alike."""
    received: list[int] = []
    main: list[asyncio.Task[Any]] = []

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        loop = runner.get_loop()

        async def wrapper() -> T:
            task = asyncio.current_task()
            assert task is not None
            main.append(task)
            return await coro

        def on_signal(signum: int, frame: object) -> None:
            if received:
                return  # already stopping: let the cleanup finish
            received.append(signum)
            for task in main:
                task.cancel()
            loop.call_soon_threadsafe(lambda: None)  # wake a loop blocked in select

        previous: dict[int, Any] = {}
        with contextlib.suppress(ValueError):  # not the main thread: the caller handles them
            for sig in HANDLED_SIGNALS:
                previous[sig] = signal.signal(sig, on_signal)
        try:
            return runner.run(wrapper())
        except (asyncio.CancelledError, Exception):
            if received:  # whatever the cancelled coroutine raised on its way out
                raise Terminated(received[0]) from None
            raise
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
