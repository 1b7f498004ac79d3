"""``compress_videos``: every ``<VMAF>_<name>.mp4`` of a folder to its target VMAF.

All inputs are checked (names, readability, the VMAF model) before the first encode, so bad
input stops the run with nothing written. Work happens in a hidden folder inside the output
folder (same file system: the final rename is atomic); a file's outputs get their final names
only when complete, the report last, and the work folder is removed however the run ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..atomic import atomic_writer, fsync_dir, local_io_error, write_bytes_atomic
from ..errors import InputFileError
from ..summary import Summary
from ..video.compress import SearchSettings, compress_one
from ..video.encode import check_model
from ..video.ffmpeg import FfmpegError, SourceInfo, probe

NAME = "compress_videos"
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".m4v", ".webm")
_TARGET = re.compile(r"^(\d{1,3})_(.+)$")


@dataclass(frozen=True, kw_only=True)
class CompressOptions:
    input_dir: Path
    output_dir: Path
    settings: SearchSettings
    scene_threshold: float = 10.0


@dataclass(frozen=True)
class Job:
    path: Path
    target: float
    info: SourceInfo | None = field(default=None, compare=False)


def parse_target(path: Path) -> float:
    """``60_avatar.mp4`` -> 60; ``99`` means 100 (the original's convention)."""
    match = _TARGET.match(path.stem)
    if match is None or not 0 < int(match.group(1)) <= 100:
        raise InputFileError(
            f"{path.name}: the name must start with the target VMAF (1-100) and '_', "
            "e.g. 60_avatar.mp4"
        )
    value = int(match.group(1))
    return 100.0 if value == 99 else float(value)


def find_inputs(folder: Path) -> list[Job]:
    if not folder.is_dir():
        raise InputFileError(f"input folder {folder} does not exist")
    jobs = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise InputFileError(
                f"{path.name}: not a video ({', '.join(VIDEO_SUFFIXES)})",
                hint="move other files out of the input folder",
            )
        jobs.append(Job(path, parse_target(path)))
    if not jobs:
        raise InputFileError(f"no videos to compress in {folder} (e.g. 60_avatar.mp4)")
    return jobs


def output_names(job: Job) -> tuple[str, str, str]:
    """(compressed video, copy of the source, JSON report) in the output folder."""
    stem = job.path.stem
    return f"{stem}.mp4", f"{stem}.source{job.path.suffix.lower()}", f"{stem}.json"


async def run_compress_videos(
    options: CompressOptions, progress: Callable[[str, str], None] | None = None
) -> Summary:
    started = time.monotonic()
    summary = Summary(command=NAME)
    say = progress or (lambda _file, _text: None)
    jobs = find_inputs(options.input_dir)
    out_dir = options.output_dir
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        work_root = Path(tempfile.mkdtemp(prefix=".compress-work-", dir=out_dir))
    except OSError as exc:
        raise local_io_error(exc, out_dir) from exc
    try:
        await check_model(options.settings.model, work_root)
        limit = asyncio.Semaphore(options.settings.jobs)

        async def probed(job: Job) -> Job:
            async with limit:
                info = await probe(job.path, work_root, options.scene_threshold)
            return Job(job.path, job.target, info)

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(probed(job)) for job in jobs]
        except BaseExceptionGroup as errors:
            raise first_error(errors) from None
        jobs = [task.result() for task in tasks]
        reports: list[dict[str, Any]] = []
        for index, job in enumerate(jobs):
            report = await _one(job, options, work_root / f"{index:04d}", say, summary)
            if report is not None:
                reports.append(report)
        summary.details["reports"] = reports
    finally:
        await asyncio.to_thread(shutil.rmtree, work_root, True)
    summary.elapsed_s = time.monotonic() - started
    return summary


async def _one(
    job: Job,
    options: CompressOptions,
    work: Path,
    say: Callable[[str, str], None],
    summary: Summary,
) -> dict[str, Any] | None:
    """One file; its ffmpeg failure is recorded in ``summary`` and the run goes on."""
    assert job.info is not None
    name = job.path.name
    await asyncio.to_thread(work.mkdir)
    video_name, source_name, report_name = output_names(job)
    joined = work / "joined.mp4"
    try:
        report = await compress_one(
            job.path, job.info, job.target, options.settings, work, joined,
            lambda text: say(name, text),
        )  # fmt: skip
    except (FfmpegError, BaseExceptionGroup) as exc:
        error = first_error(exc) if isinstance(exc, BaseExceptionGroup) else exc
        if not isinstance(error, FfmpegError):
            raise error from None
        summary.fail(name, str(error))
        return None
    report["output"] = video_name
    report["source"] = source_name
    out = options.output_dir
    await asyncio.to_thread(_place, joined, out / video_name, job.path, out / source_name)
    data = orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n"
    await asyncio.to_thread(write_bytes_atomic, out / report_name, data)
    summary.count("videos compressed")
    summary.count("scenes", len(report["scenes"]))
    if report["scenes_off_target"]:
        summary.count("scenes off target", report["scenes_off_target"])
        for scene in report["scenes"]:
            if not scene["reached"]:
                summary.warnings.append(f"{name} scene {scene['scene']}: {scene['reason']}")
    summary.count("encodes", report["encodes"])
    summary.files.extend(str(out / n) for n in (video_name, source_name, report_name))
    summary.bytes += (out / video_name).stat().st_size
    say(
        name,
        f"done: VMAF {report['vmaf']:.2f} (target {job.target:g}), {report['encodes']} encodes",
    )
    return report


def first_error(errors: BaseExceptionGroup[Any]) -> BaseException:
    """The first real error of a TaskGroup's group (a cancellation only if nothing else)."""
    flat: list[BaseException] = []
    stack: list[BaseException] = [errors]
    while stack:
        item = stack.pop(0)
        if isinstance(item, BaseExceptionGroup):
            stack[:0] = list(item.exceptions)
        else:
            flat.append(item)
    real = [e for e in flat if not isinstance(e, asyncio.CancelledError)]
    return (real or flat)[0]


def _place(joined: Path, video: Path, source: Path, source_copy: Path) -> None:
    """Blocking: the joined file is renamed into place (same file system), the source copied
    to a temporary name and renamed."""
    try:
        with joined.open("rb") as fh:
            os.fsync(fh.fileno())
        joined.replace(video)
        fsync_dir(video.parent)
    except OSError as exc:
        raise local_io_error(exc, video) from exc
    with atomic_writer(source_copy) as out, source.open("rb") as src:
        shutil.copyfileobj(src, out, 1 << 20)
    with contextlib.suppress(OSError):
        shutil.copystat(source, source_copy)
