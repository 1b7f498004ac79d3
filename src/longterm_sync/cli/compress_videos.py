"""``longterm compress_videos``: each input video to its target VMAF, scene by scene."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import UsageError
from ..events import Event, ItemDone, Tee
from ..pipelines.compress import CompressOptions, ProbeDone, run_compress_videos
from ..video.compress import SearchSettings
from ..video.encode import Codec, VmafModel
from .argtypes import positive_float, positive_int
from .common import Context, add_output_arguments

NAME = "compress_videos"
ORDER = 12
HELP = "compress each <VMAF>_<name>.mp4 to its target VMAF, searching CRF per scene"
DESCRIPTION = """\
Compress every video of --input-dir to the VMAF its name starts with (60_avatar.mp4: VMAF 60;
99 means 100), scene by scene, with the ffmpeg of the imageio-ffmpeg package (libx264,
libvmaf, scdet; no system ffmpeg needed).

Scenes are found with ffmpeg's scdet (--scene-threshold; scenes shorter than --min-scene are
merged into their neighbour). For each scene CRF is searched: a first guess, then
interpolation between measured (CRF, VMAF) points, stopping within --tolerance; when even
CRF 51 stays above the target the scene is scaled down to a lower detail resolution (2/3, 1/2,
1/3, 1/4; the frame size of the output never changes). Probes of scenes of 3 s or more measure
every --probe-subsample-th frame, and the pick is measured again on every frame before it is
taken; shorter scenes are measured on every frame. Scenes are encoded and measured in
parallel, --jobs ffmpeg processes at a time. The chosen encodes are joined without
re-encoding (concat demuxer; the source's audio copied), and the final file is measured
against the source on every frame: those are the numbers of the report.

--output-dir receives <input>.mp4 (the compressed video), <input>.source.mp4 (the source) and
<input>.json: file_name, target_vmaf, vmaf (overall), and per scene start, end, resolution,
crf, vmaf, encodes, reached and, for a target that could not be reached, the reason and the
closest VMAF. Every measured probe is cached in --output-dir/.compress-cache/ (keyed by the
source's content, the scene, resolution, CRF, encoder and model): the same source compressed
to another target, now or in a later run, reuses them (the report counts encodes run and
probes reused apart). Outputs get their final names only when complete; Ctrl-C leaves none
half-written. A video whose compression fails is listed at the end (exit status 1).
"""
EXAMPLES = """\
  longterm compress_videos                       # ./files_to_compress -> ./created_files
  longterm compress_videos --input-dir clips --output-dir out --jobs 4 --tolerance 0.5
  python scripts/compress_videos.py --phone-model
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("compression")
    group.add_argument(
        "--input-dir",
        "--input_dir",
        dest="input_dir",
        default="./files_to_compress",
        metavar="DIR",
        help="videos named <VMAF>_<name>.mp4 (default: ./files_to_compress)",
    )
    group.add_argument(
        "--output-dir",
        "--output_dir",
        dest="output_dir",
        default="./created_files",
        metavar="DIR",
        help="compressed videos, source copies and JSON reports (default: ./created_files)",
    )
    group.add_argument(
        "--jobs",
        type=positive_int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="ffmpeg processes at a time (default: the number of CPUs)",
    )
    group.add_argument(
        "--tolerance",
        type=positive_float,
        default=1.0,
        metavar="VMAF",
        help="stop a scene's search within this distance of the target (default: 1.0)",
    )
    group.add_argument(
        "--phone-model",
        "--phone_model",
        dest="phone_model",
        action="store_true",
        help="VMAF's phone model (the score transform for phone screens), as the original used",
    )
    group.add_argument(
        "--vmaf-model",
        "--vmaf_model",
        dest="vmaf_model",
        default="vmaf_v0.6.1",
        metavar="MODEL",
        help="a built-in libvmaf model version, or a model .json file (default: vmaf_v0.6.1)",
    )
    group.add_argument(
        "--probe-subsample",
        type=positive_int,
        default=3,
        metavar="N",
        help="search probes measure every N-th frame; the final file every frame (default: 3)",
    )
    group.add_argument(
        "--scene-threshold",
        type=positive_float,
        default=10.0,
        metavar="T",
        help="scdet threshold, 0-100: lower finds more scene changes (default: 10)",
    )
    group.add_argument(
        "--min-scene",
        type=positive_float,
        default=1.0,
        metavar="SECONDS",
        help="shortest scene; shorter ones join their neighbour (default: 1.0)",
    )
    group.add_argument(
        "--preset",
        default="medium",
        choices=("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"),
        help="x264 preset of every encode (default: medium)",
    )
    group.add_argument(
        "--config",
        default=None,
        metavar="PATH",
        help="accepted for symmetry with the other commands; nothing here needs a server",
    )
    add_output_arguments(parser, output_dir=False)


def run(ctx: Context) -> int:
    args = ctx.args
    if args.scene_threshold > 100:
        raise UsageError("--scene-threshold must be at most 100")
    settings = SearchSettings(
        jobs=args.jobs,
        tolerance=args.tolerance,
        model=VmafModel(args.vmaf_model, phone=args.phone_model),
        probe_subsample=args.probe_subsample,
        min_scene_s=args.min_scene,
        codec=Codec(preset=args.preset),
    )
    output = Path(args.output_dir)
    options = CompressOptions(
        input_dir=Path(args.input_dir),
        output_dir=output,
        settings=settings,
        scene_threshold=args.scene_threshold,
    )
    show = not args.quiet and not args.json

    class ProbeLines:
        """The probes' progress lines on stderr as they come (flushed: a run takes minutes
        per file); the per-file tables go to stdout with the other detail lines."""

        def emit(self, event: Event) -> None:
            if show and isinstance(event, ItemDone) and isinstance(event.data, ProbeDone):
                for line in event.lines:
                    print(line, file=sys.stderr, flush=True)

    def lines_of(event: ItemDone) -> tuple[list[str], list[str]]:
        if isinstance(event.data, ProbeDone):
            return [], []
        return list(event.lines), list(event.notices)

    with ctx.locked([output]), ctx.reporting(lines_of=lines_of) as reporter:
        summary = ctx.run_async(
            run_compress_videos(options, reporter=Tee([reporter, ProbeLines()]))
        )
    return ctx.render(summary)
