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

from .cache import PointKey, ProbeCache
from .encode import Codec, Scene, VmafModel, encode_scene, measure, rung_size
from .ffmpeg import SourceInfo, ffmpeg_exe, run_ffmpeg
from .search import RUNG_FACTORS, CrfSearch, Probe, start_rung

OnProbe = Callable[[Scene, str, dict[str, int]], None]
"""(scene, progress line, counts): a probe measured (``encodes`` run for it, 0 or 1), or
``probes reused`` from the cache when a scene's search starts."""


@dataclass(frozen=True, kw_only=True)
class SearchSettings:
    """Knobs of the search. ``jobs`` bounds concurrent ffmpeg processes (each one thread):
    more jobs use more cores and memory (a 1080p VMAF job holds a few hundred MB).

    ``probe_subsample`` applies to scenes of at least ``full_below_s`` seconds only: a short
    scene has few frames, every 3rd of 30 is a noisy estimate, and measuring all 30 costs
    little; a long scene's subsampled pick is confirmed on every frame before it is taken."""

    jobs: int
    tolerance: float = 1.0
    model: VmafModel = field(default_factory=VmafModel)
    probe_subsample: int = 3
    full_below_s: float = 3.0
    min_scene_s: float = 1.0
    max_probes: int = 12
    codec: Codec = field(default_factory=Codec)

    def subsample(self, info: SourceInfo, scene: Scene) -> int:
        return 1 if scene.frames < self.full_below_s * float(info.fps) else self.probe_subsample

    def encoder_id(self) -> str:
        """The encode settings a cached number depends on (with the ffmpeg build's name)."""
        return (
            f"x264-{self.codec.preset}-t{self.codec.threads}-{Path(ffmpeg_exe()).name}"
        ).replace("|", "_")


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
    encodes: int  # encodes run for this scene now (reused probes cost none)
    confirmations: int  # subsampled picks measured again on every frame


@dataclass
class FileRun:
    """What the scenes of one file share: the source, the cache, the encode store, hints."""

    src: Path
    info: SourceInfo
    target: float
    settings: SearchSettings
    limit: asyncio.Semaphore
    store: Path  # encodes, kept by the pipeline while a later file may reuse them
    cache: ProbeCache
    digest: str
    on_probe: OnProbe
    reached_crfs: dict[int, list[float]] = field(default_factory=dict)

    def encode_path(self, scene: Scene, rung: int, crf: float) -> Path:
        w, h = rung_size(self.info, rung)
        return self.store / f"{self.digest}_{scene.start}-{scene.end}_{w}x{h}_crf{crf:g}.mp4"

    def rung_of(self, size: tuple[int, int]) -> int | None:
        for rung in range(len(RUNG_FACTORS)):
            if rung_size(self.info, rung) == size:
                return rung
        return None


