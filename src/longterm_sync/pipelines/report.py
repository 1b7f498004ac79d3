"""``longterm report``: the static HTML site of a study (see :mod:`longterm_sync.report`).

The source is a folder of downloaded files (a backup's ``text_files/latest/`` or what
download-results and download-schedule wrote), or the server: then results, feedback,
schedules and missing-video reports are first downloaded by the same pipelines as
download-results and download-schedule into a temporary folder inside the site's folder,
which is removed afterwards. Reading, reducing and rendering are blocking work and run in a
thread; figures are drawn in worker processes (``[limits] plot_processes``).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time as clock
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ..api import PlatformClient
from ..atomic import write_bytes_atomic
from ..config import Limits, ServerProfile
from ..errors import ProtocolError
from ..events import Job
from ..ids import shown_id
from ..jsonstream import dump_array
from ..report.attention import needs_attention
from ..report.figures import FigureCache, default_drawer
from ..report.heatmap import build_heatmap
from ..report.site import INDEX, SiteInfo, safe_participants, write_site
from ..report.study import (
    ROW_CACHE,
    CacheEntry,
    ReadOptions,
    Study,
    load_row_cache,
    read_aliases,
    read_study,
    save_row_cache,
)
from ..select import Selection
from ..summary import Summary
from .fanout import check_output_dir, per_participant, resolve_into
from .results import ResultsOptions, run_download_results
from .schedules import ScheduleOptions, run_download_schedule

log = logging.getLogger("longterm_sync.report")

MISSING_VIDEOS = "missing_videos.json"
STAGING_PREFIX = ".source-"


@dataclass(frozen=True, kw_only=True)
class ReportOptions:
    site: Path
    selection: Selection
    source_dir: Path | None = None  # None: download from the server first
    days: int = 30
    until: date | None = None  # last day of the heatmap; None = today in the profile's zone
    alert_days: int = 3
    sec_margin: float = 3.0
    question: str = "q2"
    aliases: Path | None = None
    title: str = "Long Term Study"
    figures: bool = True
    now: datetime | None = None  # pinned in tests


async def run_report(profile: ServerProfile, limits: Limits, options: ReportOptions) -> Summary:
    """Build (or rebuild) the site in ``options.site``; returns its summary."""
    began = clock.monotonic()
    summary = Summary(command="report")
    await asyncio.to_thread(check_output_dir, options.site)
    aliases = await asyncio.to_thread(read_aliases, options.aliases) if options.aliases else {}
    if options.source_dir is not None:
        await _build(profile, limits, options, options.source_dir, aliases, summary)
    else:
        await asyncio.to_thread(_remove_stale_staging, options.site)
        staging = Path(
            await asyncio.to_thread(tempfile.mkdtemp, prefix=STAGING_PREFIX, dir=options.site)
        )
        try:
            await _download(profile, limits, options.selection, staging, summary)
            await _build(profile, limits, options, staging, aliases, summary)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)
    summary.elapsed_s = clock.monotonic() - began
    return summary


def _remove_stale_staging(site: Path) -> None:
    """Download folders a killed run left (the caller holds the site's lock)."""
    for old in site.glob(f"{STAGING_PREFIX}*"):
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


async def _download(
    profile: ServerProfile, limits: Limits, selection: Selection, folder: Path, summary: Summary
) -> None:
    results = await run_download_results(
        profile, limits, ResultsOptions(output_dir=folder, selection=selection)
    )
    schedules = await run_download_schedule(
        profile, limits, ScheduleOptions(output_dir=folder, selection=selection)
    )
    for part in (results, schedules):
        summary.bytes += part.bytes
        summary.failures.extend(part.failures)
        summary.warnings.extend(w for w in part.warnings if w not in summary.warnings)
    reports = await _missing_reports(profile, limits, selection, summary)
    await asyncio.to_thread(write_bytes_atomic, folder / MISSING_VIDEOS, dump_array(reports))


async def _missing_reports(
    profile: ServerProfile, limits: Limits, selection: Selection, summary: Summary
) -> list[Any]:
    async with PlatformClient(profile, limits) as client:
        scratch = Summary(command="report")  # who is selected was reported by the downloads
        participants = await resolve_into(selection, client, Job("report", summary=scratch))

        async def fetch(p: Any) -> list[Any]:
            return await client.missing_videos(p.external_id)

        got = await per_participant(participants, limits, fetch, Job("report", summary=summary))
        summary.bytes += client.bytes_received
    out: list[Any] = []
    for rows in got:
        if rows is not None and not isinstance(rows, list):
            raise ProtocolError("/api/missing-videos/ did not answer a list")
        out.extend(rows or [])
    return out


async def _build(
    profile: ServerProfile,
    limits: Limits,
    options: ReportOptions,
    folder: Path,
    aliases: dict[str, str],
    summary: Summary,
) -> None:
    tz = profile.tz
    now = options.now or datetime.now(tz)
    until = options.until or now.date()
    drawer = default_drawer(tz) if options.figures else None
    figures = FigureCache(options.site, drawer, workers=limits.plot_processes)
    read = ReadOptions(
        tz=tz,
        selection=options.selection,
        sec_margin=options.sec_margin,
        question=options.question,
        figure_key=figures.key if figures.enabled else None,
        cached=figures.cached if figures.enabled else None,
        on_new_figure=figures.submit if figures.enabled else None,
    )
    cache_path = options.site / ROW_CACHE
    old_rows = await asyncio.to_thread(load_row_cache, cache_path, read)
    rows: dict[bytes, CacheEntry] = {}
    try:
        study: Study = await asyncio.to_thread(read_study, folder, read, old_rows, rows)
        drawn, figure_problems = await asyncio.to_thread(figures.finish)
    finally:
        await asyncio.to_thread(figures.close)
    reused_rows = sum(1 for digest in rows if digest in old_rows)
    del old_rows
    await asyncio.to_thread(save_row_cache, cache_path, read, rows)
    del rows
    for item, reason in study.problems:
        summary.fail(item, reason)
    for problem in figure_problems[:5]:
        summary.fail("figure", problem)
    participants, refused = safe_participants(list(study.participants.values()))
    for ext in refused:
        summary.fail(f"participant {shown_id(ext)}", "refused: not a valid external_id")
    for p in participants:
        p.alias = aliases.get(p.external_id)
    participants.sort(key=lambda p: (p.alias is None, p.alias or "", p.external_id))
    heat = build_heatmap(participants, until, options.days)
    alerts = needs_attention(participants, until, options.alert_days, tz)
    note = None
    if not options.figures:
        note = "Sensor figures were not drawn (--no-figures)."
    elif drawer is None:
        note = "Sensor figures are not part of this build (no plotting module installed)."
    info = SiteInfo(
        title=options.title,
        source=str(folder) if options.source_dir is not None else f"server {profile.name}",
        built=now,
        until=until,
        alert_days=options.alert_days,
        question=options.question,
        tz=tz,
        figures_note=note,
    )
    written = await asyncio.to_thread(
        write_site,
        options.site,
        participants,
        heat,
        alerts,
        [(f.item, f.reason) for f in summary.failures],
        info,
        figures,
    )
    pruned = await asyncio.to_thread(figures.prune, written.used_figures)
    summary.count("participants", len(participants))
    summary.count("viewings", sum(len(p.viewings) for p in participants))
    summary.count("pages", written.pages)
    summary.count("results from the row cache", reused_rows)
    if figures.enabled:
        summary.count("figures drawn", drawn)
        summary.count("figures reused", figures.reused)
        if figures.skipped:
            summary.count("viewings without sensor data", figures.skipped)
    if pruned:
        summary.count("figures removed", pruned)
    summary.count("needing attention", len({a.external_id for a in alerts}))
    if study.not_results:
        summary.warnings.append(f"{study.not_results} item(s) are not results: left out")
    summary.details["site"] = str(options.site)
    summary.details["index"] = str(options.site / INDEX)
    summary.details["days"] = [heat.days[0].isoformat(), heat.days[-1].isoformat()]
    summary.details["alerts"] = [
        {"external_id": a.external_id, "kind": a.kind, "text": a.text} for a in alerts
    ]
    summary.files.append(str(options.site / INDEX))
