"""``prepare_schedule``: schedules for many participants at once, written all or none.

The original script was edited by hand for each study (participants and videos were variables
inside it). Here everything comes from files and flags, every document is checked with
upload-schedule's validator before the first file is written, and all files are first written
to temporary names and only renamed once every one of them is on disk: an interrupted or
failed run leaves the folder as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ..atomic import PARTIAL_SUFFIX, fsync_dir, local_io_error
from ..errors import InputFileError
from ..prepare.builder import DEFAULT_LANGUAGE, Plan, list_videos, plan_schedules
from ..prepare.participants import Participant, read_existing, read_participants
from ..prepare.questions import default_form, load_form
from ..summary import Summary

NAME = "prepare_schedule"


@dataclass(frozen=True, kw_only=True)
class PrepareOptions:
    output_dir: Path
    videos: Path
    participants: Path | None = None  # a .xlsx/.csv file ...
    extend: Path | None = None  # ... or a folder of schedule files to extend
    services: tuple[str, ...] = ()
    start: date | None = None
    default_start: date
    days: int | None = None
    template: Path | None = None
    qualtrics_url: str | None = None
    replace: bool = False
    dry_run: bool = False
    language: str = DEFAULT_LANGUAGE


async def run_prepare_schedule(options: PrepareOptions) -> Summary:
    started = time.monotonic()
    summary = Summary(command=NAME)
    plans = await asyncio.to_thread(_plan, options)
    if not options.dry_run:
        await asyncio.to_thread(_write_all, options.output_dir, plans)
    verb = "would write" if options.dry_run else "written"
    summary.count(f"schedules {verb}", len(plans))
    for action in ("new", "appended", "replaced"):
        n = sum(1 for p in plans if p.action == action)
        if n:
            summary.count(action, n)
    summary.files.extend(str(options.output_dir / p.file_name) for p in plans)
    summary.details["table"] = [
        {
            "file": p.file_name,
            "action": p.action,
            "days_added": p.days_added,
            "first_day": p.first_day.isoformat(),
            "last_day": p.last_day.isoformat(),
            "entries": p.entries,
        }
        for p in plans
    ]
    summary.details["dry_run"] = options.dry_run
    summary.elapsed_s = time.monotonic() - started
    return summary


def _plan(options: PrepareOptions) -> list[Plan]:
    """Blocking: reads spreadsheets (pandas) and folders."""
    if (options.participants is None) == (options.extend is None):
        raise InputFileError("give a participants file or --extend FOLDER (one of them)")
    people: list[Participant] = (
        read_participants(options.participants)
        if options.participants is not None
        else read_existing(options.extend)  # type: ignore[arg-type]
    )
    videos = list_videos(options.videos, options.services)
    form = (
        load_form(options.template, options.qualtrics_url)
        if options.template is not None
        else default_form(options.qualtrics_url)
    )
    existing = _existing_docs(options.output_dir) if options.extend is None else {}
    return plan_schedules(
        people,
        videos,
        form,
        start=options.start,
        default_start=options.default_start,
        days=options.days,
        replace=options.replace,
        existing_docs=existing,
        default_language=options.language,
    )


def _existing_docs(folder: Path) -> dict[str, dict[str, Any]]:
    if not folder.is_dir():
        return {}
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("schedule_*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise InputFileError(
                f"{path.name} exists but is not readable JSON",
                hint="move it away, or fix it, before preparing schedules into this folder",
            ) from None
        if isinstance(data, dict):
            docs[path.name] = data
    return docs


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_all(folder: Path, plans: list[Plan]) -> None:
    """Every file to a temporary name and fsynced first; renamed only when all are on disk."""
    staged: list[tuple[Path, Path]] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for plan in plans:
            target = folder / plan.file_name
            fd, name = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=PARTIAL_SUFFIX, dir=folder
            )
            staged.append((Path(name), target))
            text = json.dumps(plan.document, ensure_ascii=False, indent=4) + "\n"
            with os.fdopen(fd, "wb") as fh:
                fh.write(text.encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            Path(name).chmod(0o666 & ~_umask())
        for tmp, target in staged:
            tmp.replace(target)
        fsync_dir(folder)
    except OSError as exc:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise local_io_error(exc, folder) from exc
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
