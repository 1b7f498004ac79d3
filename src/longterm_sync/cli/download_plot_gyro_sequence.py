"""``longterm download-plot-gyro-sequence``: sensor figures of one participant's viewings."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..analysis import plots
from ..pipelines.analysis import PlotOptions, run_plot_gyro
from .analysis_flags import add_source_arguments, source_for
from .common import Context
from .selection import SELECTION_HELP

NAME = "download-plot-gyro-sequence"
ORDER = 45
HELP = "sensor figures of one participant's viewings (gyroscope, accelerometer, playback)"
DESCRIPTION = f"""\
Fetch the results and feedback of ONE participant and draw one figure per viewing:
gyroscope x/y/z and accelerometer x/y/z (red/green/blue) against seconds since the first
sample, on fixed ranges (gyro +-2.5 rad/s, acc +-1.2 g), over a thin playback strip (playing,
brightness, fullscreen). The title holds the study date, the video and every feedback comment
on that video with its date (matched by video name; several are possible). A viewing without
gyroscope or accelerometer data is skipped with a line saying why.

For every viewing, prints the accelerometer's x/y/z medians and standard deviations after
the first max(10 %, 3 s) of samples (while the phone is being picked up or put down).

With a display and a GUI toolkit (Qt, Tk or GTK), and without --save, the figures open one
window after another: close the current one to see the next, as the original script did.
Otherwise (or with --save DIR) each is written to DIR (default: the current folder) as
{{external_id}}_{{date}}_{{video}}.png (--format pdf or svg), with
{{external_id}}_contact_sheet.png showing all of them. Figures are drawn in [limits]
plot_processes processes, a few viewings in memory at a time.

This activity doesn't work for wildcard --user_time=",,,," or a selection naming several
participants: it is refused with one line. --from DIR reads a download-results folder (or a
backup's text_files/latest/) instead of the server.

{SELECTION_HELP}"""
EXAMPLES = """\
  python scripts/download-plot-gyro-sequence.py --server=dev \\
      --user_time=Name,surname,006006006,2021-12-30T00:00:00,2022-01-31T23:59:59
  longterm download-plot-gyro-sequence --server=prod --external_id_time=342afb0b... --save figs
  longterm download-plot-gyro-sequence --from ./results --external_id_time=342afb0b... --format pdf
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser, xlsx=None, output_dir=False)
    group = parser.add_argument_group("figures")
    group.add_argument(
        "--save",
        default=None,
        metavar="DIR",
        help="write the figures into DIR instead of opening windows",
    )
    group.add_argument(
        "--format",
        choices=plots.FORMATS,
        default="png",
        help="file format of saved figures (default: png)",
    )


def run(ctx: Context) -> int:
    args = ctx.args
    interactive = args.save is None and plots.interactive_backend() is not None
    folder = Path(args.save or ".")
    options = PlotOptions(
        source=source_for(ctx), output_dir=folder, fmt=args.format, interactive=interactive
    )
    if interactive:
        result = ctx.run_async(run_plot_gyro(ctx.profile, ctx.config.limits, options))
    else:
        with ctx.locked([folder]):
            result = ctx.run_async(run_plot_gyro(ctx.profile, ctx.config.limits, options))
    for line in result.summary.details.get("viewings", []):
        ctx.echo(f"{line['viewing']}: {line['acc']}")
    if result.viewings:
        plots.show_sequence(result.viewings)
    return ctx.render(result.summary)
