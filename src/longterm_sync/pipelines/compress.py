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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..atomic import atomic_writer, fsync_dir, local_io_error, write_bytes_atomic
from ..errors import InputFileError
from ..events import Job, Reporter
from ..summary import Summary
from ..video.cache import ProbeCache, content_digest
from ..video.compress import FileRun, SearchSettings, compress_one
from ..video.encode import Scene, check_model
from ..video.ffmpeg import SourceInfo, probe
from ..workers import first_error, run_items

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
class Input:
    path: Path
    target: float
    info: SourceInfo | None = field(default=None, compare=False)
    digest: str = field(default="", compare=False)


@dataclass(frozen=True)
class ProbeDone:
    """``ItemDone.data`` of a probe's event (one per encode or measure of a scene), so a
    renderer can tell them from the per-file events."""

    file: str
    scene: int


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


def find_inputs(folder: Path) -> list[Input]:
    if not folder.is_dir():
        raise InputFileError(f"input folder {folder} does not exist")
    inputs = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise InputFileError(
                f"{path.name}: not a video ({', '.join(VIDEO_SUFFIXES)})",
                hint="move other files out of the input folder",
            )
        inputs.append(Input(path, parse_target(path)))
    if not inputs:
        raise InputFileError(f"no videos to compress in {folder} (e.g. 60_avatar.mp4)")
    return inputs


def output_names(item: Input) -> tuple[str, str, str]:
    """(compressed video, copy of the source, JSON report) in the output folder."""
    stem = item.path.stem
    return f"{stem}.mp4", f"{stem}.source{item.path.suffix.lower()}", f"{stem}.json"


async def run_compress_videos(
    options: CompressOptions, *, reporter: Reporter | None = None
) -> Summary:
    """Every input in name order, its scenes in parallel.

    Events (job ``compress_videos``): ``Planned`` with the number of videos; an ``ItemDone``
    per probe (item ``<file> scene <n>``, ``data`` a :class:`ProbeDone`, counts ``encodes``
    and ``probes reused``, one progress line); an ``ItemDone`` per compressed file (counts
    ``scenes``, ``encodes``, ``probes reused``; ``lines`` its per-scene table; ``data`` the
    JSON report); ``ItemFailed`` for a file whose ffmpeg failed (the run goes on, exit 1);
    ``Warned`` for each scene whose target was not reached.
    """
    job = Job(NAME, reporter)
    summary = job.summary
    inputs = find_inputs(options.input_dir)
    out_dir = options.output_dir
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        work_root = Path(tempfile.mkdtemp(prefix=".compress-work-", dir=out_dir))
    except OSError as exc:
        raise local_io_error(exc, out_dir) from exc
    try:
        await check_model(options.settings.model, work_root)
        limit = asyncio.Semaphore(options.settings.jobs)

        async def probed(item: Input) -> Input:
            async with limit:
                info = await probe(item.path, work_root, options.scene_threshold)
            digest = await asyncio.to_thread(content_digest, item.path)
            return Input(item.path, item.target, info, digest)

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(probed(item)) for item in inputs]
        except BaseExceptionGroup as errors:
            raise first_error(errors) from None
        inputs = [task.result() for task in tasks]
        cache = ProbeCache(out_dir)
        await asyncio.to_thread(cache.load)
        store = work_root / "encodes"
        await asyncio.to_thread(store.mkdir)
        pending = Counter(item.digest for item in inputs)
        job.planned(len(inputs))

        async def work(item: Input) -> dict[str, Any]:
            index = inputs.index(item)
            run = FileRun(
                src=item.path,
                info=item.info,  # type: ignore[arg-type]
                target=item.target,
                settings=options.settings,
                limit=limit,
                store=store,
                cache=cache,
                digest=item.digest,
                on_probe=_probe_events(job, item.path.name),
            )
            return await _one(item, run, options, work_root / f"{index:04d}", job)

        async def settle(_index: int, item: Input, _report: dict[str, Any] | None) -> None:
            """After each file, done or failed: the cache saved (a run interrupted later keeps
            the probes of the files before), and the encodes of a source that no later file
            shares removed."""
            await asyncio.to_thread(cache.save)
            pending[item.digest] -= 1
            if not pending[item.digest]:
                await asyncio.to_thread(_remove_encodes, store, item.digest)

        reports = await run_items(
            inputs, work, workers=1, job=job, label=lambda item: item.path.name, settle=settle
        )
        summary.details["reports"] = [r for r in reports if r is not None]
    finally:
        await asyncio.to_thread(shutil.rmtree, work_root, True)
    return job.finish()


def _probe_events(job: Job, name: str) -> Any:
    def on_probe(scene: Scene, line: str, counts: dict[str, int]) -> None:
        job.done(
            f"{name} scene {scene.number}",
            {k: v for k, v in counts.items() if v},
            lines=[f"{name}: scene {scene.number}: {line}"],
            data=ProbeDone(name, scene.number),
        )

    return on_probe


def _remove_encodes(store: Path, digest: str) -> None:
    """Blocking: the kept encodes of one source."""
    for path in store.glob(f"{digest}_*"):
        path.unlink(missing_ok=True)


async def _one(
    item: Input, run: FileRun, options: CompressOptions, work: Path, job: Job
) -> dict[str, Any]:
    """One file to its outputs; an ffmpeg failure (item scope) fails this file only."""
    name = item.path.name
    await asyncio.to_thread(work.mkdir)
    video_name, source_name, report_name = output_names(item)
    joined = work / "joined.mp4"
    report = await compress_one(run, work, joined)
    report["output"] = video_name
    report["source"] = source_name
    out = options.output_dir
    await asyncio.to_thread(_place, joined, out / video_name, item.path, out / source_name)
    data = orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n"
    await asyncio.to_thread(write_bytes_atomic, out / report_name, data)
    summary = job.summary
    summary.count("videos compressed")
    summary.count("scenes", len(report["scenes"]))
    if report["scenes_off_target"]:
        summary.count("scenes off target", report["scenes_off_target"])
        job.warn_all(
            f"{name} scene {scene['scene']}: {scene['reason']}"
            for scene in report["scenes"]
            if not scene["reached"]
        )
    summary.count("encodes", report["encodes"])
    if report["probes_reused"]:
        summary.count("probes reused", report["probes_reused"])
    summary.files.extend(str(out / n) for n in (video_name, source_name, report_name))
    summary.bytes += (out / video_name).stat().st_size
    job.done(
        name,
        {
            "scenes": len(report["scenes"]),
            "encodes": report["encodes"],
            "probes reused": report["probes_reused"],
        },
        lines=report_lines(report),
        data=report,
    )
    return report


def report_lines(report: dict[str, Any]) -> list[str]:
    """A file's result as printed: the overall figure, then one line per scene."""
    reused = f", {report['probes_reused']} probes reused" if report["probes_reused"] else ""
    lines = [
        f"{report['file_name']}: target {report['target_vmaf']:g}, VMAF {report['vmaf']:.2f}"
        f" over {len(report['scenes'])} scene(s), {report['encodes']} encodes{reused}"
    ]
    for scene in report["scenes"]:
        mark = "" if scene["reached"] else f"  ({scene['reason']})"
        lines.append(
            f"  scene {scene['scene']:>3}  {scene['start']:>8.2f}-{scene['end']:<8.2f} "
            f"{scene['resolution']:>9}  CRF {scene['crf']:>4g}  VMAF {scene['vmaf']:6.2f}"
            f"  {scene['encodes']} encodes{mark}"
        )
    return lines


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
