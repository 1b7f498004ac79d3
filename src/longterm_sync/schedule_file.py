"""An experimenter's schedule file: parse it, validate it completely, make it safe to send.

The platform stores what it is sent and crashes on some malformed schedules *after* it has
created the participant's account, which leaves an orphan that no filter can find again
(docs/PROTOCOL.md, "Orphan accounts"). So nothing about a file may be left for the server to
discover: every check that can be made locally is made here, before the first byte is sent,
and a file with any problem is rejected whole with every problem it has listed in one line.

Personal data (``name``, ``surname``, ``phone``) only ever serves to compute the salted
``external_id``; it is removed from what is sent.
"""

from __future__ import annotations

import bisect
import difflib
import json
import json.decoder
import json.scanner
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .errors import InputFileError
from .ids import external_id as hash_external_id
from .timeutil import WARSAW

PERSONAL_KEYS = ("name", "surname", "phone")
TOP_KEYS = ("external_id", "language", "comments", "schedule", *PERSONAL_KEYS)
ENTRY_KEYS = ("start", "end", "service", "reply_form")
REPLY_TYPES = ("MOS", "TEXT", "QUALTRICS")
MAX_PROBLEMS_SHOWN = 6
ID_MISMATCH = "given, not the hash of name/surname/phone"


class ScheduleFileError(InputFileError):
    """A schedule file that must not be sent; ``problems`` lists every reason found."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        shown = problems[:MAX_PROBLEMS_SHOWN]
        more = len(problems) - len(shown)
        text = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
        super().__init__(f"{path.name}: {text}")


@dataclass(frozen=True)
class ScheduleFile:
    """A validated schedule, ready to plan and send."""

    path: Path
    external_id: str
    id_source: str  # "hashed", "given", or ID_MISMATCH (given, but not the personal data's hash)
    payload: dict[str, Any]  # exactly what is sent: personal keys removed, external_id set
    videos: tuple[str, ...]  # every referenced video, first appearance order, no duplicates
    warnings: tuple[str, ...] = field(default=())

    @property
    def entries(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.payload["schedule"]
        return entries


def find_schedule_files(folder: Path) -> list[Path]:
    """``*.json`` directly in ``folder`` (flat, as the original script documented), sorted."""
    if not folder.is_dir():
        raise InputFileError(
            f"schedule folder {folder} does not exist", hint="pass jsons_path or --jsons_path"
        )
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".json" and p.is_file())


def load_schedule_file(path: Path, *, salt: str = "", tz: ZoneInfo = WARSAW) -> ScheduleFile:
    """Read and validate one file; every problem raises :class:`ScheduleFileError` (one line)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScheduleFileError(path, [f"cannot read: {exc.strerror or exc}"]) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScheduleFileError(path, [f"line {line}: not UTF-8 text"]) from exc
    return parse_schedule_text(text, path, salt=salt, tz=tz)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKeyError(key)
        seen[key] = value
    return seen


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key
        self.line = 0


def _decode(text: str) -> tuple[Any, dict[int, int]]:
    """json.loads that also remembers the line where every object starts (by ``id``).

    The pure-Python scanner is slower than the C one, but schedule files are small and a
    problem that names its line is found in seconds instead of by scrolling.
    """
    newlines = [m.start() for m in re.finditer("\n", text)]
    lines: dict[int, int] = {}
    decoder = json.JSONDecoder(object_pairs_hook=_reject_duplicate_keys)

    def parse_object(s_and_end: tuple[str, int], *args: Any) -> tuple[Any, int]:
        line = bisect.bisect_left(newlines, s_and_end[1] - 1) + 1
        try:
            obj, end = json.decoder.JSONObject(s_and_end, *args)  # type: ignore[attr-defined]
        except _DuplicateKeyError as exc:
            exc.line = exc.line or line
            raise
        lines[id(obj)] = line
        return obj, end

    decoder.parse_object = parse_object  # type: ignore[attr-defined]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    return decoder.decode(text), lines


def parse_schedule_text(
    text: str, path: Path, *, salt: str = "", tz: ZoneInfo = WARSAW
) -> ScheduleFile:
    try:
        data, lines = _decode(text)
    except json.JSONDecodeError as exc:
        raise ScheduleFileError(
            path, [f"line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}"]
        ) from exc
    except _DuplicateKeyError as exc:
        raise ScheduleFileError(
            path, [f"line {exc.line}: key {exc.key!r} appears twice in one object"]
        ) from exc
    return validate_schedule(data, path, salt=salt, tz=tz, lines=lines)


_PATH = re.compile(r"^schedule((?:\[\d+\]|\.[a-z_]+)*)")
_STEP = re.compile(r"\[(\d+)\]|\.([a-z_]+)")


def _with_line(problem: str, data: dict[str, Any], lines: Mapping[int, int]) -> str:
    """``line 40: schedule[3].end ...``: the line of the innermost object the path names."""
    match = _PATH.match(problem)
    if not match:
        return problem
    node: Any = data.get("schedule")
    line = 0
    for index, key in _STEP.findall(match.group(1)):
        if index and isinstance(node, list) and int(index) < len(node):
            node = node[int(index)]
        elif key and isinstance(node, dict) and key in node:
            node = node[key]
        else:
            break
        line = lines.get(id(node), line)
    return f"line {line}: {problem}" if line else problem


