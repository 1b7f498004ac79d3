"""A full backup of one server: every job that reads the platform, into one folder.

Until the nightly backup job gets its own command, this is the "most complete job": ``longterm
demo`` runs it against the sandbox. The layout is one sub-folder per job so each keeps the file
names its own script documents::

    schedules/  schedule_{external_id}.json          (download-schedule --mode json)
    videos/     the media folder, md5-verified        (download-schedule --mode video)
    results/    results_*.json, results_feedback_*.json (download-results)
    reports/    user_feedback.csv, user_activity.csv/.xlsx

The media mirror runs beside the REST jobs (different sockets, different server processes);
the REST jobs run one after the other so ``rest_concurrency`` stays the bound it promises.
A job that fails as a whole (a rejected token, an unknown host key) is recorded as that job's
failure and the others still run: a backup that stops at the first problem saves less.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from ..config import Limits, ServerProfile
from ..errors import LongtermError
from ..select import Selection
from ..summary import Summary
from .activity import ActivityOptions, run_activity
from .fanout import check_output_dir
from .feedback import FeedbackOptions, run_feedback
from .results import ResultsOptions, run_download_results
from .schedules import ScheduleOptions, run_download_schedule

JOBS = ("schedules", "results", "feedback", "activity", "videos")


@dataclass(frozen=True, kw_only=True)
class BackupOptions:
    output_dir: Path
    selection: Selection = field(default_factory=lambda: Selection(participants=None))
    jobs: tuple[str, ...] = JOBS
    report_days: int = 30
    until: date | None = None  # last day of the activity report; None = today
    delete: bool = False  # mirror deletions of videos gone from the server
    accept_new_host_key: bool = False


async def _guarded(name: str, job: Callable[[], Awaitable[Summary]]) -> Summary:
    """Run one job; a job-wide error becomes that job's one failure instead of ending the run."""
    started = time.monotonic()
    try:
        return await job()
    except LongtermError as exc:
        summary = Summary(command=name, elapsed_s=time.monotonic() - started)
        summary.fail(name, str(exc))
        return summary


async def run_backup(profile: ServerProfile, limits: Limits, options: BackupOptions) -> Summary:
    """Run the selected jobs; their summaries become ``parts`` of the backup's summary."""
    unknown = set(options.jobs) - set(JOBS)
    if unknown:
        raise ValueError(f"unknown backup jobs: {sorted(unknown)}")
    started = time.monotonic()
    out = options.output_dir
    sel = options.selection
    reports = out / "reports"
    rest: dict[str, Callable[[], Awaitable[Summary]]] = {
        "schedules": lambda: run_download_schedule(
            profile, limits, ScheduleOptions(output_dir=out / "schedules", selection=sel)
        ),
        "results": lambda: run_download_results(
            profile, limits, ResultsOptions(output_dir=out / "results", selection=sel)
        ),
        "feedback": lambda: run_feedback(
            profile, limits, FeedbackOptions(output_dir=reports, selection=sel)
        ),
        "activity": lambda: run_activity(
            profile,
            limits,
            ActivityOptions(
                output_dir=reports,
                selection=sel,
                report_days=options.report_days,
                until=options.until,
                xlsx=True,
            ),
        ),
    }

    async def mirror() -> Summary:
        from ..media import mirror_down

        return await mirror_down(
            profile,
            limits,
            out / "videos",
            delete=options.delete,
            accept_new_host_key=options.accept_new_host_key,
        )

    async def rest_jobs() -> list[Summary]:
        done = []
        for name, job in rest.items():
            if name in options.jobs:
                done.append(await _guarded(name, job))
        return done

    await asyncio.to_thread(check_output_dir, out)  # one clear error, not one per job
    async with asyncio.TaskGroup() as tg:
        rest_task = tg.create_task(rest_jobs())
        video_task = (
            tg.create_task(_guarded("videos", mirror)) if "videos" in options.jobs else None
        )
    summary = Summary(command="backup")
    summary.parts.extend(rest_task.result())
    if video_task is not None:
        summary.parts.append(video_task.result())
    seen: set[str] = set()
    for part in summary.parts:  # every REST job resolves "all" and warns of the same orphans
        part.warnings = [w for w in dict.fromkeys(part.warnings) if w not in seen]
        seen.update(part.warnings)
    summary.count("jobs", len(summary.parts))
    summary.count("failed jobs", sum(not part.ok for part in summary.parts))
    summary.count("files", sum(len(part.files) for part in summary.parts))
    summary.bytes = sum(part.bytes for part in summary.parts)
    summary.details["output_dir"] = str(out)
    summary.elapsed_s = time.monotonic() - started
    return summary
