"""The selection flags and turning them into a :class:`~longterm_sync.select.Selection`.

Not a command itself (no ``NAME``): the report commands share it so that every one of them
has the same flags, parses, warns and prints the skipped-rows table the same way. The rules
(what a value means, who the server knows) are :mod:`longterm_sync.select`'s; argparse is
only here.
"""

from __future__ import annotations

import argparse
import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from ..select import Selection, parse_selection, skipped_table
from .common import Context

log = logging.getLogger("longterm_sync.cli")

SELECTION_HELP = """\
PARTICIPANT SELECTION
  With none of the flags below, every participant is covered (accounts without a schedule,
  i.e. orphans of a failed upload, are left out and reported). Priority when several are given:
  --excel_time > --external_id_time > --user_time.
  --user_time "name,surname,phone[,start,stop]"  one participant; the name is hashed locally
  --user_time ",,,start,stop"                   every participant, only results in the range
  --external_id_time "id[,start,stop]"          one participant by external_id
  --excel_time users.xlsx|users.csv             columns external_id,start_date,stop_date;
                                                rows not active today are skipped and listed
  Dates are ISO 8601 in the server's timezone unless they carry an offset; a date-only stop
  includes that whole day. A malformed value stops the run (exit 2) before anything is sent.
"""


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """The three flags, spelled as the original scripts did (``nargs="?"``, ``=`` form)."""
    group = parser.add_argument_group("participant selection (priority: excel > id > user)")
    group.add_argument(
        "--user_time",
        nargs="?",
        const="",
        default=None,
        metavar="USER_TIME",
        help='"name,surname,phone[,start,stop]" one participant, or ",,,start,stop" '
        "every participant in a date range; empty = every participant",
    )
    group.add_argument(
        "--external_id_time",
        nargs="?",
        const="",
        default=None,
        metavar="EXTERNAL_ID_TIME",
        help='"external_id[,start,stop]" one participant by its external_id',
    )
    group.add_argument(
        "--excel_time",
        nargs="?",
        const="",
        default=None,
        metavar="EXCEL_TIME",
        help="participants listed in a .xlsx or .csv file "
        "(columns external_id,start_date,stop_date); rows not active today are skipped",
    )


def selection_from_args(
    args: argparse.Namespace, *, salt: str, tz: ZoneInfo, now: datetime | None = None
) -> Selection:
    """:func:`parse_selection` from the flags :func:`add_selection_arguments` added."""
    return parse_selection(
        getattr(args, "user_time", None),
        getattr(args, "external_id_time", None),
        getattr(args, "excel_time", None),
        salt=salt,
        tz=tz,
        now=now,
    )


def selection_for(ctx: Context, *, now: datetime | None = None) -> Selection:
    """Parse the flags with the profile's salt and timezone; print the skipped rows.

    ``now`` is the moment spreadsheet rows must be active at (default: the real now; a report
    about a past day passes the end of that day). A malformed value raises
    :class:`~longterm_sync.errors.SelectionError` here, before any request is sent.
    """
    profile = ctx.profile
    selection = selection_from_args(ctx.args, salt=profile.salt, tz=profile.tz, now=now)
    for line in skipped_table(selection, profile.tz):
        ctx.notice(line)
    log.debug("selection: %s", selection.describe())
    return selection
