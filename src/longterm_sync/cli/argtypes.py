"""Flag value types shared by the commands: argparse turns their ``ArgumentTypeError`` into
the usual one-line usage error (exit 2) that names the flag."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def whole(minimum: int) -> Callable[[str], int]:
    """A whole number of at least ``minimum`` (0 for a lookback of days, 1 for a count)."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}: {value!r}")
        return number

    return parse


positive_int = whole(1)
"""A count of at least 1 (participants, days, jobs)."""


def positive_float(value: str) -> float:
    """A finite number above 0 (a threshold, a tolerance)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 < number < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0: {value!r}")
    return number


def seconds_margin(value: str) -> float:
    """``--sec_margin``: seconds around a video's duration, 0 or more and finite."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not number >= 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds: {value!r}")
    return number
