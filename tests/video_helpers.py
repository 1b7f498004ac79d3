"""Tiny synthetic clips and an independent VMAF measurement, for the compress_videos tests."""

from __future__ import annotations

import json
import statistics
import subprocess
from pathlib import Path

import imageio_ffmpeg

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def make_clip(path: Path, size: str = "160x120", seconds: float = 2.0, rate: int = 25) -> Path:
    """Two scenes: testsrc2 (sharp, moving) then mandelbrot (fine detail), ``seconds`` each."""
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = (
        f"testsrc2=size={size}:rate={rate}:duration={seconds}[a];"
        f"mandelbrot=size={size}:rate={rate},trim=duration={seconds},setpts=PTS-STARTPTS[b];"
        "[a][b]concat=n=2:v=1[v]"
    )
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-filter_complex", graph,
         "-map", "[v]", "-c:v", "libx264", "-crf", "8", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


def make_flat(path: Path, size: str = "160x120", seconds: float = 1.2) -> Path:
    """A still grey picture: even CRF 51 at the lowest rung stays near VMAF 100."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"color=c=gray:size={size}:rate=25:duration={seconds}",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


def vmaf_frames(distorted: Path, reference: Path, log: Path) -> list[float]:
    """Per-frame VMAF (vmaf_v0.6.1, every frame), measured here, not by the package."""
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-i", str(distorted), "-i", str(reference),
         "-lavfi", f"[0:v][1:v]libvmaf=log_fmt=json:log_path={log}", "-f", "null", "-"],
        check=True,
    )  # fmt: skip
    data = json.loads(log.read_text(encoding="utf-8"))
    return [float(f["metrics"]["vmaf"]) for f in data["frames"]]


def frame_count(path: Path) -> int:
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    return int(frames)


def mean(values: list[float]) -> float:
    return statistics.fmean(values)
