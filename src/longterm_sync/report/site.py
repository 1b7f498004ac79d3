"""Rendering the site: ``index.html`` (the overview) and ``p/<external_id>.html`` per participant.

Templates are Jinja2 files shipped in the package (``templates/``), autoescaped: an alias or
a feedback comment is text, never markup. Every link is relative and the CSS is inline, so the
folder works from disk, a USB stick or any static host; there is no script at all.
Each page is written atomically; pages of participants no longer in the study are removed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..atomic import write_text_atomic
from ..ids import id_file_name, is_safe_id
from ..pipelines.activity import UNANSWERED
from ..render.activity import COLOURS
from .attention import Alert
from .figures import FigureCache
from .heatmap import Heatmap, cell, legend
from .study import ParticipantData

INDEX = "index.html"
PAGES = "p"
PAGE_NAME = "{}.html"
KIND_TITLES = {
    "silent": "no recent viewing",
    "face_down": "face down",
    "sped_up": "sped up",
    "missing_video": "missing video",
    "new_device": "new phone",
}


@dataclass(frozen=True, kw_only=True)
class SiteInfo:
    title: str
    source: str
    built: datetime
    until: date
    alert_days: int
    question: str
    tz: ZoneInfo
    figures_note: str | None = None  # why there are no sensor figures, when there are none


@dataclass
class Written:
    pages: int = 0
    bytes: int = 0
    removed: int = 0
    used_figures: set[str] = field(default_factory=set)


def _env() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("longterm_sync.report", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["short"] = lambda ext: ext[:12]
    return env


def page_name(external_id: str) -> str:
    return id_file_name(PAGE_NAME, external_id)


def _when(value: datetime | None, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value is not None else "undated"


def _distributions(
    participants: Sequence[ParticipantData], days: Sequence[date]
) -> list[dict[str, Any]]:
    """Per question id (in the order first seen): answer -> count over the window."""
    window = set(days)
    counts: dict[str, Counter[str]] = {}
    for p in participants:
        for v in p.viewings:
            if v.day not in window:
                continue
            for qid, text in v.answers.items():
                counts.setdefault(qid, Counter())[text or UNANSWERED.strip()] += 1
    out = []
    for qid, counter in counts.items():
        total = sum(counter.values())
        rows = [
            {"answer": answer, "count": n, "percent": round(100 * n / total, 1)}
            for answer, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        out.append({"question": qid, "total": total, "rows": rows})
    return out


def _schedule_rows(p: ParticipantData, now: datetime, tz: ZoneInfo) -> list[dict[str, Any]]:
    """Each schedule entry against the viewings of its videos: watched in its window, later,
    not at all (once it has ended), or still open / upcoming."""
    rows = []
    for i, entry in enumerate(p.entries):
        due = set(entry.videos)
        # a later viewing of the video is this entry's only until another entry names it
        again = [e.start for e in p.entries[i + 1 :] if due & set(e.videos)]
        horizon = again[0] if again else None
        inside = [
            v
            for v in p.viewings
            if v.video in due and v.when and entry.start <= v.when <= entry.end
        ]
        later = [
            v
            for v in p.viewings
            if v.video in due
            and v.when
            and v.when > entry.end
            and (horizon is None or v.when < horizon)
        ]
        if inside:
            status, text = "watched", "watched " + ", ".join(_when(v.when, tz) for v in inside)
        elif entry.start > now:
            status, text = "upcoming", "upcoming"
        elif entry.end >= now:
            status, text = "open", "due now"
        elif later:
            status, text = "late", f"watched late ({_when(later[0].when, tz)})"
        else:
            status, text = "missed", "not watched"
        rows.append(
            {
                "day": entry.start.astimezone(tz).date().isoformat(),
                "videos": ", ".join(entry.videos) or "(none)",
                "status": status,
                "text": text,
            }
        )
    return rows


def _participant_context(
    p: ParticipantData, info: SiteInfo, figures: FigureCache, alerts: list[Alert]
) -> dict[str, Any]:
    tz = info.tz
    viewings = []
    for v in p.viewings:
        c = cell(v.cell.text)
        viewings.append(
            {
                "when": _when(v.when, tz),
                "video": v.video,
                "cell": c,
                "answers": v.answers,
                "device": " ".join(x for x in v.device if x) or "unknown",
                "full": f"../{figures.full_name(v.figure)}" if v.figure else None,
                "thumb": f"../{figures.thumb_name(v.figure)}" if v.figure else None,
            }
        )
    viewings.reverse()  # newest first: the morning's question is about the last days
    devices = [
        {
            "device": " ".join(x for x in s.device if x) or "unknown",
            "first": s.first_seen[:16].replace("T", " "),
            "last": s.last_seen[:16].replace("T", " "),
            "viewings": s.viewings,
        }
        for s in p.devices
    ]
    return {
        "p": p,
        "viewings": viewings,
        "comments": [
            {"when": _when(c.when, tz), "video": c.video, "text": c.text}
            for c in reversed(p.comments)
        ],
        "schedule": _schedule_rows(p, info.built, tz),
        "devices": devices,
        "missing": list(reversed(p.missing)),
        "alerts": alerts,
        "kind_titles": KIND_TITLES,
    }


def write_site(
    site: Path,
    participants: Sequence[ParticipantData],
    heat: Heatmap,
    alerts: list[Alert],
    problems: Sequence[tuple[str, str]],
    info: SiteInfo,
    figures: FigureCache,
) -> Written:
    """Blocking (run it in a thread)."""
    env = _env()
    out = Written()
    common = {"info": info, "legend": legend(), "colours": {k: c for k, (c, _) in COLOURS.items()}}
    by_id: dict[str, list[Alert]] = {}
    for alert in alerts:
        by_id.setdefault(alert.external_id, []).append(alert)
    page = env.get_template("participant.html")
    pages = site / PAGES
    names: set[str] = set()
    for p in participants:
        name = page_name(p.external_id)
        names.add(name)
        context = _participant_context(p, info, figures, by_id.get(p.external_id, []))
        out.used_figures.update(v.figure for v in p.viewings if v.figure)
        out.bytes += write_text_atomic(pages / name, page.render(**common, **context))
        out.pages += 1
    if pages.is_dir():
        for old in pages.iterdir():
            if old.is_file() and old.name not in names:
                old.unlink()
                out.removed += 1
    overview = env.get_template("index.html")
    first, last = heat.days[0], heat.days[-1]
    text = overview.render(
        **common,
        heat=heat,
        day_labels=[d.strftime("%m-%d") for d in heat.days],
        weekend=[d.weekday() >= 5 for d in heat.days],
        pages={p.external_id: f"{PAGES}/{page_name(p.external_id)}" for p in participants},
        alerts=alerts,
        kind_titles=KIND_TITLES,
        distributions=_distributions(participants, heat.days),
        problems=problems,
        participants=len(participants),
        viewings=sum(len(p.viewings) for p in participants),
        window=f"{first.isoformat()} .. {last.isoformat()}",
        week_start=(info.until - timedelta(days=6)).isoformat(),
    )
    out.bytes += write_text_atomic(site / INDEX, text)
    out.pages += 1
    return out


def safe_participants(
    participants: Sequence[ParticipantData],
) -> tuple[list[ParticipantData], list[str]]:
    """Those whose id may name a page, and the others (refused, named escaped)."""
    ok = [p for p in participants if is_safe_id(p.external_id)]
    bad = [p.external_id for p in participants if not is_safe_id(p.external_id)]
    return ok, bad
