"""Which participants a run covers: the three selection flags every script shares.

The forms, exactly as the original scripts spelled them::

    --user_time "name,surname,phone[,start,stop]"   one participant (hashed locally)
    --user_time ",,,start,stop"                     every participant, results in a range
    --user_time ""  (or " ", ",", ",,,", no value)  every participant, whole study
    --external_id_time "id[,start,stop]"            one participant by external_id
    --excel_time FILE                               .xlsx/.xls (pandas + openpyxl) or .csv with
                                                    columns external_id,start_date,stop_date

Priority when several are given: ``--excel_time`` > ``--external_id_time`` > ``--user_time``
(the original scripts' order); the ignored flags are reported as a warning. A blank
``--external_id_time`` or ``--excel_time`` counts as not given (the old scripts' default was
``" "``). Every malformed value is a one-line :class:`SelectionError` (exit 2): the old
scripts silently fell back to "everything", which downloaded the whole study by accident.

Dates: ISO 8601; a naive value is in the profile's timezone. A date-only *stop* means the end
of that day (``2022-01-31`` includes the 31st), so a file of study days reads as people expect;
a date-only *start* is that day's midnight. The same holds for spreadsheet date cells at
midnight. Either bound may be left empty (open range).

Spreadsheet rows whose start is in the future or whose stop is in the past are skipped (the
participant is not active now) and listed by :func:`skipped_table`. A file without an
``external_id`` column but with ``name,surname,phone`` is hashed locally; names never leave
the machine and are never logged.

"All participants" means ``/api/users/`` minus accounts without a schedule: the platform
creates an account before merging its schedule, so a crashed upload leaves an orphan account
that no ``external_id`` filter can ever see. Orphans are reported as one warning. Staff
accounts (``STAFF_ACCOUNTS``, e.g. the operator whose token runs the scripts) never have a
schedule; the server cannot tell us which account our token belongs to, so those names are
exempt from the warning by convention.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from .errors import SelectionError
from .ids import external_id as hash_external_id
from .ids import is_safe_id, shown_id
from .spreadsheet import cell_text, read_table
from .timeutil import parse_datetime

log = logging.getLogger("longterm_sync.select")

STAFF_ACCOUNTS = frozenset({"admin", "operator", "root"})
"""Usernames that are expected to have no schedule and are never reported as orphans."""

_ID_RE = re.compile(r"^[^\s,]+$")


@dataclass(frozen=True)
class Participant:
    """One participant and the time range to fetch (``None`` = open end), tz-aware."""

    external_id: str
    start: datetime | None = None
    stop: datetime | None = None
    also: str | None = None
    """A second id to try when the server has none for ``external_id``: the hash of the
    ``--user_time`` name with every space removed, as the original scripts computed it."""

    @property
    def short(self) -> str:
        """The id prefix used in logs and messages: enough to find it, short enough to read."""
        return self.external_id[:12]


@dataclass(frozen=True)
class SkippedRow:
    """A spreadsheet row left out because the participant is not active now."""

    row: int  # line number in the file, header = 1 (as a spreadsheet shows it)
    external_id: str
    start: datetime | None
    stop: datetime | None
    reason: str


@dataclass
class Selection:
    """The parsed flags, before the server is asked who exists."""

    participants: list[Participant] | None  # None = all participants
    start: datetime | None = None  # range when "all" (``,,,start,stop``)
    stop: datetime | None = None
    source: str = "all"  # "excel" | "external_id" | "user_time" | "all"
    skipped: list[SkippedRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    now: datetime | None = None  # the moment the skip rule was applied

    @property
    def is_all(self) -> bool:
        return self.participants is None

    def skipped_records(self) -> list[dict[str, str | int | None]]:
        """The skipped rows for a ``--json`` summary."""
        return [
            {
                "row": s.row,
                "external_id": s.external_id,
                "start": s.start.isoformat() if s.start else None,
                "stop": s.stop.isoformat() if s.stop else None,
                "reason": s.reason,
            }
            for s in self.skipped
        ]

    def describe(self) -> str:
        """One line for the log; never contains a name, only id prefixes."""
        rng = _describe_range(self.start, self.stop)
        if self.participants is None:
            return f"all participants{rng}"
        ids = ", ".join(p.short for p in self.participants[:3])
        more = f", +{len(self.participants) - 3} more" if len(self.participants) > 3 else ""
        n = len(self.participants)
        return f"{n} participant{'s' if n != 1 else ''} from --{_FLAG[self.source]} ({ids}{more})"


_FLAG = {
    "excel": "excel_time",
    "external_id": "external_id_time",
    "user_time": "user_time",
    "all": "user_time",
}


def _describe_range(start: datetime | None, stop: datetime | None) -> str:
    if start is None and stop is None:
        return ""
    return f" from {start.isoformat() if start else '-'} to {stop.isoformat() if stop else '-'}"


class Directory(Protocol):
    """What :func:`resolve_participants` needs from the platform client."""

    async def users(self) -> list[str]: ...

    async def schedules(
        self, external_ids: Sequence[str] | None = None
    ) -> list[dict[str, Any]]: ...


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def _parse_bound(text: str, tz: ZoneInfo, *, is_stop: bool, what: str) -> datetime | None:
    """One range bound; ``what`` names it in the error (``--user_time: start``)."""
    text = text.strip()
    if not text:
        return None
    try:
        parsed = parse_datetime(text, tz)
    except ValueError:
        raise SelectionError(
            f"{what} {text!r} is not an ISO date/time",
            hint="use e.g. 2022-01-31 or 2022-01-31T23:59:59",
        ) from None
    if is_stop and _date_only(text):
        parsed = _end_of_day(parsed, tz)
    return parsed


def _date_only(text: str) -> bool:
    return "T" not in text and " " not in text and len(text) <= 10


def _end_of_day(value: datetime, tz: ZoneInfo) -> datetime:
    """Midnight after ``value``'s day, in ``tz`` (DST-safe: built from the next date)."""
    return datetime.combine(value.date() + timedelta(days=1), time(), tzinfo=tz)


