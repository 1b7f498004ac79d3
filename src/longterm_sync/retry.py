"""Retrying idempotent requests: exponential backoff with full jitter, bounded twice.

A study runs for months and the platform sits behind nginx and gunicorn, so a 502 during a
deploy, a reset connection or a slow worker are routine; a GET is safe to repeat, a POST is
not (the platform would store the schedule merge or the result twice), so only the caller
decides what is retried. The bound is both a number of attempts and a total time, because a
server that is down must turn into a clear failure within minutes, not hang a download.

Full jitter (a uniform delay between 0 and the exponential cap) keeps many participants'
requests, which fail together when the server hiccups, from retrying in lockstep.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from .config import Limits
from .errors import Exhausted, Retryable

__all__ = ["Exhausted", "RetryPolicy", "Retryable", "with_retries"]

T = TypeVar("T")
log = logging.getLogger("longterm_sync.retry")

MAX_SINGLE_DELAY = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    """How many extra attempts, and how long in total, one request may take."""

    retries: int = 5
    max_seconds: float = 120.0
    base_delay: float = 0.5

    @classmethod
    def from_limits(cls, limits: Limits) -> RetryPolicy:
        return cls(
            retries=limits.retries,
            max_seconds=limits.retry_max_seconds,
            base_delay=limits.retry_base_delay,
        )

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Backoff before attempt ``attempt + 1`` (``attempt`` counts from 0)."""
        cap = min(MAX_SINGLE_DELAY, self.base_delay * (2**attempt))
        return (rng or random).uniform(0, cap)


async def with_retries(
    attempt: Callable[[], Awaitable[T]], policy: RetryPolicy, *, what: str = ""
) -> T:
    """Run ``attempt`` until it returns; retry only on :class:`Retryable`.

    Any other exception propagates at once. Raises :class:`Exhausted` when attempts or the
    total time run out (the next backoff would cross the deadline).
    """
    deadline = time.monotonic() + policy.max_seconds
    n = 0
    while True:
        try:
            return await attempt()
        except Retryable as exc:
            n += 1
            if n > policy.retries:
                raise Exhausted(n, exc) from None
            pause = policy.delay(n - 1)
            if time.monotonic() + pause > deadline:
                raise Exhausted(n, exc) from None
            log.debug("retry %d/%d for %s in %.2f s: %s", n, policy.retries, what, pause, exc)
            await asyncio.sleep(pause)