def validate_schedule(
    data: Any,
    path: Path,
    *,
    salt: str = "",
    tz: ZoneInfo = WARSAW,
    lines: Mapping[int, int] | None = None,
) -> ScheduleFile:
    """Check the whole document and build the payload; collects every problem before raising."""
    problems: list[str] = []
    warnings: list[str] = []
    if not isinstance(data, dict):
        raise ScheduleFileError(path, [f"top level must be an object, got {_kind(data)}"])
    for key in data:
        if key not in TOP_KEYS:
            warnings.append(f"{path.name}: unknown key {key!r}{_did_you_mean(key, TOP_KEYS)}")

    eid, id_source = _external_id(data, salt, problems, warnings, path)
    language = data.get("language")
    if not isinstance(language, str) or not language.strip():
        problems.append(_missing_or_bad("language", data, "a non-empty string"))
    if "comments" in data and not isinstance(data["comments"], str):
        problems.append(f"comments must be a string, got {_kind(data['comments'])}")

    videos: dict[str, None] = {}
    schedule = data.get("schedule")
    if not isinstance(schedule, list):
        problems.append(
            _missing_or_bad("schedule", data, "a list of entries")
            + _did_you_mean_missing("schedule", data)
        )
    elif not schedule:
        problems.append("schedule has no entries")
    else:
        starts: dict[str, int] = {}
        for index, entry in enumerate(schedule):
            _check_entry(entry, f"schedule[{index}]", tz, problems, videos)
            start = entry.get("start") if isinstance(entry, dict) else None
            if isinstance(start, str):
                if start in starts:
                    problems.append(
                        f"schedule[{index}].start {start!r} repeats schedule[{starts[start]}]"
                        " (the server keys entries by start)"
                    )
                else:
                    starts[start] = index
        warnings.extend(_same_day_warnings(starts, path))
    if problems:
        if lines:
            problems = [_with_line(p, data, lines) for p in problems]
        raise ScheduleFileError(path, problems)

    payload = {k: v for k, v in data.items() if k not in PERSONAL_KEYS}
    if id_source == "hashed":
        payload = {"external_id": eid, **{k: v for k, v in payload.items() if k != "external_id"}}
    return ScheduleFile(
        path=path,
        external_id=eid,
        id_source=id_source,
        payload=payload,
        videos=tuple(videos),
        warnings=tuple(warnings),
    )


def _same_day_warnings(starts: dict[str, int], path: Path) -> list[str]:
    """The same wall-clock start spelled twice (``T00:00:00`` and ``T00:00:00+01:00``): the
    server keeps both, so the phone gets two entries at that time (likely a mistake)."""
    first_at: dict[str, int] = {}
    out: list[str] = []
    for start, index in starts.items():
        moment = start[:19]
        if moment in first_at:
            out.append(
                f"{path.name}: schedule[{index}] and schedule[{first_at[moment]}] both start at "
                f"{moment} (spelled differently); the phone gets two entries"
            )
        else:
            first_at[moment] = index
    return out


def _external_id(
    data: dict[str, Any], salt: str, problems: list[str], warnings: list[str], path: Path
) -> tuple[str, str]:
    personal = {k: data.get(k) for k in PERSONAL_KEYS}
    for key, value in personal.items():
        if (value is not None and not isinstance(value, str | int)) or isinstance(value, bool):
            problems.append(f"{key} must be a string, got {_kind(value)}")
    given = data.get("external_id")
    if given is not None and not isinstance(given, str):
        problems.append(f"external_id must be a string, got {_kind(given)}")
        return "", "given"
    have_personal = all(
        isinstance(v, str | int) and not isinstance(v, bool) and str(v).strip()
        for v in personal.values()
    )
    hashed = (
        hash_external_id(
            str(personal["name"]), str(personal["surname"]), str(personal["phone"]), salt
        )
        if have_personal
        else ""
    )
    if given and given.strip():
        if given != given.strip() or any(c.isspace() or c == "," for c in given):
            problems.append(
                f"external_id {given!r} contains spaces or commas (the server's filter "
                "splits on commas and never trims)"
            )
        if hashed and hashed != given:
            return given, ID_MISMATCH
        return given, "given"
    if not have_personal:
        missing = [k for k in PERSONAL_KEYS if not str(personal.get(k) or "").strip()]
        problems.append(
            "no external_id and no complete name/surname/phone to compute it "
            f"(missing: {', '.join(missing)})"
        )
        return "", "hashed"
    return hashed, "hashed"