def _check_range(
    start: datetime | None,
    stop: datetime | None,
    flag: str,
    typed: tuple[str, str],
    where: str = "",
) -> None:
    """``typed`` is what the user wrote: the message quotes it, not the whole-day bound a
    date-only stop was turned into."""
    if start is not None and stop is not None and start >= stop:
        raise SelectionError(
            f"--{flag}{where}: start {typed[0].strip()!r} is not before stop {typed[1].strip()!r}"
        )


def _parse_user_time(value: str, *, salt: str, tz: ZoneInfo) -> Selection:
    fields = value.split(",")
    if all(not f.strip() for f in fields):
        return Selection(participants=None, source="all")
    if len(fields) not in (3, 5):
        raise SelectionError(
            f"--user_time: expected 3 or 5 comma-separated fields, got {len(fields)}",
            hint='"name,surname,phone[,start,stop]" or ",,,start,stop"',
        )
    name, surname, phone = (f.strip() for f in fields[:3])
    squeezed = ["".join(f.split()) for f in fields[:3]]
    start = stop = None
    if len(fields) == 5:
        start = _parse_bound(fields[3], tz, is_stop=False, what="--user_time: start")
        stop = _parse_bound(fields[4], tz, is_stop=True, what="--user_time: stop")
        _check_range(start, stop, "user_time", (fields[3], fields[4]))
    if not name and not surname and not phone:
        return Selection(participants=None, start=start, stop=stop, source="all")
    if not (name and surname and phone):
        missing = [n for n, v in (("name", name), ("surname", surname), ("phone", phone)) if not v]
        raise SelectionError(
            f"--user_time: {' and '.join(missing)} missing",
            hint="give name, surname and phone, or none of them for every participant",
        )
    ext = hash_external_id(name, surname, phone, salt=salt)
    also = hash_external_id(squeezed[0], squeezed[1], squeezed[2], salt)
    participant = Participant(ext, start, stop, also=also if also != ext else None)
    return Selection(participants=[participant], source="user_time")


def _parse_external_id_time(value: str, *, tz: ZoneInfo) -> Selection:
    fields = value.split(",")
    if len(fields) not in (1, 3):
        raise SelectionError(
            f"--external_id_time: expected 1 or 3 comma-separated fields, got {len(fields)}",
            hint='"external_id[,start,stop]"',
        )
    ext = fields[0].strip()
    if not ext:
        raise SelectionError(
            "--external_id_time: the external_id is empty",
            hint='for every participant in a range use --user_time=",,,start,stop"',
        )
    if not _ID_RE.match(ext):
        raise SelectionError(f"--external_id_time: {ext[:20]!r} is not an external_id")
    start = stop = None
    if len(fields) == 3:
        start = _parse_bound(fields[1], tz, is_stop=False, what="--external_id_time: start")
        stop = _parse_bound(fields[2], tz, is_stop=True, what="--external_id_time: stop")
        _check_range(start, stop, "external_id_time", (fields[1], fields[2]))
    return Selection(participants=[Participant(ext, start, stop)], source="external_id")


