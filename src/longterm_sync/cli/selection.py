"""Turning the selection flags into a :class:`~longterm_sync.select.Selection` for a command.

Not a command itself (no ``NAME``): the report commands share it so that every one of them
parses, warns and prints the skipped-rows table the same way.
"""

from __future__ import annotations

import logging
from datetime import datetime

from ..select import Selection, selection_from_args, skipped_table
from .common import Context

log = logging.getLogger("longterm_sync.cli")


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
