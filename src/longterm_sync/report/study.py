"""A folder of downloaded files reduced to what the site shows, one participant at a time.

The folder is what download-results and download-schedule write, or a backup's
``text_files/latest/`` (which adds ``missing_videos.json``). Results are streamed item by
item (:func:`longterm_sync.analysis.source.iter_items`) and each is reduced at once to a
:class:`ViewingRow` of a few hundred bytes: its user_activity cell part (the same function
user_activity uses), every answer, the phone, and the key of its sensor figure. A viewing
whose figure is not in the cache is handed to ``on_new_figure`` while its sensor arrays are
still in memory, so a study of hundreds of MB is never held whole.

Only ``external_id`` and the experimenter's local aliases are kept: a schedule's ``name``,
``surname`` and ``phone`` (present in an experimenter's own files) are never read.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..analysis.devices import Span, device_spans
from ..analysis.missing import Entry, join_reports, schedule_entries
from ..analysis.source import (
    FEEDBACK_PREFIX,
    MISSING_VIDEOS,
    RESULTS_ALL,
    BadFile,
    Keep,
    item_date,
    iter_items,
    iter_raw,
    parse_line,
    read_json,
    results_files,
    schedule_files,
)
from ..analysis.stats import form_content, local_iso
from ..atomic import atomic_writer
from ..errors import InputFileError
from ..ids import is_safe_id, shown_id
from ..pipelines.activity import UNANSWERED, Viewing, answer_part, viewing
from ..select import Selection

ALIAS_MAX = 60


@dataclass(frozen=True)
class ViewingRow:
    """One watch result, reduced."""

    when: datetime | None
    video: str
    cell: Viewing  # user_activity's reading of it
    answers: dict[str, str]  # optional_id -> the answer as user_activity writes it
    device: tuple[str, str, str]  # brand, model, OS version
    figure: str | None  # cache key of its sensor figure; None when it cannot be drawn

    @property
    def day(self) -> date | None:
        return self.when.date() if self.when is not None else None

    @property
    def answered(self) -> bool:
        return any(text != UNANSWERED.strip() for text in self.answers.values())


@dataclass(frozen=True)
class Comment:
    when: datetime | None
    video: str
    text: str


@dataclass
class ParticipantData:
    external_id: str
    alias: str | None = None
    viewings: list[ViewingRow] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    devices: list[Span] = field(default_factory=list)
    has_schedule: bool = False

    def sort(self) -> None:
        far = datetime.max.replace(tzinfo=ZoneInfo("UTC"))
        self.viewings.sort(key=lambda v: v.when or far)
        self.comments.sort(key=lambda c: c.when or far)
        self.entries.sort(key=lambda e: e.start)


@dataclass
class Study:
    participants: dict[str, ParticipantData] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (item, reason)
    items: int = 0
    not_results: int = 0

    def get(self, external_id: str) -> ParticipantData:
        found = self.participants.get(external_id)
        if found is None:
            found = self.participants[external_id] = ParticipantData(external_id)
        return found


FigureKey = Callable[[dict[str, Any]], str]
"""Computes a figure's cache key from a results item (its comments included)."""

NewFigure = Callable[[str, dict[str, Any]], bool]
"""Called for a viewing whose figure is not cached; True when it will be drawn."""


@dataclass(frozen=True, kw_only=True)
class ReadOptions:
    tz: ZoneInfo
    selection: Selection
    sec_margin: float = 3.0
    question: str = "q2"
    figure_key: FigureKey | None = None
    cached: Callable[[str], bool] | None = None
    on_new_figure: NewFigure | None = None