def _check_entry(
    entry: Any, where: str, tz: ZoneInfo, problems: list[str], videos: dict[str, None]
) -> None:
    if not isinstance(entry, dict):
        problems.append(f"{where} must be an object, got {_kind(entry)}")
        return
    for key in ENTRY_KEYS:
        if key not in entry:
            problems.append(f"{where} has no {key!r}{_did_you_mean_missing(key, entry)}")
    start = _check_datetime(entry, "start", where, tz, problems)
    end = _check_datetime(entry, "end", where, tz, problems)
    if start is not None and end is not None and end <= start:
        problems.append(f"{where}.end {entry['end']!r} is not after start {entry['start']!r}")
    if "service" in entry:
        _check_services(entry["service"], f"{where}.service", problems, videos)
    if "reply_form" in entry:
        _check_reply_form(entry["reply_form"], f"{where}.reply_form", problems)


def _check_datetime(
    entry: dict[str, Any], key: str, where: str, tz: ZoneInfo, problems: list[str]
) -> datetime | None:
    if key not in entry:
        return None
    value = entry[key]
    try:
        return parse_entry_datetime(value, tz)
    except ValueError as exc:
        problems.append(f"{where}.{key}: {exc}")
        return None


def parse_entry_datetime(value: Any, tz: ZoneInfo = WARSAW) -> datetime:
    """An entry's ``start``/``end``: ISO 8601 with a time part; naive means ``tz``.

    A date alone is refused: the server crashes on a date-only ``start`` after creating the
    account, and the phone needs the time of day.
    """
    if not isinstance(value, str):
        raise ValueError(f"must be an ISO datetime string, got {_kind(value)}")
    text = value.strip()
    if text != value or len(text) < 16 or text[10:11] != "T":
        raise ValueError(f"{value!r} is not an ISO datetime with a time part (2021-12-01T00:00:00)")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is not a valid ISO datetime") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def _check_services(
    services: Any, where: str, problems: list[str], videos: dict[str, None]
) -> None:
    if not isinstance(services, list) or not services:
        problems.append(f"{where} must be a non-empty list, got {_kind(services)}")
        return
    for index, service in enumerate(services):
        here = f"{where}[{index}]"
        if not isinstance(service, dict):
            problems.append(f"{here} must be an object, got {_kind(service)}")
            continue
        if not isinstance(service.get("service_name"), str):
            problems.append(_missing_or_bad("service_name", service, "a string", here))
        video = service.get("video")
        if not isinstance(video, str) or not video:
            problems.append(_missing_or_bad("video", service, "a non-empty string", here))
            continue
        reason = video_name_problem(video)
        if reason:
            problems.append(f"{here}.video {video!r}: {reason}")
        else:
            videos.setdefault(video, None)


def video_name_problem(name: str) -> str | None:
    """Why a video name cannot be a path below ``media/videos/``, or None when it can."""
    if "\x00" in name or "\\" in name:
        return "contains a NUL or a backslash"
    if name.startswith("/"):
        return "must be relative to media/videos/, not absolute"
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "must be a plain path below media/videos/ (no '..', '.', or empty parts)"
    if posixpath.normpath(name) != name:
        return "is not a normalised path"
    if name.endswith(".md5sum"):
        return "names a checksum file, not a video"
    return None


def _check_reply_form(forms: Any, where: str, problems: list[str]) -> None:
    if not isinstance(forms, list):
        problems.append(f"{where} must be a list, got {_kind(forms)}")
        return
    for index, form in enumerate(forms):
        here = f"{where}[{index}]"
        if not isinstance(form, dict):
            problems.append(f"{here} must be an object, got {_kind(form)}")
            continue
        kind = form.get("type")
        if kind not in REPLY_TYPES:
            hint = _did_you_mean_missing("type", form) if "type" not in form else ""
            problems.append(
                f"{here}.type must be one of {', '.join(REPLY_TYPES)}, got {kind!r}{hint}"
            )
            continue
        if kind == "QUALTRICS":
            if index != len(forms) - 1:
                problems.append(f"{here}: QUALTRICS must be the last question of the form")
            url = form.get("qualtrics_url")
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                problems.append(f"{here}.qualtrics_url must be an http(s) URL, got {url!r}")
        if kind == "MOS":
            buttons = form.get("buttons")
            if not isinstance(buttons, list) or not buttons:
                problems.append(f"{here}.buttons must be a non-empty list for MOS")
            elif not all(isinstance(b, dict) and "value" in b for b in buttons):
                problems.append(f"{here}.buttons: every button needs a 'value'")


def check_videos(schedule: ScheduleFile, available: Callable[[str], bool]) -> list[str]:
    """Referenced videos that are neither local nor on the server."""
    return [video for video in schedule.videos if not available(video)]


def referenced_videos(schedules: Iterable[ScheduleFile]) -> set[str]:
    return {video for s in schedules for video in s.videos}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _missing_or_bad(key: str, obj: dict[str, Any], want: str, where: str = "") -> str:
    name = f"{where}.{key}" if where else key
    if key not in obj:
        return f"{name} is missing"
    return f"{name} must be {want}, got {_kind(obj[key])}"


def _did_you_mean(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.7)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _did_you_mean_missing(key: str, obj: dict[str, Any]) -> str:
    """A missing required key next to a near-miss spelling (``replay_form``) says so."""
    if key in obj:
        return ""
    close = difflib.get_close_matches(key, [str(k) for k in obj], n=1, cutoff=0.7)
    return f" (found {close[0]!r}: a typo?)" if close else ""
