"""Who gets a schedule: rows of a participants spreadsheet, or the files of an earlier run.

Phones are read as text (a spreadsheet would drop a leading zero and the participant's
external_id, a hash of name+surname+phone, would no longer match the phone's).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputFileError
from ..schedule_file import find_schedule_files
from ..spreadsheet import cell_text, read_table

REQUIRED = ("name", "surname", "phone")
OPTIONAL = ("external_id", "language")


@dataclass
class Participant:
    """One schedule to write; ``existing`` is the document of an earlier run, if any."""

    name: str
    surname: str
    phone: str
    external_id: str = ""
    language: str = ""
    existing: dict[str, Any] | None = field(default=None, repr=False)
    source: str = ""  # "row 3" or the file it came from, for one-line errors

    def __repr__(self) -> str:  # personal data stays out of logs and tracebacks
        return f"Participant({self.source})"

    def file_name(self) -> str:
        """``schedule_<external_id>.json``, else ``schedule_<name>_<surname>.json``."""
        stem = self.external_id or f"{self.name}_{self.surname}"
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).strip("._")
        return f"schedule_{safe or 'participant'}.json"


def read_participants(path: Path) -> list[Participant]:
    """Blocking (pandas): call from a thread."""
    table = read_table(path, label="participants file", error=InputFileError)
    columns = {str(c).strip().lower(): c for c in table.columns}
    missing = [c for c in REQUIRED if c not in columns]
    if missing and "external_id" not in columns:
        raise InputFileError(
            f"{path.name}: missing column(s) {', '.join(missing)}",
            hint="the first row must name the columns name,surname,phone "
            "(optional external_id, language)",
        )
    people: list[Participant] = []
    for number, (_, row) in enumerate(table.iterrows(), start=2):
        values = {
            key: cell_text(row[columns[key]]) if key in columns else ""
            for key in (*REQUIRED, *OPTIONAL)
        }
        if not any(values.values()):
            continue
        complete = all(values[k] for k in REQUIRED)
        if not complete and not values["external_id"]:
            gaps = [k for k in REQUIRED if not values[k]]
            raise InputFileError(
                f"{path.name}: row {number}: empty {', '.join(gaps)} and no external_id"
            )
        people.append(_participant(values, None, f"{path.name} row {number}"))
    if not people:
        raise InputFileError(f"{path.name}: no participants (only a header, or empty)")
    return people


def read_existing(folder: Path) -> list[Participant]:
    """The schedule files of an earlier run, to extend; each keeps its whole document."""
    people: list[Participant] = []
    for path in find_schedule_files(folder):
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputFileError(f"{path.name}: cannot be read as JSON ({exc})") from None
        if not isinstance(data, dict):
            raise InputFileError(f"{path.name}: top level must be an object")
        values = {k: str(data.get(k) or "") for k in (*REQUIRED, *OPTIONAL)}
        people.append(_participant(values, data, path.name))
    if not people:
        raise InputFileError(f"{folder}: no schedule files (*.json) to extend")
    return people


def _participant(
    values: dict[str, str], existing: dict[str, Any] | None, source: str
) -> Participant:
    return Participant(
        name=values["name"],
        surname=values["surname"],
        phone=values["phone"],
        external_id=values["external_id"],
        language=values["language"],
        existing=existing,
        source=source,
    )
