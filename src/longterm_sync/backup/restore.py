"""Write a snapshot's files: into ``latest/`` after every run, or anywhere for ``restore``.

The bytes are made by the same code ``download-results`` and ``download-schedule --mode json``
write with: feedback items as stored (each is already :func:`encode_item`'s one line), each
result decoded one level, its ``user_feedback`` rebuilt by :func:`fix_result` from that
participant's feedback, re-encoded; the ``_all`` files are the participant files spliced in
the run's participant order; a schedule goes through :func:`narrow_schedule` (open range)
and orjson's 2-space indent. One participant is in memory at a time.

``latest/`` is a symlink to ``.latest-<snapshot>/``: the new folder is written completely
(every file fsynced) under a temporary name, renamed, and the symlink replaced by a rename,
so a reader sees the old set of files or the new one, never a mixture.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from ..atomic import atomic_writer, fsync_dir, local_io_error, write_bytes_atomic
from ..errors import LocalIOError
from ..ids import is_safe_id, shown_id
from ..jsonstream import ArrayWriter, encode_item
from ..pipelines.results import build_feedback, decode_items, fix_result
from ..pipelines.schedules import narrow_schedule
from ..timeutil import WARSAW
from .files import (
    EXTRA_LISTINGS,
    FEEDBACK_ALL,
    RESULTS_ALL,
    feedback_name,
    results_name,
    schedule_name,
)
from .store import SnapshotInfo, SnapshotStore

LATEST = "latest"
LATEST_PREFIX = ".latest-"


@dataclass
class Written:
    files: list[str] = field(default_factory=list)
    bytes: int = 0
    records: int = 0


def _array_file(path: Path, parts: list[bytes], written: Written) -> None:
    with atomic_writer(path) as fh:
        writer = ArrayWriter(fh)
        writer.write_parts(parts)
        writer.finish()
        written.bytes += writer.bytes
    written.files.append(path.name)


def _results_file(
    path: Path, raw: list[bytes], feedback_parts: list[bytes], tz: ZoneInfo, what: str
) -> tuple[int, int]:
    body = b"[" + b",".join(feedback_parts) + b"]"
    feedback = build_feedback([body], tz, what)
    with atomic_writer(path) as fh:
        writer = ArrayWriter(fh)
        for record in raw:
            (item,) = decode_items(b"[" + record + b"]", what)
            fix_result(item, feedback, tz)
            writer.write_parts([encode_item(item)])
        writer.finish()
        return writer.bytes, writer.count


def _splice(path: Path, sources: list[tuple[Path, int]], written: Written) -> None:
    with atomic_writer(path) as fh:
        writer = ArrayWriter(fh)
        for src, count in sources:
            writer.splice_file(src, count)
        writer.finish()
        written.bytes += writer.bytes
    written.files.append(path.name)


def write_snapshot(
    store: SnapshotStore,
    snapshot: SnapshotInfo,
    folder: Path,
    *,
    cancelled: Callable[[], bool] | None = None,
) -> Written:
    """Write every file of ``snapshot`` into ``folder`` (created); blocking."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise local_io_error(exc, folder) from None
    tz = ZoneInfo(str(snapshot.info.get("timezone") or WARSAW.key))
    participants: list[str] = list(snapshot.info.get("participants") or [])
    written = Written()
    results_src: list[tuple[Path, int]] = []
    feedback_src: list[tuple[Path, int]] = []
    for ext in participants:
        if cancelled is not None and cancelled():
            raise KeyboardInterrupt
        if not is_safe_id(ext):
            raise LocalIOError(
                f"snapshot {snapshot.id} names a participant {shown_id(ext)} that may not name "
                "a file; the store was altered",
                hint="run `longterm backup verify`",
            )
        fb_ids = store.listing(snapshot.id, feedback_name(ext))
        res_ids = store.listing(snapshot.id, results_name(ext))
        sched_ids = store.listing(snapshot.id, schedule_name(ext))
        fb_parts = list(store.records(fb_ids or []))
        if fb_parts:  # as download-results: a feedback file only for who has feedback
            path = folder / feedback_name(ext)
            _array_file(path, fb_parts, written)
            feedback_src.append((path, len(fb_parts)))
            written.records += len(fb_parts)
        if res_ids is not None:
            path = folder / results_name(ext)
            raw = list(store.records(res_ids))
            size, count = _results_file(path, raw, fb_parts, tz, f"participant {ext} results")
            del raw
            written.bytes += size
            written.records += count
            written.files.append(path.name)
            results_src.append((path, count))
        if sched_ids:
            (record,) = store.records(sched_ids[:1])
            schedule = orjson.loads(record)
            if isinstance(schedule, dict):
                narrowed = narrow_schedule(schedule, None, None, tz).schedule
            else:
                narrowed = schedule
            data = orjson.dumps(narrowed, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
            written.bytes += write_bytes_atomic(folder / schedule_name(ext), data)
            written.files.append(schedule_name(ext))
            written.records += 1
    if snapshot.info.get("participants") is not None:
        _splice(folder / FEEDBACK_ALL, feedback_src, written)
        _splice(folder / RESULTS_ALL, results_src, written)
    for name in EXTRA_LISTINGS:
        ids = store.listing(snapshot.id, name)
        if ids is not None:
            parts = list(store.records(ids))
            _array_file(folder / name, parts, written)
            written.records += len(parts)
    fsync_dir(folder)
    return written


def _remove_tree(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.is_symlink() or path.is_file():
            path.unlink()
        else:
            shutil.rmtree(path)


def replace_latest(store: SnapshotStore, snapshot: SnapshotInfo, text_files: Path) -> Written:
    """Rebuild ``text_files/latest`` from ``snapshot``, switched over in one rename."""
    final = text_files / f"{LATEST_PREFIX}{snapshot.id}"
    partial = text_files / f"{LATEST_PREFIX}{snapshot.id}.partial"
    _remove_tree(partial)
    _remove_tree(final)
    written = write_snapshot(store, snapshot, partial)
    link = text_files / LATEST
    try:
        partial.rename(final)
        tmp_link = text_files / f"{LATEST}.new"
        _remove_tree(tmp_link)
        tmp_link.symlink_to(final.name)
        if link.exists() and not link.is_symlink():  # a folder put there by hand: keep it
            link.rename(text_files / f"{LATEST}.moved-{snapshot.id}")
        tmp_link.replace(link)
        fsync_dir(text_files)
    except OSError as exc:
        raise local_io_error(exc, link) from None
    clean_stale(text_files, keep=final.name)
    return written


def clean_stale(text_files: Path, keep: str | None = None) -> None:
    """Remove old and half-written ``.latest-*`` folders (never the one ``latest`` names)."""
    link = text_files / LATEST
    current = str(link.readlink()) if link.is_symlink() else None
    for entry in text_files.glob(f"{LATEST_PREFIX}*"):
        if entry.name not in (keep, current):
            _remove_tree(entry)
