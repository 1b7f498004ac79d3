"""The results table: one row per viewing, the columns an analysis starts from.

Rows are reduced from one item at a time (the sensor arrays are dropped as soon as the face
down flag is known), so the table of a 200 MB results file is a few MB of pandas frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..atomic import atomic_writer, write_text_atomic
from ..errors import UsageError
from .source import item_date
from .stats import (
    accel_stats,
    answer_value,
    duration_seconds,
    form_content,
    local_iso,
    watched_seconds,
)

CSV_NAME = "results_table.csv"
XLSX_NAME = "results_table.xlsx"
PARQUET_NAME = "results_table.parquet"

HEAD = [
    "external_id",
    "date",
    "video",
    "service",
    "video_duration_s",
    "watched_s",
    "playback_delta_s",
    "speed_state",
    "face_down",
]
TAIL = ["reply_started", "reply_ended", "device_brand", "device_model", "os_version"]

COLUMN_HELP = """\
  external_id       the participant
  date              when the viewing ended (the phone's date), ISO 8601 in the profile's timezone
  video, service    the video's path below media/videos and its service letter
  video_duration_s  the video's length in seconds (video_duration / 1000)
  watched_s         playback_ended - playback_started in seconds (the span of the playback
                    samples when either is missing): pauses lengthen it, seeking shortens it
  playback_delta_s  watched_s - video_duration_s
  speed_state       ok (|delta| <= --sec_margin), longer, shorter, or unknown (no times or
                    no duration)
  face_down         True when the median accelerometer z after the first max(10 %, 3 s) of
                    samples is below -0.8; empty when there is no accelerometer data
  answer_<id>       the answer to the question with that optional_id, one column per id seen
                    (in the order first seen); empty when unanswered or not asked
  reply_started, reply_ended   the reply form's start and end (as the phone wrote them)
  device_brand, device_model, os_version   from device_info"""


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def viewing_row(item: Any, tz: ZoneInfo, margin: float) -> dict[str, Any] | None:
    """One list item -> its row; None for an item that is not a result (a poison row)."""
    if not isinstance(item, dict) or not isinstance(item.get("result"), dict):
        return None
    result: dict[str, Any] = item["result"]
    when = item_date(item, tz)
    duration = duration_seconds(result)
    watched = watched_seconds(result)
    delta = None if duration is None or watched is None else watched - duration
    if delta is None:
        speed = "unknown"
    elif abs(delta) <= margin:
        speed = "ok"
    else:
        speed = "longer" if delta > 0 else "shorter"
    stats = accel_stats(result.get("accelerometer_data"))
    form = result.get("reply_form")
    device = result.get("device_info")
    device = device if isinstance(device, dict) else {}
    row: dict[str, Any] = {
        "external_id": str(item.get("external_id") or ""),
        "date": local_iso(when) if when is not None else _str(item.get("date")),
        "video": _str(result.get("video")),
        "service": _str(result.get("service")),
        "video_duration_s": duration,
        "watched_s": None if watched is None else round(watched, 3),
        "playback_delta_s": None if delta is None else round(delta, 3),
        "speed_state": speed,
        "face_down": None if stats is None else stats.face_down,
    }
    for question in form_content(result):
        if isinstance(question, dict) and isinstance(question.get("optional_id"), str):
            row["answer_" + question["optional_id"]] = answer_value(question.get("answer"))
    row["reply_started"] = _str(form.get("started")) if isinstance(form, dict) else None
    row["reply_ended"] = _str(form.get("ended")) if isinstance(form, dict) else None
    row["device_brand"] = _str(device.get("brand"))
    row["device_model"] = _str(device.get("model"))
    row["os_version"] = _str(device.get("os_version"))
    return row


@dataclass
class ResultsTable:
    """Rows as dicts plus the answer columns in the order first seen."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)

    def add(self, row: dict[str, Any]) -> None:
        for key in row:
            if key.startswith("answer_") and key not in self.answers:
                self.answers.append(key)
        self.rows.append(row)

    def extend(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.add(row)

    @property
    def columns(self) -> list[str]:
        return [*HEAD, *self.answers, *TAIL]

    def frame(self) -> Any:
        """A pandas frame sorted by participant and date (a participant's results arrive out
        of date order when the phone was offline)."""
        import pandas as pd

        frame = pd.DataFrame.from_records(self.rows, columns=self.columns)
        if len(frame):
            frame = frame.sort_values(["external_id", "date"], kind="stable", na_position="last")
            frame = frame.reset_index(drop=True)
        frame["face_down"] = frame["face_down"].astype("boolean")
        for col in self.answers:
            frame[col] = _tidy(frame[col])
        return frame


def _tidy(column: Any) -> Any:
    """Answers of one question as one dtype where they agree (a yes/no question stays
    boolean, a MOS scale stays integer), so CSV readers see 4 and True, not 4.0 and 1.0."""
    values = [v for v in column if v is not None and v == v]
    if values and all(isinstance(v, bool) for v in values):
        return column.astype("boolean")
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return column.astype("Int64")
    return column


def write_csv(frame: Any, path: Path) -> int:
    return write_text_atomic(path, frame.to_csv(index=False, lineterminator="\n"))


def write_xlsx(frame: Any, path: Path, *, sheet: str, notes: str = "") -> int:
    """A formatted workbook: bold frozen header, autofilter, widths, a notes sheet."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.title = sheet
    columns = list(frame.columns)
    ws.append(columns)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for record in frame.itertuples(index=False, name=None):
        ws.append([_cell(v) for v in record])
    ws.freeze_panes = "B2"
    if columns:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{max(1, ws.max_row)}"
    for j, name in enumerate(columns, start=1):
        width = 22 if name == "external_id" else max(10, min(40, len(name) + 2))
        ws.column_dimensions[get_column_letter(j)].width = width
    if notes:
        legend = book.create_sheet("columns")
        for line in notes.splitlines():
            legend.append([line])
    with atomic_writer(path) as fh:
        book.save(fh)
    return path.stat().st_size


def _cell(value: Any) -> Any:
    if value is None:
        return None
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def write_parquet(frame: Any, path: Path) -> int:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise UsageError(
            "--parquet needs pyarrow", hint="pip install 'longterm-sync[parquet]'"
        ) from None
    with atomic_writer(path) as fh:
        frame.astype({c: "string" for c in frame.columns if frame[c].dtype == object}).to_parquet(
            fh, index=False
        )
    return path.stat().st_size
