"""``longterm download-schedule``: stored schedules as JSON files, and the videos."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import Limits, ServerProfile
from ..errors import UsageError
from ..pipelines.schedules import ScheduleOptions, run_download_schedule
from ..select import SELECTION_HELP, add_selection_arguments
from ..summary import Summary
from .common import Context, add_output_arguments, add_server_arguments
from .selection import selection_for

NAME = "download-schedule"
ORDER = 20
HELP = "download the selected participants' schedules (JSON) and/or the videos, for backup"
MODES = ("video", "json", "video+json")
DEFAULT_VIDEO_PATH = "./video_from_server/"
DESCRIPTION = f"""\
Download what the platform holds for backup and verification.

--mode json writes schedule_{{external_id}}.json per selected participant into --output-dir:
the stored schedule object, its entry list narrowed to the entries whose start lies in the
requested range (start inclusive, stop exclusive; a date-only stop covers that whole day).
Files are UTF-8 JSON indented by 2 spaces, written atomically. A selected participant the
server has no schedule for is named at the end (exit status 1).

--mode video mirrors the server's media folder into --video_path over SFTP; video+json (the
default) does both.

{SELECTION_HELP}"""
EXAMPLES = """\
  longterm download-schedule --mode=json
  longterm download-schedule --mode=json --server=prod \\
      --user_time=,,,2021-12-30T00:00:00,2022-01-31T23:59:59
  longterm download-schedule --server=dev --mode=video+json --video_path=./videos_from_server
  python scripts/download-schedule.py --server=https://my.custom.server --key=./my_custom_key \\
      --token=abcdefgh0123456789abcdef0123456789abcdef
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_arguments(parser)
    group = parser.add_argument_group("download")
    group.add_argument(
        "--mode",
        nargs="?",
        const="video+json",
        default="video+json",
        choices=MODES,
        metavar="MODE",
        help="{video,json,video+json}: download videos and/or schedule JSONs (default: video+json)",
    )
    group.add_argument(
        "--video_path",
        "--video-path",
        nargs="?",
        const=DEFAULT_VIDEO_PATH,
        default=DEFAULT_VIDEO_PATH,
        dest="video_path",
        metavar="VIDEO_PATH",
        help=f"where the videos go (default: {DEFAULT_VIDEO_PATH})",
    )
    add_selection_arguments(parser)
    add_output_arguments(parser)


async def mirror_videos(profile: ServerProfile, limits: Limits, dest: Path) -> Summary:
    """The one call site of the media mirror for this command."""
    raise UsageError(
        "video mirroring is not available yet in download-schedule",
        hint="use --mode=json",
    )


def run(ctx: Context) -> int:
    profile = ctx.profile
    mode = ctx.args.mode
    summaries: list[Summary] = []
    if "json" in mode:
        profile.require_token()
        selection = selection_for(ctx)
        options = ScheduleOptions(output_dir=ctx.output_dir, selection=selection)
        summaries.append(ctx.run_async(run_download_schedule(profile, ctx.config.limits, options)))
    if "video" in mode:
        dest = Path(ctx.args.video_path)
        summaries.append(ctx.run_async(mirror_videos(profile, ctx.config.limits, dest)))
    return ctx.render(merge_summaries(summaries))


def merge_summaries(summaries: list[Summary]) -> Summary:
    """One summary for the JSON and video parts (counts of the video part prefixed)."""
    merged = Summary(command=NAME)
    for part in summaries:
        prefix = "" if part.command == NAME else f"{part.command} "
        for key, value in part.counts.items():
            merged.count(prefix + key, value)
        merged.bytes += part.bytes
        merged.elapsed_s += part.elapsed_s
        merged.files.extend(part.files)
        merged.failures.extend(part.failures)
        merged.warnings.extend(part.warnings)
        merged.details.update(part.details)
    return merged
