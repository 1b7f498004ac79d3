"""``longterm download-results``: watch results and feedback as JSON files."""

from __future__ import annotations

import argparse
from functools import partial

from ..pipelines.results import MODES, ResultsOptions, run_download_results
from .common import Context, add_output_arguments, add_server_arguments
from .reporters import ItemBar
from .selection import SELECTION_HELP, add_selection_arguments, selection_for

NAME = "download-results"
ORDER = 30
HELP = "download results and feedback of the selected participants as JSON files"
DESCRIPTION = f"""\
Download the watch results and the feedback comments of the selected participants and write,
into --output-dir (default: the current folder):

  results_feedback_all.json          all feedback combined
  results_feedback_{{external_id}}.json one participant's feedback, sorted by date
  results_all.json                   all results combined
  results_{{external_id}}.json         one participant's results, sorted by date

In each result, user_feedback is rebuilt locally as the list of all that participant's
feedback for the same video in the requested range (the server's field holds only the first
one). The *_all files hold the participants in selection order, each sorted by date; a
participant that failed this run is there with its kept file's content (listed as stale, or
as missing when there is none).

Format: a UTF-8 JSON array with one compact item per line, keys and numbers exactly as the
server sent them (non-ASCII unescaped); `jq .` pretty-prints it. Each file is written to a
temporary name and renamed when complete, so an interrupted run leaves no partial file.

Each participant's range is fetched in windows of [limits] window_days days (default 31), a
few requests in parallel ([limits] rest_concurrency). Failed requests are retried; a
participant that still fails is named at the end and the others are written (exit status 1).

{SELECTION_HELP}"""
EXAMPLES = """\
  longterm download-results                                   # dev server, everything
  longterm download-results --mode=results --server=prod
  longterm download-results --server=prod --user_time=,,,2021-12-30T00:00:00,2022-01-31T23:59:59
  longterm download-results --external_id_time=342afb0b...2568,2022-01-01,2022-01-31
  python scripts/download-results.py --server=https://my.custom.server --key=./my_custom_key \\
      --token=abcdefgh0123456789abcdef0123456789abcdef
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_arguments(parser)
    group = parser.add_argument_group("download")
    group.add_argument(
        "--mode",
        nargs="?",
        const="feedback+results",
        default="feedback+results",
        choices=MODES,
        metavar="MODE",
        help="{feedback,results,feedback+results}: which files to write "
        "(default: feedback+results)",
    )
    add_selection_arguments(parser)
    add_output_arguments(parser)


def run(ctx: Context) -> int:
    profile = ctx.profile
    profile.require_token()
    selection = selection_for(ctx)
    options = ResultsOptions(output_dir=ctx.output_dir, selection=selection, mode=ctx.args.mode)
    bar = partial(ItemBar, "downloading", NAME)
    with ctx.locked([ctx.output_dir]), ctx.reporting(bar) as reporter:
        summary = ctx.run_async(
            run_download_results(profile, ctx.config.limits, options, reporter=reporter)
        )
    return ctx.render(summary)
