"""``longterm upload-schedule``: videos and schedule JSONs to the platform, with a merge plan."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date
from functools import partial

from ..errors import UsageError
from ..events import ItemDone
from ..merge_plan import MergePlan
from ..pipelines.upload import UploadOptions, run_upload
from .common import Context, add_output_arguments, add_server_arguments, can_ask, pick_path
from .reporters import ByteBar

NAME = "upload-schedule"
ORDER = 10
HELP = "upload videos (with .md5sum sidecars) and schedule JSONs; prints the merge plan first"
DESCRIPTION = """\
Upload the videos below video_path (subfolders kept, each with a <video>.md5sum sidecar
written locally; videos whose remote sidecar already matches are skipped) and every *.json
schedule in jsons_path.

Every schedule file is validated completely before anything is sent: a broken file names its
line and column; required keys; start/end ISO datetimes with a time part, end after start;
reply_form types MOS, TEXT, QUALTRICS (QUALTRICS last); every referenced video present locally
or on the server. external_id is taken from the file or computed as the salted hash of
name+surname+phone; name, surname and phone are never sent. An invalid file is skipped (and
no account is created for it), the others proceed, and the exit status is 1.

For each participant the merge plan is printed per entry, by the server's rule: append,
overwrite, unchanged, ignored: in the past, ignored: sooner than today+2 (a new participant's
schedule is stored whole). --dry-run stops after the plan. --server=prod asks [y/N] first
unless --yes is given.
"""
EXAMPLES = """\
  longterm upload-schedule --server=dev ./upload_schedule_v01/videos/ ./upload_schedule_v01
  longterm upload-schedule --server=prod --video_path=./custom_videos/ --jsons_path=./custom_jsons/
  longterm upload-schedule --dry-run --server=prod            # plan only, nothing is sent
  python scripts/upload-schedule.py --server=https://my.custom.server --key=./my_custom_key \\
      --token=abcdefgh0123456789abcdef0123456789abcdef
"""

DEFAULT_VIDEO_PATH = "./videos/"
DEFAULT_JSONS_PATH = "./"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "video_pos",
        nargs="?",
        default=None,
        metavar="video_path",
        help="location of video files, subfolders allowed (default: ./videos/)",
    )
    parser.add_argument(
        "jsons_pos",
        nargs="?",
        default=None,
        metavar="jsons_path",
        help="location of schedule *.json files, flat (default: ./)",
    )
    group = parser.add_argument_group("upload")
    group.add_argument(
        "--video_path",
        "--video-path",
        dest="video_opt",
        default=None,
        metavar="DIR",
        help="same as the video_path positional",
    )
    group.add_argument(
        "--jsons_path",
        "--jsons-path",
        dest="jsons_opt",
        default=None,
        metavar="DIR",
        help="same as the jsons_path positional",
    )
    group.add_argument(
        "--dry-run",
        "--dry_run",
        dest="dry_run",
        action="store_true",
        help="validate and print the merge plan, send nothing",
    )
    group.add_argument(
        "-y", "--yes", action="store_true", help="do not ask before uploading to --server=prod"
    )
    group.add_argument(
        "--verify",
        choices=("md5", "size", "full"),
        default="md5",
        help="how an uploaded video is verified before its final name: remote md5sum, "
        "size only, or size plus a read-back (default: md5)",
    )
    group.add_argument(
        "--accept-new-host-key",
        action="store_true",
        help="trust and record an unknown SSH host key (like OpenSSH accept-new); a changed "
        "key is always an error",
    )
    group.add_argument(
        "--today",
        type=_parse_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="the server's date for the merge plan (default: today in the profile's timezone); "
        "set it when the server's clock is pinned, e.g. a sandbox",
    )
    add_server_arguments(parser)
    add_output_arguments(parser, output_dir=False)


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {value!r}") from None


def _plan_lines(verbose: bool) -> Callable[[ItemDone], tuple[list[str], list[str]]]:
    """A planned schedule's lines: the plan in full with ``-v`` (the pipeline's event holds
    it collapsed), its warnings as notices; other items as they come."""

    def lines_of(event: ItemDone) -> tuple[list[str], list[str]]:
        if not verbose or not isinstance(event.data, MergePlan):
            return list(event.lines), list(event.notices)
        lines = event.data.lines(event.item, collapse=False)
        warning = [line for line in lines if line.startswith("  warning:")]
        return [line for line in lines if not line.startswith("  warning:")], warning

    return lines_of


def _ask(question: str) -> bool:
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = sys.stdin.readline()
    except (OSError, ValueError):
        return False
    return answer.strip().lower() in ("y", "yes")


def run(ctx: Context) -> int:
    args = ctx.args
    options = UploadOptions(
        video_path=pick_path(args.video_pos, args.video_opt, "video_path", DEFAULT_VIDEO_PATH),
        jsons_path=pick_path(args.jsons_pos, args.jsons_opt, "jsons_path", DEFAULT_JSONS_PATH),
        dry_run=args.dry_run,
        verify=args.verify,
        accept_new_host_key=args.accept_new_host_key,
        today=args.today,
    )
    profile = ctx.profile
    profile.require_token()
    profile = ctx.ssh_profile
    confirm = None
    if profile.is_production and not args.dry_run and not args.yes:
        if not can_ask():
            raise UsageError(
                f"refusing to upload to the production server {profile.url} without "
                "confirmation: stdin is not a terminal",
                hint="pass --yes to confirm non-interactively, or --dry-run to see the plan",
            )
        confirm = _ask
    bar = partial(ByteBar, "uploading videos")
    lines_of = _plan_lines(getattr(args, "verbose", 0) > 0)
    # the sidecars are written beside the videos: no second run may write them too
    with (
        ctx.locked([options.video_path] if options.video_path.is_dir() else []),
        ctx.reporting(bar, lines_of=lines_of) as reporter,
    ):
        summary = ctx.run_async(
            run_upload(profile, ctx.config.limits, options, reporter=reporter, confirm=confirm)
        )
    return ctx.render(summary)