def _cell_bound(value: Any, tz: ZoneInfo, *, is_stop: bool, where: str) -> datetime | None:
    """A date cell: a spreadsheet datetime or an ISO string; midnight stop = whole day."""
    if isinstance(value, datetime):  # pandas Timestamp is a datetime subclass
        parsed = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=tz)
        if is_stop and parsed.time() == time():
            parsed = _end_of_day(parsed, tz)
        return parsed
    if isinstance(value, date):
        parsed = datetime.combine(value, time(), tzinfo=tz)
        return _end_of_day(parsed, tz) if is_stop else parsed
    label = "stop_date" if is_stop else "start_date"
    return _parse_bound(cell_text(value), tz, is_stop=is_stop, what=f"--excel_time{where}: {label}")


def _parse_excel_time(value: str, *, salt: str, tz: ZoneInfo, now: datetime) -> Selection:
    path = Path(value.strip()).expanduser()
    table = read_table(path)
    columns = {str(c).strip().lower(): c for c in table.columns}
    has_id = "external_id" in columns
    has_names = all(k in columns for k in ("name", "surname", "phone"))
    missing = [c for c in ("start_date", "stop_date") if c not in columns]
    if not has_id and not has_names:
        missing.insert(0, "external_id")
    if missing:
        found = ", ".join(str(c) for c in table.columns) or "none"
        raise SelectionError(
            f"--excel_time: {path.name} lacks column(s) {', '.join(missing)} (found: {found})",
            hint="the header row must be external_id,start_date,stop_date",
        )
    participants: list[Participant] = []
    skipped: list[SkippedRow] = []
    warnings: list[str] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(table.to_dict("records")):
        line = index + 2  # header is line 1
        where = f": {path.name} row {line}"
        cells = {k: row[c] for k, c in columns.items()}
        if all(not cell_text(v) for v in cells.values()):
            continue  # blank row, common at the end of a spreadsheet
        ext = cell_text(cells["external_id"]) if has_id else ""
        if not ext and has_names:
            name, surname, phone = (cell_text(cells[k]) for k in ("name", "surname", "phone"))
            if name and surname and phone:
                ext = hash_external_id(name, surname, phone, salt=salt)
        if not ext:
            raise SelectionError(f"--excel_time{where}: no external_id")
        start = _cell_bound(cells["start_date"], tz, is_stop=False, where=where)
        stop = _cell_bound(cells["stop_date"], tz, is_stop=True, where=where)
        typed = (cell_text(cells["start_date"]), cell_text(cells["stop_date"]))
        _check_range(start, stop, "excel_time", typed, where)
        if ext in seen:
            warnings.append(
                f"{path.name} row {line}: {ext[:12]} already listed in row {seen[ext]}; "
                "the first row is used"
            )
            continue
        seen[ext] = line
        if start is not None and start > now:
            skipped.append(SkippedRow(line, ext, start, stop, "starts in the future"))
        elif stop is not None and stop < now:
            skipped.append(SkippedRow(line, ext, start, stop, "ended in the past"))
        else:
            participants.append(Participant(ext, start, stop))
    if not participants and not skipped:
        raise SelectionError(f"--excel_time: {path} lists no participants")
    return Selection(
        participants=participants, source="excel", skipped=skipped, warnings=warnings, now=now
    )


def parse_selection(
    user_time: str | None = None,
    external_id_time: str | None = None,
    excel_time: str | None = None,
    *,
    salt: str,
    tz: ZoneInfo,
    now: datetime | None = None,
) -> Selection:
    """Parse the three flags (``None`` = flag not given) into a :class:`Selection`.

    Raises :class:`SelectionError` (one line, exit 2) for every malformed form. Reading a
    spreadsheet blocks: call through ``asyncio.to_thread`` when on the event loop.
    """
    now = now or datetime.now(tz)
    given = [
        flag
        for flag, value in (
            ("excel_time", excel_time),
            ("external_id_time", external_id_time),
            ("user_time", user_time),
        )
        if value is not None and (flag == "user_time" or not _blank(value))
    ]
    if not _blank(excel_time):
        assert excel_time is not None
        selection = _parse_excel_time(excel_time, salt=salt, tz=tz, now=now)
    elif not _blank(external_id_time):
        assert external_id_time is not None
        selection = _parse_external_id_time(external_id_time, tz=tz)
    elif user_time is not None:
        selection = _parse_user_time(user_time, salt=salt, tz=tz)
    else:
        selection = Selection(participants=None, source="all")
    selection.now = now
    if len(given) > 1:
        selection.warnings.append(
            f"--{given[0]} takes priority; ignored {', '.join('--' + g for g in given[1:])}"
        )
    log.debug("selection: %s", selection.describe())
    return selection