def read_aliases(path: Path) -> dict[str, str]:
    """``external_id,alias`` lines (a header line ``external_id,alias`` is allowed).

    The file is the experimenter's, kept on this machine: aliases go into the site only."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputFileError(f"alias file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputFileError(f"alias file {path} is not UTF-8 text") from None
    out: dict[str, str] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip() or row[0].strip().startswith("#"):
            continue
        if number == 1 and [c.strip().lower() for c in row[:2]] == ["external_id", "alias"]:
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise InputFileError(
                f"alias file {path}:{number}: expected 'external_id,alias'",
                hint="one participant per line, two fields",
            )
        ext, alias = row[0].strip(), " ".join(row[1].split())
        if not is_safe_id(ext):
            raise InputFileError(f"alias file {path}:{number}: not an external_id {shown_id(ext)}")
        if len(alias) > ALIAS_MAX:
            raise InputFileError(
                f"alias file {path}:{number}: alias longer than {ALIAS_MAX} characters"
            )
        out[ext] = alias
    return out


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _device(result: dict[str, Any]) -> tuple[str, str, str]:
    info = result.get("device_info")
    info = info if isinstance(info, dict) else {}
    return (_text(info.get("brand")), _text(info.get("model")), _text(info.get("os_version")))


def reduce_item(item: dict[str, Any], options: ReadOptions) -> ViewingRow | None:
    """One results item -> its row; None when it is not a result (a poison row)."""
    row = _row(item, options)
    if row is None:
        return None
    _key, shown, _drawable = _figure(item, options)
    return dataclasses.replace(row, figure=shown)


def _row(item: dict[str, Any], options: ReadOptions) -> ViewingRow | None:
    """The row without its figure."""
    result = item.get("result")
    if not isinstance(result, dict):
        return None
    cell = viewing(item, margin=options.sec_margin, question=options.question, tz=options.tz)
    answers: dict[str, str] = {}
    for question in form_content(result):
        if isinstance(question, dict) and isinstance(question.get("optional_id"), str):
            qid = question["optional_id"]
            answers[qid] = answer_part(result, qid).strip()
    return ViewingRow(
        when=cell.when,
        video=_text(result.get("video")) or "(no video)",
        cell=cell,
        answers=answers,
        device=_device(result),
        figure=None,
    )


def _figure(
    item: dict[str, Any], options: ReadOptions
) -> tuple[str | None, str | None, bool | None]:
    """(its figure's cache key, that key when the figure exists or is being drawn, whether
    it can be drawn at all: None when not found out because the figure was cached)."""
    if options.figure_key is None:
        return None, None, None
    key = options.figure_key(item)
    if options.cached is not None and options.cached(key):
        return key, key, None
    drawn = options.on_new_figure(key, item) if options.on_new_figure else False
    return key, (key if drawn else None), drawn


# -- the row cache -----------------------------------------------------------------------------
#
# A nightly rebuild reads the whole study again, and most of its lines are the same bytes as
# the night before. Each line's reduction is kept under a 16-byte digest of its bytes, with
# what the selection needs (owner, date) and its figure's key: a line seen before is not
# parsed at all. The cache is a pickle in the site's folder, written by this code only; any
# problem reading it (another version, other options, a damaged file) means an empty cache.

ROW_CACHE = ".rows-cache.pickle"
ROW_CACHE_VERSION = 1

CacheEntry = tuple[str, Any, ViewingRow | None, str | None, bool | None]
"""(external_id, the item's date as written, row or None, figure key, drawable)."""


def _signature(options: ReadOptions) -> tuple[Any, ...]:
    return (ROW_CACHE_VERSION, options.tz.key, options.sec_margin, options.question)


def load_row_cache(path: Path, options: ReadOptions) -> dict[bytes, CacheEntry]:
    try:
        with path.open("rb") as fh:
            signature, entries = pickle.load(fh)
    except FileNotFoundError:
        return {}
    except Exception:  # any damage: start again
        return {}
    if signature != _signature(options) or not isinstance(entries, dict):
        return {}
    return entries


def save_row_cache(path: Path, options: ReadOptions, entries: dict[bytes, CacheEntry]) -> None:
    with atomic_writer(path) as fh:
        pickle.dump((_signature(options), entries), fh, protocol=pickle.HIGHEST_PROTOCOL)


def _cached_row(entry: CacheEntry, options: ReadOptions) -> ViewingRow | None:
    """The cached row with its figure as it stands now; None when the line must be read
    again (its figure is gone from the cache and has to be drawn)."""
    _ext, _date, row, key, drawable = entry
    if row is None or options.figure_key is None:
        return row
    if key is not None and options.cached is not None and options.cached(key):
        return dataclasses.replace(row, figure=key)
    if drawable is False:
        return row  # no sensor data: nothing to draw
    return None


def _participant_files(files: list[Path], selection: Selection) -> list[Path]:
    if selection.participants is None or files[0].name == RESULTS_ALL:
        return files
    wanted = {f"results_{p.external_id}.json" for p in selection.participants}
    return [f for f in files if f.name in wanted]


def read_study(
    folder: Path,
    options: ReadOptions,
    old_rows: dict[bytes, CacheEntry] | None = None,
    rows: dict[bytes, CacheEntry] | None = None,
) -> Study:
    """Blocking (run it in a thread). Bad files are problems, not errors: what was read
    before the bad line is kept, as in the analysis commands. ``old_rows`` is the row cache
    of the previous build; ``rows`` receives this build's (only the lines seen now)."""
    old_rows = old_rows if old_rows is not None else {}
    rows = rows if rows is not None else {}
    if not folder.is_dir():
        raise InputFileError(
            f"{folder} is not a folder",
            hint="point --from at a download-results folder or a backup's text_files/latest/",
        )
    tz = options.tz
    keep = Keep(options.selection, tz)
    study = Study()
    try:
        files = results_files(folder)
    except InputFileError:
        if not schedule_files(folder):
            raise
        files = []  # a study with schedules but no results yet
    for path in _participant_files(files, options.selection) if files else []:
        try:
            _read_results(path, keep, options, study, old_rows, rows)
        except BadFile as exc:
            study.problems.append((f"{exc.path}:{exc.line}", exc.reason))
    _read_feedback(folder, keep, study)
    schedules = _read_schedules(folder, keep, study)
    _read_missing(folder, keep, schedules, tz, study)
    for wanted in options.selection.participants or []:
        if wanted.external_id not in study.participants:
            study.problems.append((f"participant {wanted.external_id}", f"not in {folder}"))
    for p in study.participants.values():
        p.sort()
        p.devices = device_spans(
            {
                "external_id": p.external_id,
                "date": local_iso(v.when),
                "device_brand": v.device[0],
                "device_model": v.device[1],
                "os_version": v.device[2],
            }
            for v in p.viewings
            if v.when is not None
        )
    return study


def _read_results(
    path: Path,
    keep: Keep,
    options: ReadOptions,
    study: Study,
    old_rows: dict[bytes, CacheEntry],
    rows: dict[bytes, CacheEntry],
) -> None:
    for number, text, parsed in iter_raw(path):
        digest = hashlib.blake2b(text, digest_size=16).digest() if text is not None else None
        entry = old_rows.get(digest) if digest is not None else None
        if entry is not None:
            ext, date = entry[0], entry[1]
            if not keep({"external_id": ext, "date": date}):
                continue
            row = _cached_row(entry, options)
            if row is not None or entry[2] is None:
                assert digest is not None
                rows[digest] = entry
                study.items += 1
                if row is None:
                    study.not_results += 1
                else:
                    study.get(ext).viewings.append(row)
                continue
        item = parse_line(path, number, text) if text is not None else parsed
        if not keep(item):
            continue
        study.items += 1
        ext = str(item.get("external_id") or "")
        base = _row(item, options)
        row = base
        key: str | None = None
        drawable: bool | None = None
        if base is not None:
            key, shown, drawable = _figure(item, options)
            row = dataclasses.replace(base, figure=shown)
        if digest is not None:
            rows[digest] = (ext, item.get("date"), base, key, drawable)
        if row is None:
            study.not_results += 1
            continue
        study.get(ext).viewings.append(row)


def _read_feedback(folder: Path, keep: Keep, study: Study) -> None:
    for path in sorted(folder.glob(f"{FEEDBACK_PREFIX}*.json")):
        if path.name == f"{FEEDBACK_PREFIX}all.json":
            continue
        ext = path.name[len(FEEDBACK_PREFIX) : -len(".json")]
        if keep.participant(ext) is None:
            continue
        try:
            for _line, item in iter_items(path):
                if not isinstance(item, dict) or not keep(item):
                    continue
                text = item.get("comment")
                if not isinstance(text, str):
                    continue
                owner = str(item.get("external_id") or ext)
                study.get(owner).comments.append(
                    Comment(item_date(item, keep.tz), _text(item.get("video")), text)
                )
        except BadFile as exc:
            study.problems.append((f"{exc.path}:{exc.line}", exc.reason))


def _read_schedules(folder: Path, keep: Keep, study: Study) -> dict[str, Any]:
    schedules: dict[str, Any] = {}
    for path in schedule_files(folder):
        try:
            data = read_json(path)
        except BadFile as exc:
            study.problems.append((f"{exc.path}:{exc.line}", exc.reason))
            continue
        if isinstance(data, dict) and isinstance(data.get("schedule"), dict):
            data = data["schedule"]  # the server's {"id", "schedule"} row
        ext = str(data.get("external_id") or "") if isinstance(data, dict) else ""
        if not ext or keep.participant(ext) is None:
            continue
        schedules[ext] = data
        p = study.get(ext)
        p.has_schedule = True
        p.entries = schedule_entries(data, keep.tz)
    return schedules


def _read_missing(
    folder: Path, keep: Keep, schedules: dict[str, Any], tz: ZoneInfo, study: Study
) -> None:
    path = folder / MISSING_VIDEOS
    if not path.is_file():
        return
    reports: list[Any] = []
    try:
        reports = [item for _line, item in iter_items(path) if keep(item)]
    except BadFile as exc:
        study.problems.append((f"{exc.path}:{exc.line}", exc.reason))
    for row in join_reports(reports, schedules, tz):
        if row["external_id"] in study.participants or keep.participant(row["external_id"]):
            study.get(row["external_id"]).missing.append(row)
