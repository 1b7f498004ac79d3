"""upload-schedule: validate every schedule, plan every merge, then send videos and schedules.

Order matters and is the point of this module:

1. *Read only.* Parse and validate every schedule file; list the local videos; check every
   referenced video exists locally or on the server; fetch the stored schedules; compute and
   report the merge plan of every participant. An invalid file is dropped here, before any
   request that could create an account for it (no orphans).
2. *Confirm.* ``dry_run`` stops here; a production server asks the caller's ``confirm``.
3. *Write.* Local ``<video>.md5sum`` sidecars, then the videos (the media engine's ``push_up``
   skips those whose remote sidecar already matches), then the schedules, each only when every
   video it names is on the server. The server's answer is compared with the plan.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ..api import PlatformClient
from ..config import Limits, ServerProfile
from ..errors import UsageError
from ..events import Job, Reporter
from ..media.local import walk_local_async
from ..media.sync import list_remote_videos, push_up
from ..merge_plan import MergePlan, plan_merge, results_match
from ..schedule_file import (
    ID_MISMATCH,
    ScheduleFile,
    ScheduleFileError,
    find_schedule_files,
    load_schedule_file,
)
from ..summary import Summary
from ..timeutil import today_in
from ..workers import run_items

log = logging.getLogger("longterm_sync.upload")


@dataclass(frozen=True)
class UploadOptions:
    video_path: Path
    jsons_path: Path
    dry_run: bool = False
    verify: str = "md5"
    accept_new_host_key: bool = False
    today: date | None = None  # the server's date; None = today in the profile's zone


Confirm = Callable[[str], bool]
"""Asked (in a worker thread) before anything is written to a production server."""


@dataclass
class _Planned:
    schedule: ScheduleFile
    plan: MergePlan


async def run_upload(
    profile: ServerProfile,
    limits: Limits,
    options: UploadOptions,
    *,
    reporter: Reporter | None = None,
    confirm: Confirm | None = None,
) -> Summary:
    """Run upload-schedule; per-file and per-participant failures land in the summary.

    Events: an ``ItemDone`` per planned schedule (``data`` the :class:`MergePlan`, ``lines``
    the plan as printed), the media job's events (``job`` "videos"), and an ``ItemDone``
    per schedule sent (``data`` whether the server stored what was planned).
    """
    job = Job("upload-schedule", reporter)
    summary = job.summary
    started = time.monotonic()
    today = options.today or today_in(profile.tz)
    summary.details["today"] = today.isoformat()

    # 1. Read only: validate, check video references, plan every merge.
    schedules = await asyncio.to_thread(_load_all, options.jsons_path, profile, job)
    local = set((await walk_local_async(options.video_path)).files)
    summary.details["local_videos"] = len(local)
    if not options.video_path.is_dir():
        job.warn(f"no video folder {options.video_path}: no videos to upload")
    missing_locally = {v for s in schedules for v in s.videos if v not in local}
    remote: set[str] = set()
    if missing_locally:
        remote = await list_remote_videos(
            profile, limits, accept_new_host_key=options.accept_new_host_key
        )
    schedules = _check_video_references(schedules, local, remote, job)
    if not schedules and not local:
        summary.elapsed_s = time.monotonic() - started
        return summary

    async with PlatformClient(profile, limits) as client:
        planned = await _plan_all(client, schedules, today, job) if schedules else []
        for item in planned:
            name = item.schedule.path.name
            lines = item.plan.lines(name, collapse=True)
            job.done(
                name,
                {"planned": 1},
                lines=[line for line in lines if not line.startswith("  warning:")],
                notices=[line for line in lines if line.startswith("  warning:")],
                data=item.plan,
            )
        summary.details["plans"] = [
            {"file": p.schedule.path.name, **p.plan.to_dict()} for p in planned
        ]
        summary.count("schedules planned", len(planned))

        # 2. Confirm (or stop after the plan).
        if not options.dry_run:
            await _confirm(profile, confirm, len(planned), len(local))

        # 3. Videos first, so that no phone is told about a video the server lacks.
        failed_videos: set[str] = set()
        if local:
            failed_videos = await _push(profile, limits, options, job)
        if not options.dry_run:
            await _send_schedules(client, limits, planned, failed_videos, job)
    summary.elapsed_s = time.monotonic() - started
    return summary


def _load_all(folder: Path, profile: ServerProfile, job: Job) -> list[ScheduleFile]:
    """Every valid schedule; the invalid ones are failures, and so are shared external_ids.
    (In a worker thread: the job's reporters must take events from any thread.)"""
    summary = job.summary
    paths = find_schedule_files(folder)
    if not paths:
        job.warn(f"no *.json schedule files in {folder}")
    loaded: list[ScheduleFile] = []
    for path in paths:
        try:
            schedule = load_schedule_file(path, salt=profile.salt, tz=profile.tz)
        except ScheduleFileError as exc:
            log.debug("invalid: %s", exc)  # listed with the failures at the end
            job.failed(path.name, f"invalid, not sent: {exc.message.split(': ', 1)[-1]}")
            continue
        job.warn_all(schedule.warnings)
        loaded.append(schedule)
    summary.count("schedule files", len(paths))
    mismatched = [s.path.name for s in loaded if s.id_source == ID_MISMATCH]
    if mismatched:
        shown = ", ".join(mismatched[:5]) + (" ..." if len(mismatched) > 5 else "")
        job.warn(
            f"{len(mismatched)} file(s) give an external_id that is not the salted hash of their "
            f"name/surname/phone ({shown}): --user_time will not find those participants"
        )
    by_id: dict[str, list[ScheduleFile]] = {}
    for schedule in loaded:
        by_id.setdefault(schedule.external_id, []).append(schedule)
    valid: list[ScheduleFile] = []
    for group in by_id.values():
        if len(group) == 1:
            valid.append(group[0])
            continue
        names = ", ".join(s.path.name for s in group)
        for schedule in group:
            job.failed(
                schedule.path.name,
                f"not sent: {names} are the same participant; merge them into one file",
            )
    return sorted(valid, key=lambda s: s.path.name)


def _check_video_references(
    schedules: list[ScheduleFile], local: set[str], remote: set[str], job: Job
) -> list[ScheduleFile]:
    ok: list[ScheduleFile] = []
    for schedule in schedules:
        missing = [v for v in schedule.videos if v not in local and v not in remote]
        if missing:
            shown = ", ".join(missing[:5]) + (
                f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            )
            job.failed(
                schedule.path.name,
                "invalid, not sent: video(s) neither in the video folder nor on the server: "
                + shown,
            )
        else:
            ok.append(schedule)
    return ok


async def _plan_all(
    client: PlatformClient, schedules: list[ScheduleFile], today: date, job: Job
) -> list[_Planned]:
    stored: dict[str, dict[str, Any]] = {}
    for item in await client.schedules([s.external_id for s in schedules]):
        obj = item.get("schedule")
        if isinstance(obj, dict) and isinstance(obj.get("external_id"), str):
            stored[obj["external_id"]] = obj
    accounts: set[str] = set(await client.users())
    planned: list[_Planned] = []
    for schedule in schedules:
        current = stored.get(schedule.external_id)
        if current is None and schedule.external_id in accounts:
            job.failed(
                schedule.path.name,
                f"not sent: account {schedule.external_id} exists without a schedule (an orphan "
                "left by a crashed upload); the server cannot repair it: ask the platform "
                "administrator to delete that account, then re-run",
            )
            continue
        planned.append(_Planned(schedule, plan_merge(current, schedule.payload, today)))
    return planned


async def _confirm(
    profile: ServerProfile, confirm: Confirm | None, schedules: int, videos: int
) -> None:
    if not profile.is_production or confirm is None:
        return
    question = (
        f"upload {schedules} schedule(s) and check/upload {videos} video(s) "
        f"to the PRODUCTION server {profile.url}?"
    )
    if not await asyncio.to_thread(confirm, question):
        raise UsageError("not confirmed: nothing was sent")


async def _push(
    profile: ServerProfile, limits: Limits, options: UploadOptions, job: Job
) -> set[str]:
    """The media engine's push_up: it writes the local ``<video>.md5sum`` sidecars from its
    md5 cache, skips videos whose remote sidecar matches, uploads and verifies the rest (a
    dry run decides only). Its failures are ours."""
    pushed = await push_up(
        profile,
        limits,
        options.video_path,
        verify=options.verify,
        dry_run=options.dry_run,
        accept_new_host_key=options.accept_new_host_key,
        reporter=job.reporter,
    )
    job.summary.absorb(pushed, "videos ", unprefixed=("md5sum",), details_under="videos")
    return {f.item for f in pushed.failures}


async def _send_schedules(
    client: PlatformClient,
    limits: Limits,
    planned: list[_Planned],
    failed_videos: set[str],
    job: Job,
) -> None:
    """Each schedule whose videos are all on the server, ``rest_concurrency`` at once. By
    the one failure policy an answer that fails (a 500, an invalid answer) fails that
    schedule; a rejected token, an unreachable server or a local disk that refuses stop the
    run, since every other schedule would meet the same."""
    summary = job.summary

    async def send(item: _Planned) -> None:
        name = item.schedule.path.name
        broken = [v for v in item.schedule.videos if v in failed_videos]
        if broken:
            job.failed(name, f"not sent: video(s) failed to upload: {', '.join(broken[:5])}")
            return
        if not item.plan.new_participant and not item.plan.changes:
            # The server would store exactly what it holds: no request, no risk.
            summary.count("schedules already up to date")
            return
        answer = await client.update_schedule(item.schedule.payload)
        matches = results_match(item.plan, answer)
        if not matches:
            job.warn(
                f"{name}: the server stored a different entry list than planned "
                f"for {item.schedule.external_id}"
            )
        summary.count("schedules sent")
        verdict = "as planned" if matches else "DIFFERENT from the plan"
        line = f"sent {name} ({item.plan.external_id}): server stored {verdict}"
        job.done(
            name,
            {"sent": 1},
            lines=[line] if matches else [],
            notices=[] if matches else [line],
            data=matches,
        )

    def reason(item: _Planned, exc: BaseException) -> str:
        return (
            f"upload of {item.schedule.external_id} failed ({exc}); it may or may not "
            "have been applied: re-run to see the plan against what is stored"
        )

    await run_items(
        planned,
        send,
        workers=limits.rest_concurrency,
        job=job,
        label=lambda item: item.schedule.path.name,
        reason=reason,
    )