def _schedule_ids(rows: list[dict[str, Any]]) -> set[str]:
    ids: set[str] = set()
    for row in rows:
        schedule = row.get("schedule") if isinstance(row, dict) else None
        if isinstance(schedule, dict) and schedule.get("external_id"):
            ids.add(str(schedule["external_id"]))
    return ids


@dataclass
class Resolved:
    """Who a run covers once the server was asked: ``participants`` to fetch, ``unknown``
    ones the server has no schedule for (each a failure of the run), ``warnings`` to show."""

    participants: list[Participant]
    unknown: list[Participant] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refused: list[Participant] = field(default_factory=list)
    """Ids that may not name a file (:func:`~longterm_sync.ids.is_safe_id`): each a failure,
    nothing is fetched or written for them."""


UNKNOWN_REASON = "the server has no schedule for it (wrong salt or server?)"
"""Why a participant named by the flags is not fetched: the same words in every command."""


async def resolve_participants(selection: Selection, client: Directory) -> Resolved:
    """The participants to fetch, those the server does not know, and warnings to report.

    For "all": every account of ``/api/users/`` that has a schedule, in the server's order,
    each with the selection's range. For explicit ids: those ids, in the given order, minus
    the ones the server has no schedule for: fetching them would only write empty files that
    look like a participant who never watched anything, so they are returned as ``unknown``
    and every command reports them as failures (exit 1).
    """
    warnings = list(selection.warnings)
    if selection.participants is not None:
        safe = [p for p in selection.participants if is_safe_id(p.external_id)]
        refused = [p for p in selection.participants if not is_safe_id(p.external_id)]
        wanted = [p.external_id for p in safe]
        wanted += [p.also for p in safe if p.also]
        if not wanted:
            return Resolved([], [], warnings, refused)
        known = _schedule_ids(await client.schedules(wanted))
        chosen = [_pick_spelling(p, known, warnings) for p in safe]
        return Resolved(
            [p for p in chosen if p.external_id in known],
            [p for p in chosen if p.external_id not in known],
            warnings,
            refused,
        )
    users = await client.users()
    with_schedule = _schedule_ids(await client.schedules())
    participants: list[Participant] = []
    orphans: list[str] = []
    unsafe: list[Participant] = []
    seen: set[str] = set()
    for user in users:
        if user in seen:
            continue
        seen.add(user)
        if user in with_schedule:
            who = Participant(user, selection.start, selection.stop)
            (participants if is_safe_id(user) else unsafe).append(who)
        elif user in STAFF_ACCOUNTS:
            log.debug("account %s has no schedule (staff account, not reported)", user)
        else:
            orphans.append(user[:12] if is_safe_id(user) else shown_id(user))
    if orphans:
        warnings.append(
            f"{len(orphans)} account(s) have no schedule and are left out (orphans of a "
            f"failed upload?): {', '.join(orphans[:10])}" + (" ..." if len(orphans) > 10 else "")
        )
    log.debug("selection: %d participants with a schedule", len(participants))
    return Resolved(participants, [], warnings, unsafe)


def _pick_spelling(p: Participant, known: set[str], warnings: list[str]) -> Participant:
    """The name as written if the server knows it, else with spaces removed (the original
    scripts' spelling); the run says which one matched."""
    if p.also is None:
        return p
    if p.external_id in known:
        log.info("--user_time: the name as written matched participant %s", p.short)
        return Participant(p.external_id, p.start, p.stop)
    if p.also in known:
        fallback = Participant(p.also, p.start, p.stop)
        warnings.append(
            f"--user_time: no participant with the name as written; matched {fallback.short} "
            "with every space removed (as the original scripts hashed it)"
        )
        return fallback
    return Participant(p.external_id, p.start, p.stop)


def _fmt(value: datetime | None, tz: ZoneInfo | None) -> str:
    if value is None:
        return "-"
    local = value.astimezone(tz) if tz else value
    return local.strftime("%Y-%m-%d %H:%M")


def skipped_table(selection: Selection, tz: ZoneInfo | None = None) -> list[str]:
    """The table of skipped spreadsheet rows the CLI prints (empty when none were skipped)."""
    if not selection.skipped:
        return []
    when = _fmt(selection.now, tz) if selection.now else "now"
    n = len(selection.skipped)
    rows = [
        (str(s.row), s.external_id, _fmt(s.start, tz), _fmt(s.stop, tz), s.reason)
        for s in selection.skipped
    ]
    header = ("row", "external_id", "start_date", "stop_date", "reason")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [f"skipped {n} participant{'s' if n != 1 else ''} not active at {when}:"]
    out.append(line(header))
    out.extend(line(r) for r in rows)
    return out
