"""The two ffmpeg jobs of a probe: encode one scene, measure it with libvmaf.

Every scene is encoded with the same codec parameters (x264 ``stitchable``, fixed GOP,
profile, pixel format, time scale) at the source's frame size, so the chosen scene files can
be joined by the concat demuxer without decoding; a resolution rung is a scale down and back
up *before* the encoder, never a change of frame size inside the stream.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from pathlib import Path

from .ffmpeg import FfmpegError, SourceInfo, run_ffmpeg
from .search import RUNG_FACTORS

TIMESCALE = 90000


@dataclass(frozen=True)
class Scene:
    number: int  # 1-based
    start: int  # first frame
    end: int  # one past the last frame

    @property
    def frames(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Codec:
    """What every encode shares; only CRF and the rung differ between scenes."""

    preset: str = "medium"
    threads: int = 1


@dataclass(frozen=True)
class VmafModel:
    """libvmaf's ``model`` option: a built-in version or a model file; phone = the phone
    model's score transform (``enable_transform``), as the original used."""

    spec: str = "vmaf_v0.6.1"
    phone: bool = False

    def option(self) -> str:
        kind = "path" if self.spec.endswith(".json") or "/" in self.spec else "version"
        value = f"{kind}={filter_escape(self.spec)}"
        if self.phone:
            value += "\\:enable_transform=true"
        return f"model='{value}'"

    def describe(self) -> str:
        return self.spec + (" (phone)" if self.phone else "")


def filter_escape(text: str) -> str:
    """A value inside a single-quoted filtergraph option (paths with ':' or quotes)."""
    return text.replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")


def rung_size(info: SourceInfo, rung: int) -> tuple[int, int]:
    factor = RUNG_FACTORS[rung]
    return (
        max(16, 2 * math.floor(info.width * factor / 2)),
        max(16, 2 * math.floor(info.height * factor / 2)),
    )


def _seek(info: SourceInfo, frame: int) -> str:
    """Half a frame early: the accurate seek keeps the frame whose time is ``frame / fps``
    whatever the rounding of either side."""
    return f"{max(0.0, (frame - 0.5) / float(info.fps)):.6f}" if frame else "0"


def scale_chain(info: SourceInfo, rung: int) -> str:
    if rung == 0:
        return "null"
    w, h = rung_size(info, rung)
    return f"scale={w}:{h}:flags=bicubic,scale={info.width}:{info.height}:flags=bicubic"


async def encode_scene(
    src: Path, info: SourceInfo, scene: Scene, rung: int, crf: float, codec: Codec, out: Path
) -> None:
    gop = max(1, round(2 * float(info.fps)))
    await run_ffmpeg(
        ["-y", "-ss", _seek(info, scene.start), "-i", str(src), "-frames:v", str(scene.frames),
         "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", scale_chain(info, rung),
         "-c:v", "libx264", "-preset", codec.preset, "-crf", f"{crf:g}", "-pix_fmt", "yuv420p",
         "-profile:v", "high", "-g", str(gop), "-threads", str(codec.threads),
         "-x264-params", "stitchable=1", "-video_track_timescale", str(TIMESCALE),
         "-f", "mp4", str(out)]
    )  # fmt: skip


async def measure(
    distorted: Path,
    src: Path,
    info: SourceInfo,
    scene: Scene | None,
    model: VmafModel,
    log: Path,
    *,
    subsample: int = 1,
    threads: int = 1,
) -> list[tuple[int, float]]:
    """Per-frame VMAF of ``distorted`` against the source (one scene, or the whole file),
    at the source's frame size; returns (frame number within the measured span, score).

    A scene is measured with one source frame of context on each side (the distorted side
    repeats its first and last frame there, and those two scores are dropped): VMAF's motion
    feature of a frame looks at the reference's neighbours, so without them a scene's first
    and last frames would score differently here than inside the joined file, and the
    search's figure would not be the report's.
    """
    ref_args = ["-i", str(src)]
    ref_chain = "setpts=PTS-STARTPTS"
    dist_chain = "setpts=PTS-STARTPTS"
    before = after = 0
    if scene is not None:
        before = 1 if scene.start > 0 else 0
        after = 1 if scene.end < info.frames else 0
        ref_args = ["-ss", _seek(info, scene.start - before), "-i", str(src)]
        ref_chain = f"trim=end_frame={scene.frames + before + after},setpts=PTS-STARTPTS"
        if before or after:  # (not setpts=N/...: libvmaf then pairs some frames wrongly)
            dist_chain += f",tpad=start={before}:start_mode=clone:stop={after}:stop_mode=clone"
    graph = (
        f"[0:v]{dist_chain}[d];[1:v]{ref_chain}[r];"
        f"[d][r]libvmaf={model.option()}:n_subsample={subsample}:n_threads={threads}"
        f":log_fmt=json:log_path='{filter_escape(str(log))}'"
    )
    await run_ffmpeg(["-i", str(distorted), *ref_args, "-lavfi", graph, "-f", "null", "-"])
    frames = await asyncio.to_thread(_read_log, log)
    if before or after:
        last = scene.frames + before  # type: ignore[union-attr]
        frames = [(n - before, v) for n, v in frames if before <= n < last]
        if not frames:
            raise FfmpegError("libvmaf measured no frames of the scene")
    return frames


def _read_log(log: Path) -> list[tuple[int, float]]:
    """Blocking: the whole file's log of a long 1080p video is megabytes of JSON."""
    try:
        data = json.loads(log.read_text(encoding="utf-8"))
        frames = [(int(f["frameNum"]), float(f["metrics"]["vmaf"])) for f in data["frames"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FfmpegError(f"libvmaf wrote no usable log ({exc})") from None
    finally:
        log.unlink(missing_ok=True)
    if not frames:
        raise FfmpegError("libvmaf measured no frames")
    return frames


async def check_model(model: VmafModel, work: Path) -> None:
    """Fail before any work when libvmaf cannot load the model (a missing file, a typo)."""
    from ..errors import UsageError

    is_path = model.option().startswith("model='path=")
    if is_path and not await asyncio.to_thread(Path(model.spec).is_file):
        raise UsageError(f"VMAF model file {model.spec} does not exist")
    log = work / "model-check.json"
    src = "color=c=gray:size=64x64:rate=25:duration=0.2"
    try:
        await run_ffmpeg(
            ["-f", "lavfi", "-i", src, "-f", "lavfi", "-i", src, "-lavfi",
             f"[0:v][1:v]libvmaf={model.option()}:log_fmt=json:log_path='{filter_escape(str(log))}'",
             "-f", "null", "-"]
        )  # fmt: skip
    except FfmpegError as exc:
        raise UsageError(f"VMAF model {model.describe()!r} cannot be used: {exc}") from None
    finally:
        log.unlink(missing_ok=True)
