"""Turn participants, videos and a reply form into schedule documents, all checked first.

Every document is validated with upload-schedule's own validator before anything is written,
so a run either writes every schedule or none: a half-prepared study (some participants with
files, some without) would be uploaded as it is.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ..errors import InputFileError
from ..schedule_file import ScheduleFileError, validate_schedule, video_name_problem
from .participants import Participant

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
DEFAULT_SERVICE = "A"
DEFAULT_LANGUAGE = "PL"


@dataclass(frozen=True)
class Plan:
    """One schedule file to write and what changed in it."""

    participant: Participant
    file_name: str
    document: dict[str, Any]
    action: str  # "new", "appended", "replaced"
    days_added: int
    first_day: date
    last_day: date

    @property
    def entries(self) -> int:
        return len(self.document["schedule"])


def list_videos(root: Path, services: tuple[str, ...]) -> dict[str, list[str]]:
    """Videos per service, as names relative to ``root`` (what upload-schedule uploads).

    Without services every video below ``root`` belongs to service ``A``; with services each
    one has its folder ``root/videos_<service>/``. Sorted by name: one video per day.
    """
    if not root.is_dir():
        raise InputFileError(f"videos folder {root} does not exist")
    folders = {s: root / f"videos_{s}" for s in services} if services else {DEFAULT_SERVICE: root}
    out: dict[str, list[str]] = {}
    for service, folder in folders.items():
        if not folder.is_dir():
            raise InputFileError(f"service {service}: folder {folder} does not exist")
        names = sorted(
            p.relative_to(root).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
        )
        for name in names:
            problem = video_name_problem(name)
            if problem:
                raise InputFileError(f"video {name!r}: {problem}")
        if not names:
            raise InputFileError(
                f"no videos ({', '.join(VIDEO_SUFFIXES)}) in {folder}"
                + (f" for service {service}" if services else "")
            )
        out[service] = names
    return out


def day_entries(
    videos: dict[str, list[str]], start: date, days: int, form: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``days`` consecutive whole days from ``start``, day i showing every service's video i."""
    short = {s: len(v) for s, v in videos.items() if len(v) < days}
    if short:
        service, have = next(iter(short.items()))
        raise InputFileError(
            f"{days} days asked but service {service} has only {have} video(s)",
            hint="pass --days at most the number of videos, or add videos",
        )
    entries = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        entries.append(
            {
                "start": f"{day.isoformat()}T00:00:00",
                "end": f"{day.isoformat()}T23:59:59",
                "service": [
                    {"service_name": service, "video": names[offset]}
                    for service, names in videos.items()
                ],
                "reply_form": copy.deepcopy(form),
            }
        )
    return entries


def plan_schedules(
    people: list[Participant],
    videos: dict[str, list[str]],
    form: list[dict[str, Any]],
    *,
    start: date | None,
    default_start: date,
    days: int | None,
    replace: bool,
    existing_docs: dict[str, dict[str, Any]],
    default_language: str = DEFAULT_LANGUAGE,
) -> list[Plan]:
    """Documents for everyone, each validated; any problem raises before anything is written.

    ``existing_docs`` are files already in the output folder (by file name): their entries are
    kept and the new days appended after them, unless ``replace``.
    """
    count = days if days is not None else min(len(v) for v in videos.values())
    if count < 1:
        raise InputFileError("--days must be at least 1")
    plans: list[Plan] = []
    seen: dict[str, str] = {}
    for person in people:
        name = person.file_name()
        if name in seen:
            raise InputFileError(f"{person.source} and {seen[name]} would both write {name}")
        seen[name] = person.source
        old = person.existing or existing_docs.get(name)
        kept = [] if replace or old is None else list(old.get("schedule") or [])
        first = start or _after(kept, default_start)
        entries = day_entries(videos, first, count, form)
        clash = {str(e.get("start")) for e in kept if isinstance(e, dict)} & {
            e["start"] for e in entries
        }
        if clash:
            raise InputFileError(
                f"{name}: already has an entry starting {min(clash)}",
                hint="choose a later --start, or --replace to start over",
            )
        doc = _document(person, old, default_language)
        doc["schedule"] = kept + entries
        try:
            validate_schedule(doc, Path(name))
        except ScheduleFileError as exc:
            raise InputFileError(f"would not pass upload-schedule: {exc}") from None
        action = "new" if old is None else ("replaced" if replace else "appended")
        plans.append(
            Plan(person, name, doc, action, count, first, first + timedelta(days=count - 1))
        )
    return plans


def _after(kept: list[Any], default_start: date) -> date:
    """Appending without --start: the default, or the day after the last kept entry."""
    last = default_start - timedelta(days=1)
    for entry in kept:
        text = entry.get("start") if isinstance(entry, dict) else None
        if isinstance(text, str) and len(text) >= 10:
            try:
                last = max(last, date.fromisoformat(text[:10]))
            except ValueError:
                continue
    return last + timedelta(days=1)


def _document(person: Participant, old: dict[str, Any] | None, language: str) -> dict[str, Any]:
    doc: dict[str, Any] = {k: v for k, v in (old or {}).items() if k != "schedule"}
    for key in ("name", "surname", "phone"):
        value = getattr(person, key)
        if value:
            doc[key] = value
    if person.external_id:
        doc["external_id"] = person.external_id
    doc["language"] = person.language or doc.get("language") or language
    doc.setdefault("comments", "")
    return doc
