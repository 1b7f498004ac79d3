"""The user_activity table as files: CSV for programs, a colour-coded workbook for people."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..atomic import atomic_writer, write_text_atomic

FIRST_DAY_COLUMN = 3  # no, external_id, then one column per day
COLOURS = {
    "failed": ("FF7C80", "could not be fetched"),
    "face_down": ("FFC7CE", "phone face down (↓) during a viewing"),
    "off_time": ("FFEB9C", "watched longer (<) or shorter (>) than the video"),
    "unknown": ("BDD7EE", "no accelerometer data (???) or no playback times (?)"),
    "ok": ("C6EFCE", "every viewing ok"),
    "none": ("EDEDED", "no result that day (-)"),
}
"""Fill colours of the workbook, most severe first: the first kind found in a cell wins."""


def activity_csv(frame: Any, path: Path) -> int:
    """UTF-8 without BOM (R, pandas and LibreOffice read it; Excel users have --xlsx)."""
    text = frame.to_csv(index=False, lineterminator="\n")
    return write_text_atomic(path, text)


def activity_xlsx(
    frame: Any, path: Path, *, title: str, kind: Callable[[str], str], notes: str = ""
) -> int:
    """The same table, each day's cell coloured by ``kind(text)``, with a legend sheet
    (``title``, the colours, then ``notes`` line by line)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    fills = {k: PatternFill("solid", start_color=c, end_color=c) for k, (c, _) in COLOURS.items()}
    header = [str(c) for c in frame.columns]
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "activity"
    ws.append(header)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for i, values in enumerate(frame.itertuples(index=False), start=1):
        no, external_id, *cells = values
        ws.append([int(no), str(external_id), *cells])
        for j, text in enumerate(cells, start=FIRST_DAY_COLUMN):
            c = ws.cell(row=i + 1, column=j)
            c.fill = fills[kind(text)]
            c.alignment = Alignment(horizontal="center")
    ws.freeze_panes = "C2"
    ws.column_dimensions["A"].width = 5
    ws.column_dimensions["B"].width = 20
    for j in range(FIRST_DAY_COLUMN, len(header) + 1):
        ws.column_dimensions[get_column_letter(j)].width = 12
    legend = wb.create_sheet("legend")
    legend.append([title])
    legend.append([])
    for name, (_, meaning) in COLOURS.items():
        legend.append([name, meaning])
        legend.cell(row=legend.max_row, column=1).fill = fills[name]
    legend.append([])
    for line in notes.strip().splitlines():
        legend.append([line])
    with atomic_writer(path) as fh:
        wb.save(fh)
    return path.stat().st_size
