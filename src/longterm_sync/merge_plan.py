"""The server's schedule merge rule, computed on the client before anything is sent.

The platform merges an uploaded schedule into the stored one silently: entries too close to
today are dropped without a word, and a start written with an offset does not replace the
same moment written without one. Experimenters only find out when a phone shows the wrong
video. So the client computes, from the same rule (docs/PROTOCOL.md, "Schedule upload and the merge
rule"), what the server will do with every uploaded entry and prints it first; after the
upload the prediction is compared with what the server answered.

The rule, for an existing participant: only uploaded entries whose start *date* (as written,
in the string's own offset) is on or after today + 2 (server date, Warsaw) are used; each
replaces the stored entry with the identical ``start`` string in place or is appended; the
rest are dropped; no stored entry is ever deleted; language and comments never change. A new
participant's object is stored whole, past entries included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

LEAD_DAYS = 2
"""Uploaded entries must start at least this many days after the server's today."""
KEPT_AS_FIRST_UPLOADED = ("language", "comments")
"""Fields of an existing participant the server never changes: a new value is ignored."""
COLLAPSE_RUN = 4
"""Printed plans fold this many or more consecutive no-change entries into one line."""


class Action(StrEnum):
    NEW = "new participant"
    APPEND = "append"
    OVERWRITE = "overwrite"
    UNCHANGED = "unchanged"
    IGNORED_PAST = "ignored: in the past"
    IGNORED_SOON = "ignored: sooner than today+2"

    @property
    def changes(self) -> bool:
        return self in (Action.NEW, Action.APPEND, Action.OVERWRITE)


@dataclass(frozen=True)
class EntryPlan:
    """What the server will do with one uploaded entry."""

    index: int  # position in the uploaded list
    start: str
    action: Action
    note: str = ""


@dataclass(frozen=True)
class MergePlan:
    external_id: str
    new_participant: bool
    today: date
    entries: tuple[EntryPlan, ...]
    result: list[dict[str, Any]]  # the entry list the server should hold afterwards
    stored_count: int = 0  # entries stored before the upload
    warnings: tuple[str, ...] = field(default=())

    @property
    def earliest(self) -> date:
        return self.today + timedelta(days=LEAD_DAYS)

    @property
    def changes(self) -> int:
        return sum(1 for e in self.entries if e.action.changes)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for entry in self.entries:
            out[entry.action.value] = out.get(entry.action.value, 0) + 1
        return out

    def lines(self, source: str = "", *, collapse: bool = False) -> list[str]:
        """The plan as printed: a header, one line per uploaded entry, a total.

        ``collapse`` folds runs of COLLAPSE_RUN or more consecutive entries that change
        nothing (ignored, unchanged) into one line, so that a two-year schedule re-uploaded
        for one new week shows that week, not 700 lines of "ignored: in the past".
        """
        origin = f" ({source})" if source else ""
        if self.new_participant:
            head = f"participant {self.external_id}{origin}: new, whole schedule stored"
        else:
            head = (
                f"participant {self.external_id}{origin}: {self.stored_count} entries stored; "
                f"today {self.today.isoformat()}, entries from {self.earliest.isoformat()} are used"
            )
        width = max((len(e.start) for e in self.entries), default=0)
        out = [head]
        for run in _runs(self.entries, COLLAPSE_RUN if collapse else 0):
            first = run[0]
            if len(run) > 1:
                span = f"{first.start} .. {run[-1].start}"
                out.append(f"  {span}  {first.action.value} ({len(run)} entries)")
                continue
            note = f"  ({first.note})" if first.note else ""
            out.append(f"  {first.start:<{width}}  {first.action.value}{note}")
        summary = ", ".join(f"{n} {action}" for action, n in self.counts().items())
        out.append(f"  = {summary}; {len(self.result)} entries after the upload")
        out.extend(f"  warning: {w}" for w in self.warnings)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "external_id": self.external_id,
            "new_participant": self.new_participant,
            "today": self.today.isoformat(),
            "entries": [
                {"index": e.index, "start": e.start, "action": e.action.value, "note": e.note}
                for e in self.entries
            ],
            "stored_before": self.stored_count,
            "stored_after": len(self.result),
            "warnings": list(self.warnings),
        }


