"""Run the wheel's ffmpeg as an asyncio subprocess that dies with its caller.

A cancelled run (Ctrl-C, another scene failing in the same TaskGroup) must not leave ffmpeg
processes writing into the work folder after Python has cleaned it up, so cancellation kills
the child and waits for it before re-raising.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..errors import InputFileError, LongtermError, Scope, UsageError


class FfmpegError(LongtermError):
    """ffmpeg exited non-zero; ``str()`` is its last meaningful stderr line. It fails the
    one video being compressed (``Scope.ITEM``); the run goes on with the others."""

    scope = Scope.ITEM


@functools.cache
def ffmpeg_exe() -> str:
    """The ffmpeg binary shipped in the imageio-ffmpeg wheel (no system ffmpeg needed)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise UsageError(
            "imageio-ffmpeg is not installed", hint="pip install imageio-ffmpeg"
        ) from None
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:
        raise UsageError(f"no ffmpeg binary: {exc}") from None


def last_line(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(("Exiting", "Conversion failed"))]
    return (useful or lines or ["(no message)"])[-1][:300]


async def run_ffmpeg(args: list[str], *, stdout: bool = False) -> tuple[bytes, bytes]:
    """Run ffmpeg with ``args``; raise :class:`FfmpegError` on a non-zero exit."""
    proc = await asyncio.create_subprocess_exec(
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE if stdout else asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await proc.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.shield(proc.wait())
        raise
    if proc.returncode != 0:
        raise FfmpegError(f"ffmpeg: {last_line(err)}")
    return out or b"", err


@dataclass(frozen=True)
class SourceInfo:
    """What the search needs to know about a source video (constant frame rate assumed)."""

    width: int
    height: int
    fps: Fraction
    frames: int
    cuts: tuple[int, ...]  # frame numbers where scdet saw a new scene start

    @property
    def duration(self) -> float:
        return float(self.frames / self.fps)

    def seconds(self, frame: int) -> float:
        return float(frame / self.fps)


_VIDEO = re.compile(r"Stream #\d+:\d+.*?: Video: .*?(\d{2,5})x(\d{2,5})")
_FPS = re.compile(r"(\d+(?:\.\d+)?)(k?) (?:fps|tbr)")
_FRAME = re.compile(r"^frame:(\d+)\s")


async def probe(path: Path, work: Path, threshold: float) -> SourceInfo:
    """One decoding pass: size and rate from ffmpeg's stream line, frames and cuts from scdet.

    Anything that is not a readable video is bad input (exit 2), found before any encoding.
    """
    meta = work / f"{path.stem}.scdet.txt"
    escaped = str(meta).replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")
    try:
        _, err = await run_ffmpeg(
            ["-i", str(path), "-map", "0:v:0", "-vf",
             f"scdet=threshold={threshold},metadata=mode=print:file='{escaped}'",
             "-f", "null", "-"]
        )  # fmt: skip
    except FfmpegError as exc:
        raise InputFileError(f"{path.name}: not a readable video ({exc})") from None
    text = err.decode("utf-8", "replace")
    size = _VIDEO.search(text)
    if size is None:
        raise InputFileError(f"{path.name}: has no video stream")
    line = next(ln for ln in text.splitlines() if _VIDEO.search(ln))
    rate = _FPS.search(line)
    if rate is None:
        raise InputFileError(f"{path.name}: frame rate unknown (not a constant-rate video?)")
    fps = Fraction(rate.group(1)) * (1000 if rate.group(2) else 1)
    fps = _common_rate(fps)
    frames, cuts = await asyncio.to_thread(_read_cuts, meta)
    if frames < 2:
        raise InputFileError(f"{path.name}: fewer than 2 video frames")
    return SourceInfo(int(size.group(1)), int(size.group(2)), fps, frames, tuple(cuts))


def _read_cuts(meta: Path) -> tuple[int, list[int]]:
    """Blocking: scdet's metadata (a few lines per frame): the frame count and the cuts."""
    frames = 0
    cuts: list[int] = []
    current = -1
    try:
        text = meta.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for row in text.splitlines():
        match = _FRAME.match(row)
        if match:
            current = int(match.group(1))
            frames = max(frames, current + 1)
        elif row.startswith("lavfi.scd.time=") and current > 0:
            cuts.append(current)
    meta.unlink(missing_ok=True)
    return frames, cuts


def _common_rate(fps: Fraction) -> Fraction:
    """ffmpeg prints 29.97 for 30000/1001: map the usual NTSC rates back to exact fractions."""
    for exact in (Fraction(24000, 1001), Fraction(30000, 1001), Fraction(60000, 1001)):
        if abs(float(exact) - float(fps)) < 0.005:
            return exact
    return fps.limit_denominator(1001)
