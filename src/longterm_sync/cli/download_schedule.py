"""``longterm download-schedule``: stored schedules as JSON files, and the videos."""

from __future__ import annotations

import argparse
from functools import partial

from ..pipelines.schedules import ScheduleOptions, run_download_schedule
from ..summary import Summary
from .common import Context, add_output_arguments, add_server_arguments, pick_path
from .reporters import ByteBar
from .selection import SELECTION_HELP, add_selection_arguments, selection_for

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

--mode video mirrors the server's media folder into --video_path over SFTP: every file is
checked against its .md5sum before it gets its final name, unchanged files are skipped, and
the md5 list is printed in md5sum's format. Videos gone from the server are kept unless
--delete; even then, a video at or below an entry the server's listing had that this run
refused (a symlink, a bad name) is kept. video+json (the default) does both.

{SELECTION_HELP}"""
EXAMPLES = """\
  longterm download-schedule --mode=json
  longterm download-schedule --mode=json --server=prod \\
      --user_time=,,,2021-12-30T00:00:00,2022-01-31T23:59:59
  python scripts/download-schedule.py --key ~/.ssh/media@my.custom.server --server=dev \\
      --mode=video+json ./videos_from_server
  python scripts/download-schedule.py --server=https://my.custom.server --key=./my_custom_key \\
      --token=abcdefgh0123456789abcdef0123456789abcdef
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "video_pos",
        nargs="?",
        default=None,
        metavar="video_path",
        help=f"where the videos go (default: {DEFAULT_VIDEO_PATH})",
    )
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
        default=None,
        dest="video_path",
        metavar="VIDEO_PATH",
        help="same as the video_path positional",
    )
    group.add_argument(
        "--delete",
        action="store_true",
        help="with a video mode: delete local videos that are gone from the server "
        "(default: keep them)",
    )
    group.add_argument(
        "--accept-new-host-key",
        action="store_true",
        help="trust and record an unknown SSH host key (like OpenSSH accept-new); a changed "
        "key is always an error",
    )
    add_selection_arguments(parser)
    add_output_arguments(parser)


def run(ctx: Context) -> int:
    video_path = pick_path(
        ctx.args.video_pos, ctx.args.video_path, "the video folder", DEFAULT_VIDEO_PATH
    )
    mode = ctx.args.mode
    profile = ctx.ssh_profile if "video" in mode else ctx.profile  # ask before anything runs
    summaries: list[Summary] = []
    folders = [ctx.output_dir] if "json" in mode else []
    deep = [video_path] if "video" in mode else []
    bar = partial(ByteBar, "downloading videos")
    with ctx.locked([*folders, *deep], deep=deep), ctx.reporting(bar) as reporter:
        if "json" in mode:
            profile.require_token()
            selection = selection_for(ctx)
            options = ScheduleOptions(output_dir=ctx.output_dir, selection=selection)
            summaries.append(
                ctx.run_async(
                    run_download_schedule(profile, ctx.config.limits, options, reporter=reporter)
                )
            )
        if "video" in mode:
            from ..media import mirror_down  # SSH's imports only when videos are asked for

            videos = ctx.run_async(
                mirror_down(
                    profile,
                    ctx.config.limits,
                    video_path,
                    delete=ctx.args.delete,
                    accept_new_host_key=ctx.args.accept_new_host_key,
                    reporter=reporter,
                )
            )
            for rel, md5 in videos.details.get("md5", {}).items():  # md5sum's format
                ctx.echo(f"{md5}  {video_path / rel}")
            summaries.append(videos)
    return ctx.render(Summary.merged(NAME, summaries))
