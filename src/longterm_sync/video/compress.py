"""One source to one target VMAF: scenes searched in parallel, joined, measured again.

The numbers in the report are measured on the final, joined file against the source, every
frame, after the search: a probe may measure a subsample of frames, and a join could in
principle change what a scene looks like, so the search's own numbers are never reported
as the result.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .encode import Codec, Scene, VmafModel, encode_scene, measure, rung_size
from .ffmpeg import SourceInfo, run_ffmpeg
from .search import CrfSearch, Probe

Progress = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class SearchSettings:
    """Knobs of the search. ``jobs`` bounds concurrent ffmpeg processes (each one thread):
    more jobs use more cores and memory (a 1080p VMAF job holds a few hundred MB)."""

    jobs: int
    tolerance: float = 1.0
    model: VmafModel = field(default_factory=VmafModel)
    probe_subsample: int = 3
    min_scene_s: float = 1.0
    max_probes: int = 12
    codec: Codec = field(default_factory=Codec)


def split_scenes(info: SourceInfo, min_scene_s: float) -> list[Scene]:
    """scdet's cuts, dropping those that would leave a scene shorter than ``min_scene_s``
    (a flash or a fade would otherwise become a scene of its own, each with its search)."""
    shortest = max(1, round(min_scene_s * float(info.fps)))
    starts = [0]
    for cut in sorted(set(info.cuts)):
        if cut - starts[-1] >= shortest and info.frames - cut >= shortest:
            starts.append(cut)
    ends = [*starts[1:], info.frames]
    return [Scene(i + 1, s, e) for i, (s, e) in enumerate(zip(starts, ends, strict=True))]


@dataclass
class SceneResult:
    scene: Scene
    search: CrfSearch
    chosen: Probe
    file: Path


async def search_scene(
    src: Path,
    info: SourceInfo,
    scene: Scene,
    target: float,
    settings: SearchSettings,
    limit: asyncio.Semaphore,
    work: Path,
    progress: Progress,
) -> SceneResult:
    search = CrfSearch(target, settings.tolerance, max_probes=settings.max_probes)
    files: dict[tuple[int, float], Path] = {}  # every encode kept: the chosen one is reused
    while (step := search.next_probe()) is not None:
        rung, crf = step
        out = work / f"s{scene.number:03d}_r{rung}_crf{crf:g}.mp4"
        async with limit:
            await encode_scene(src, info, scene, rung, crf, settings.codec, out)
        async with limit:
            frames = await measure(
                out, src, info, scene, settings.model, out.with_suffix(".json"),
                subsample=settings.probe_subsample,
            )  # fmt: skip
        vmaf = statistics.fmean(score for _, score in frames)
        search.add(Probe(rung, crf, vmaf))
        files[(rung, crf)] = out
        w, h = rung_size(info, rung)
        progress(f"scene {scene.number}: CRF {crf:g} at {w}x{h} -> VMAF {vmaf:.2f}")
    best = search.best
    assert best is not None
    for key, path in files.items():
        if key != (best.rung, best.crf):
            path.unlink(missing_ok=True)
    return SceneResult(scene, search, best, files[(best.rung, best.crf)])


async def join(results: list[SceneResult], src: Path, out: Path) -> None:
    """Concat demuxer, stream copy: no second lossy pass. The source's audio, if any, is
    copied alongside unchanged."""
    listing = out.with_suffix(".txt")
    listing.write_text("".join(f"file '{r.file.name}'\n" for r in results), encoding="utf-8")
    try:
        await run_ffmpeg(
            ["-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-i", str(src),
             "-map", "0:v:0", "-map", "1:a?", "-c", "copy", "-shortest",
             "-movflags", "+faststart", "-f", "mp4", str(out)]
        )  # fmt: skip
    finally:
        listing.unlink(missing_ok=True)


async def compress_one(
    src: Path,
    info: SourceInfo,
    target: float,
    settings: SearchSettings,
    work: Path,
    out: Path,
    progress: Progress,
) -> dict[str, Any]:
    """Search every scene, join the chosen encodes into ``out``, measure it; the report."""
    started = time.monotonic()
    scenes = split_scenes(info, settings.min_scene_s)
    progress(f"{len(scenes)} scene(s), {info.width}x{info.height}, {info.duration:.1f} s")
    limit = asyncio.Semaphore(settings.jobs)
    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(
                search_scene(src, info, scene, target, settings, limit, work, progress)
            )
            for scene in scenes
        ]
    results = [task.result() for task in tasks]
    await join(results, src, out)
    progress("measuring the final file against the source, every frame")
    frames = await measure(
        out, src, info, None, settings.model, work / "final.json", threads=settings.jobs
    )
    return _report(src, info, target, settings, results, frames, time.monotonic() - started)


def _report(
    src: Path,
    info: SourceInfo,
    target: float,
    settings: SearchSettings,
    results: list[SceneResult],
    frames: list[tuple[int, float]],
    elapsed: float,
) -> dict[str, Any]:
    scenes = []
    for result in results:
        scene = result.scene
        scores = [v for n, v in frames if scene.start <= n < scene.end]
        vmaf = statistics.fmean(scores) if scores else float("nan")
        w, h = rung_size(info, result.chosen.rung)
        reached = abs(vmaf - target) <= settings.tolerance
        reason = None
        if not reached:
            reason = result.search.reason or (
                f"the search measured {result.chosen.vmaf:.2f} on sampled frames; the final "
                f"file measures {vmaf:.2f} on every frame"
            )
        scenes.append(
            {
                "scene": scene.number,
                "start": round(info.seconds(scene.start), 3),
                "end": round(info.seconds(scene.end), 3),
                "start_frame": scene.start,
                "end_frame": scene.end,
                "resolution": f"{w}x{h}",
                "crf": result.chosen.crf,
                "vmaf": round(vmaf, 3),
                "encodes": len(result.search.probes),
                "reached": reached,
                "reason": reason,
                "probes": [
                    {
                        "resolution": "x".join(map(str, rung_size(info, p.rung))),
                        "crf": p.crf,
                        "vmaf": round(p.vmaf, 3),
                    }
                    for p in result.search.probes
                ],
            }
        )
    overall = statistics.fmean(v for _, v in frames)
    return {
        "file_name": src.name,
        "target_vmaf": target,
        "vmaf": round(overall, 3),
        "model": settings.model.describe(),
        "tolerance": settings.tolerance,
        "frames": info.frames,
        "fps": float(info.fps),
        "size": f"{info.width}x{info.height}",
        "encodes": sum(s["encodes"] for s in scenes),
        "scenes_off_target": sum(1 for s in scenes if not s["reached"]),
        "elapsed_s": round(elapsed, 2),
        "scenes": scenes,
    }
