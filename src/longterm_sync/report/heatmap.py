"""The overview's participants x days heatmap: user_activity's table, coloured as its workbook.

Nothing here decides what a cell says or which colour it gets: the text of a cell is
:func:`~longterm_sync.pipelines.activity.row_cells` of the participant's viewings and its
state is :func:`~longterm_sync.pipelines.activity.cell_kind` of that text, coloured from
:data:`~longterm_sync.pipelines.activity.COLOURS`, exactly what ``user_activity --xlsx``
writes for the same results. A test compares the two cell by cell.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from ..pipelines.activity import JOIN, NO_RESULT, cell_kind, report_days, row_cells
from ..render.activity import COLOURS
from .study import ParticipantData

STATES = list(COLOURS)
"""The legend's states, most severe first (the first kind found in a cell wins)."""


@dataclass(frozen=True)
class Cell:
    text: str  # user_activity's cell text
    kind: str  # its legend state
    colour: str  # hex RGB without '#'

    @property
    def short(self) -> str:
        """What fits in the square: the answers only (the full text is the tooltip)."""
        if self.text == NO_RESULT:
            return ""
        parts = [p.rsplit(" ", 1)[-1] if " " in p else "" for p in self.text.split(JOIN)]
        return "/".join(p for p in parts if p)[:8]


@dataclass
class HeatRow:
    external_id: str
    alias: str | None
    cells: list[Cell]


@dataclass
class Heatmap:
    days: list[date]
    rows: list[HeatRow] = field(default_factory=list)
    viewings_per_day: list[int] = field(default_factory=list)
    answers_per_day: list[int] = field(default_factory=list)
    state_totals: Counter[str] = field(default_factory=Counter)


def cell(text: str) -> Cell:
    kind = cell_kind(text)
    return Cell(text, kind, COLOURS[kind][0])


def legend() -> list[tuple[str, str, str]]:
    """(state, colour, meaning) in the workbook's legend order."""
    return [(kind, colour, meaning) for kind, (colour, meaning) in COLOURS.items()]


def build_heatmap(participants: Sequence[ParticipantData], until: date, days: int) -> Heatmap:
    window = report_days(until, days)
    heat = Heatmap(days=window)
    index = {d: i for i, d in enumerate(window)}
    views = [0] * len(window)
    answers = [0] * len(window)
    for p in participants:
        cells = [cell(text) for text in row_cells((v.cell for v in p.viewings), window)]
        heat.rows.append(HeatRow(p.external_id, p.alias, cells))
        heat.state_totals.update(c.kind for c in cells)
        for v in p.viewings:
            i = index.get(v.day) if v.day is not None else None
            if i is not None:
                views[i] += 1
                answers[i] += v.answered
    heat.viewings_per_day = views
    heat.answers_per_day = answers
    return heat
