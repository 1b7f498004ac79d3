"""Device changes: the spans of viewings each participant made on one phone.

A span is a run of consecutive viewings (in date order) with the same brand, model and OS
version; a new span starts at every change, so a participant who switches back to an old
phone gets a third span, as it happened. An OS update counts as a change: it is one of the
things an analysis wants to see (it changes the player).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

CSV_NAME = "device_report.csv"
XLSX_NAME = "device_report.xlsx"
COLUMNS = [
    "external_id",
    "device_no",
    "device_brand",
    "device_model",
    "os_version",
    "first_seen",
    "last_seen",
    "viewings",
]


@dataclass
class Span:
    external_id: str
    device: tuple[str, str, str]
    first_seen: str
    last_seen: str
    viewings: int = 1


def device_key(row: dict[str, Any]) -> tuple[str, str, str]:
    return (
        row.get("device_brand") or "",
        row.get("device_model") or "",
        row.get("os_version") or "",
    )


def device_spans(rows: Iterable[dict[str, Any]]) -> list[Span]:
    """Rows of the results table (any order) -> spans per participant, in date order."""
    ordered = sorted(
        (r for r in rows if r.get("date")), key=lambda r: (r["external_id"], r["date"])
    )
    spans: list[Span] = []
    for row in ordered:
        key = device_key(row)
        last = spans[-1] if spans else None
        if last is not None and last.external_id == row["external_id"] and last.device == key:
            last.last_seen = row["date"]
            last.viewings += 1
        else:
            spans.append(Span(row["external_id"], key, row["date"], row["date"]))
    return spans


def spans_frame(spans: list[Span]) -> Any:
    import pandas as pd

    records = []
    number = 0
    previous = None
    for span in spans:
        number = number + 1 if span.external_id == previous else 1
        previous = span.external_id
        records.append(
            [span.external_id, number, *span.device, span.first_seen, span.last_seen, span.viewings]
        )
    return pd.DataFrame(records, columns=COLUMNS)


def summary_lines(spans: list[Span]) -> list[str]:
    """A short table: one line per participant, changes first noticed."""
    by_id: dict[str, list[Span]] = {}
    for span in spans:
        by_id.setdefault(span.external_id, []).append(span)
    lines = [f"{'participant':<14} {'devices':>7} {'changes':>7}  last device"]
    for ext, own in by_id.items():
        last = own[-1]
        device = " ".join(part for part in last.device if part) or "(unknown)"
        changes = len(own) - 1
        mark = f"  changed {own[-1].first_seen[:10]}" if changes else ""
        lines.append(
            f"{ext[:12]:<14} {len({s.device for s in own}):>7} {changes:>7}  {device}{mark}"
        )
    return lines
