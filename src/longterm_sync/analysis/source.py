"""Reading results from a folder without loading a whole file.

download-results and a backup's ``latest/`` write one compact item per line (see
:mod:`longterm_sync.jsonstream`), so a 200 MB ``results_all.json`` is read line by line, one
item in memory at a time. A file pretty-printed by another tool (the original scripts'
indented dumps) cannot be cut at lines; it is loaded whole, which is what those tools did too.

A file that ends early or holds a line that is not JSON raises :class:`BadFile` naming the
file and line; the items before it have already been yielded, so a report keeps them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from ..errors import InputFileError
from ..select import Participant, Selection
from ..timeutil import parse_datetime

RESULTS_ALL = "results_all.json"
FEEDBACK_PREFIX = "results_feedback_"
MISSING_VIDEOS = "missing_videos.json"
FOLDER_HINT = "point --from at a download-results folder or a backup's text_files/latest/"


class BadFile(Exception):
    """One input file that cannot be read further; ``str()`` is one line with file:line."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(f"{path}:{line}: {reason}")


def results_files(folder: Path) -> list[Path]:
    """The per-participant ``results_<id>.json`` files, or ``results_all.json`` alone when
    there are none (never both: the combined file repeats the others' items)."""
    if not folder.is_dir():
        raise InputFileError(f"{folder} is not a folder", hint=FOLDER_HINT)
    own = sorted(
        p
        for p in folder.glob("results_*.json")
        if not p.name.startswith(FEEDBACK_PREFIX) and p.name != RESULTS_ALL
    )
    if own:
        return own
    combined = folder / RESULTS_ALL
    if combined.is_file():
        return [combined]
    raise InputFileError(f"no results_*.json files in {folder}", hint=FOLDER_HINT)


def schedule_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("schedule_*.json"))


def iter_items(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line, item)`` for every element of the JSON array in ``path``."""
    for number, text, item in iter_raw(path):
        yield number, parse_line(path, number, text) if text is not None else item


def iter_raw(path: Path) -> Iterator[tuple[int, bytes | None, Any]]:
    """``(line, bytes, None)`` for every element of a one-item-per-line array, unparsed (a
    reader that caches by content skips the parse of what it has seen); ``(0, None, item)``
    for each element of a pretty-printed file, which has to be parsed whole."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise BadFile(path, 0, f"cannot be read ({exc.strerror or exc})") from None
    with fh:
        first = b""
        number = 0
        for raw in fh:
            number += 1
            first = raw.strip()
            if first:
                break
        if not first:
            raise BadFile(path, number, "empty file (not a JSON array)")
        if first == b"[]":
            return
        if first != b"[":
            yield from _whole(path)
            return
        closed = False
        for raw in fh:
            number += 1
            text = raw.strip()
            if not text:
                continue
            if closed:
                raise BadFile(path, number, "text after the closing ']'")
            if text == b"]":
                closed = True
                continue
            if text in (b"{", b"[") or text.startswith(b'"'):
                # pretty-printed: items span lines, so the line cut does not apply
                fh.close()
                yield from _whole(path)
                return
            if text.endswith(b","):
                text = text[:-1]
            yield number, text, None
        if not closed:
            raise BadFile(path, number, "file ends without the closing ']' (truncated)")


def parse_line(path: Path, number: int, text: bytes) -> Any:
    """One line of :func:`iter_raw`; BadFile naming the line when it is not JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        why = "truncated item" if not text.endswith((b"}", b"]")) else "not JSON"
        raise BadFile(path, number, f"{why} ({exc.msg})") from None


def _whole(path: Path) -> Iterator[tuple[int, None, Any]]:
    data = read_json(path)
    if not isinstance(data, list):
        raise BadFile(path, 1, "not a JSON array")
    for item in data:
        yield 0, None, item


def read_json(path: Path) -> Any:
    """A small file (schedule, missing-video list) whole; BadFile on any problem."""
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise BadFile(path, exc.lineno, f"not valid JSON ({exc.msg})") from None
    except OSError as exc:
        raise BadFile(path, 0, f"cannot be read ({exc.strerror or exc})") from None
    return data


@dataclass(frozen=True)
class Keep:
    """Which items of a folder a selection keeps: participant and date range, as the server
    would filter them (both bounds strict)."""

    selection: Selection
    tz: ZoneInfo

    def participant(self, external_id: str) -> Participant | None:
        sel = self.selection
        if sel.participants is None:
            return Participant(external_id, sel.start, sel.stop)
        for p in sel.participants:
            if external_id in (p.external_id, p.also):
                return p
        return None

    def __call__(self, item: Any) -> bool:
        if not isinstance(item, dict):
            return False
        p = self.participant(str(item.get("external_id") or ""))
        if p is None:
            return False
        if p.start is None and p.stop is None:
            return True
        when = item_date(item, self.tz)
        if when is None:
            return False
        return (p.start is None or p.start < when) and (p.stop is None or when < p.stop)


def item_date(item: dict[str, Any], tz: ZoneInfo) -> datetime | None:
    value = item.get("date")
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value, tz).astimezone(tz)
    except ValueError:
        return None