def _runs(entries: Sequence[EntryPlan], threshold: int) -> list[list[EntryPlan]]:
    """Consecutive no-change entries with the same action, grouped when at least ``threshold``."""
    runs: list[list[EntryPlan]] = []
    for entry in entries:
        if (
            threshold
            and runs
            and not entry.action.changes
            and not entry.note
            and runs[-1][-1].action is entry.action
            and not runs[-1][-1].note
        ):
            runs[-1].append(entry)
        else:
            runs.append([entry])
    out: list[list[EntryPlan]] = []
    for run in runs:
        out.extend([run] if len(run) >= max(threshold, 2) else [[e] for e in run])
    return out


def start_date(start: str) -> date:
    """The date as written in ``start`` (its own offset), which is what the server compares."""
    return datetime.fromisoformat(start).date()


def plan_merge(
    stored: Mapping[str, Any] | None,
    upload: Mapping[str, Any],
    today: date,
) -> MergePlan:
    """Predict the server's merge of ``upload`` into ``stored``.

    ``stored`` is the participant's stored schedule object, or None when the server has no
    account named ``upload["external_id"]`` (a new participant). ``upload`` must already be
    validated (every entry has a string ``start`` with a time part).
    """
    entries: Sequence[dict[str, Any]] = upload["schedule"]
    external_id = str(upload.get("external_id", ""))
    if stored is None:
        return MergePlan(
            external_id=external_id,
            new_participant=True,
            today=today,
            entries=tuple(
                EntryPlan(i, e["start"], Action.NEW, _past_note(e["start"], today))
                for i, e in enumerate(entries)
            ),
            result=[dict(e) for e in entries],
        )

    current = stored.get("schedule")
    result: list[dict[str, Any]] = [dict(e) for e in current] if isinstance(current, list) else []
    stored_count = len(result)
    by_start: dict[str, int] = {}
    for stored_at, stored_entry in enumerate(result):
        stored_start = stored_entry.get("start") if isinstance(stored_entry, dict) else None
        if isinstance(stored_start, str):
            by_start.setdefault(stored_start, stored_at)
    earliest = today + timedelta(days=LEAD_DAYS)
    warnings: list[str] = []
    for key in KEPT_AS_FIRST_UPLOADED:
        if key in upload and upload[key] != stored.get(key):
            warnings.append(
                f"{key} {_short(upload[key])} differs from the stored {_short(stored.get(key))}: "
                f"the server keeps the stored {key} (only entries merge)"
            )
    if stored.get("external_id") != external_id:
        warnings.append(
            "the stored schedule has no matching external_id: the participant stays "
            "invisible to external_id filters"
        )
    plans: list[EntryPlan] = []
    for index, entry in enumerate(entries):
        start = entry["start"]
        day = start_date(start)
        if day < today:
            plans.append(EntryPlan(index, start, Action.IGNORED_PAST))
            continue
        if day < earliest:
            plans.append(EntryPlan(index, start, Action.IGNORED_SOON))
            continue
        position = by_start.get(start)
        if position is None:
            note = _same_day_note(start, result)
            result.append(dict(entry))
            by_start[start] = len(result) - 1
            plans.append(EntryPlan(index, start, Action.APPEND, note))
        elif result[position] == entry:
            plans.append(EntryPlan(index, start, Action.UNCHANGED))
        else:
            result[position] = dict(entry)
            plans.append(EntryPlan(index, start, Action.OVERWRITE))
    return MergePlan(
        external_id=external_id,
        new_participant=False,
        today=today,
        entries=tuple(plans),
        result=result,
        stored_count=stored_count,
        warnings=tuple(warnings),
    )


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _past_note(start: str, today: date) -> str:
    return "in the past, stored anyway" if start_date(start) < today else ""


def _same_day_note(start: str, stored: Sequence[Mapping[str, Any]]) -> str:
    """An append on a day that already has an entry under another spelling of its start."""
    day = start_date(start)
    for entry in stored:
        other = entry.get("start")
        if not isinstance(other, str) or other == start:
            continue
        try:
            other_day = start_date(other)
        except ValueError:
            continue
        if other_day == day:
            return f"day {day} already has an entry starting {other!r}: it keeps both"
    return ""


def results_match(plan: MergePlan, stored_entries: Any) -> bool:
    """Whether the server's answer (its stored entry list) is what the plan predicted."""
    return isinstance(stored_entries, list) and _normalise(stored_entries) == _normalise(
        plan.result
    )


def _normalise(entries: list[Any]) -> list[Any]:
    # The server answers with the JSON it stored; int vs float or key order must not matter.
    return [dict(e) if isinstance(e, Mapping) else e for e in entries]