async def search_scene(run: FileRun, scene: Scene) -> SceneResult:
    """One scene's search: cached points first, then encodes until the target is met on
    every frame (or shown unreachable)."""
    settings, info = run.settings, run.info
    key = PointKey(
        run.digest, scene.start, scene.end, settings.encoder_id(), settings.model.describe()
    )
    subsample = settings.subsample(info, scene)
    hint = run.reached_crfs.get(start_rung(run.target))
    search = CrfSearch(
        run.target,
        settings.tolerance,
        max_probes=settings.max_probes,
        first_crf=statistics.median(hint) if hint else None,
    )
    for size, crf, sub, vmaf in sorted(run.cache.points(key), key=lambda p: -p[2]):
        rung = run.rung_of(size)
        if rung is not None and sub in (1, subsample):  # full figures added last: they win
            search.add(Probe(rung, crf, vmaf, full=sub == 1, reused=True))
    if search.probes:
        reused = len(search.probes)
        run.on_probe(scene, f"{reused} probe(s) reused from the cache", {"probes reused": reused})
    encodes = confirmations = 0

    async def encoded(rung: int, crf: float) -> Path:
        nonlocal encodes
        out = run.encode_path(scene, rung, crf)
        if not await asyncio.to_thread(out.is_file):
            part = out.with_name(out.stem + ".part.mp4")
            async with run.limit:
                await encode_scene(run.src, info, scene, rung, crf, settings.codec, part)
            await asyncio.to_thread(part.replace, out)
            encodes += 1
        return out

    async def measured(rung: int, crf: float, every: int) -> float:
        path = await encoded(rung, crf)
        async with run.limit:
            frames = await measure(
                path, run.src, info, scene, settings.model, path.with_suffix(f".{every}.json"),
                subsample=every,
            )  # fmt: skip
        vmaf = statistics.fmean(score for _, score in frames)
        run.cache.put(key.point(rung_size(info, rung), crf, every), vmaf)
        return vmaf

    while True:
        before = encodes
        if (pick := search.unconfirmed()) is not None:
            vmaf = await measured(pick.rung, pick.crf, 1)
            search.add(Probe(pick.rung, pick.crf, vmaf, full=True, reused=pick.reused))
            confirmations += 1
            line = f"CRF {pick.crf:g}: VMAF {vmaf:.2f} on every frame (sampled: {pick.vmaf:.2f})"
            run.on_probe(scene, line, {"encodes": encodes - before})
            continue
        step = search.next_probe()
        if step is None:
            break
        rung, crf = step
        vmaf = await measured(rung, crf, subsample)
        search.add(Probe(rung, crf, vmaf, full=subsample == 1))
        w, h = rung_size(info, rung)
        line = f"CRF {crf:g} at {w}x{h} -> VMAF {vmaf:.2f}"
        run.on_probe(scene, line, {"encodes": encodes - before})
    best = search.best
    assert best is not None
    if search.reached and best.rung == start_rung(run.target):
        run.reached_crfs.setdefault(best.rung, []).append(best.crf)
    before = encodes
    chosen = await encoded(best.rung, best.crf)  # a cached pick from an earlier run: encode
    if encodes > before:
        run.on_probe(scene, f"CRF {best.crf:g} encoded (a cached pick)", {"encodes": 1})
    return SceneResult(scene, search, best, chosen, encodes, confirmations)


async def join(results: list[SceneResult], src: Path, out: Path) -> None:
    """Concat demuxer, stream copy: no second lossy pass. The source's audio, if any, is
    copied alongside unchanged."""
    listing = out.with_suffix(".txt")
    lines = "".join(f"file '{_concat_quote(r.file)}'\n" for r in results)
    await asyncio.to_thread(listing.write_text, lines, encoding="utf-8")
    try:
        await run_ffmpeg(
            ["-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-i", str(src),
             "-map", "0:v:0", "-map", "1:a?", "-c", "copy", "-shortest",
             "-movflags", "+faststart", "-f", "mp4", str(out)]
        )  # fmt: skip
    finally:
        listing.unlink(missing_ok=True)


def _concat_quote(path: Path) -> str:
    """An absolute path inside the concat listing's single quotes (the encodes live in the
    run's store, not beside the listing)."""
    return str(path.resolve()).replace("'", "'\\''")


async def compress_one(run: FileRun, work: Path, out: Path) -> dict[str, Any]:
    """Search every scene, join the chosen encodes into ``out``, measure it; the report."""
    started = time.monotonic()
    info = run.info
    scenes = split_scenes(info, run.settings.min_scene_s)
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(search_scene(run, scene)) for scene in scenes]
    results = [task.result() for task in tasks]
    await join(results, run.src, out)
    frames = await measure(
        out, run.src, info, None, run.settings.model, work / "final.json",
        threads=run.settings.jobs,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    return _report(run.src, info, run.target, run.settings, results, frames, elapsed)


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
                f"the search measured {result.chosen.vmaf:.2f}; the final file measures "
                f"{vmaf:.2f} on every frame"
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
                "search_vmaf": round(result.chosen.vmaf, 3),
                "encodes": result.encodes,
                "probes_reused": sum(1 for p in result.search.probes if p.reused),
                "confirmations": result.confirmations,
                "reached": reached,
                "reason": reason,
                "probes": [
                    {
                        "resolution": "x".join(map(str, rung_size(info, p.rung))),
                        "crf": p.crf,
                        "vmaf": round(p.vmaf, 3),
                        "every_frame": p.full,
                        "reused": p.reused,
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
        "probes_reused": sum(s["probes_reused"] for s in scenes),
        "scenes_off_target": sum(1 for s in scenes if not s["reached"]),
        "elapsed_s": round(elapsed, 2),
        "scenes": scenes,
    }
