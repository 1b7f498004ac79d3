"""Names of the files a snapshot lists, shared by the pipeline that stores them and the code
that writes them back (``latest/``, ``restore``).

Listings are stored per participant, raw: results exactly as the server sent them (their
``user_feedback`` untouched), feedback, the schedule. The files people open are derived from
them the way ``download-results`` and ``download-schedule --mode json`` derive theirs, so a
restore is byte-identical to what those commands wrote from the same server state.
"""

from __future__ import annotations

from ..ids import id_file_name

MEDIA = "media_files"
"""The server's videos as last verified (a storage side, and what the store records)."""
VERSIONS = "media_versions"
"""Old copies of videos that changed on the server, ``<run time>/<video path>``."""
TEXT = "text_files"
"""The snapshot store and ``latest/``."""

RESULTS_ALL = "results_all.json"
FEEDBACK_ALL = "results_feedback_all.json"
MISSING_VIDEOS = "missing_videos.json"
UNASSIGNED_RESULTS = "unassigned_results.json"
UNASSIGNED_FEEDBACK = "unassigned_feedback.json"
EXTRA_LISTINGS = (MISSING_VIDEOS, UNASSIGNED_RESULTS, UNASSIGNED_FEEDBACK)
"""Listings written as they are (one compact item per line): missing-video reports of the
whole server (one request, kept whole each night), and the rows of a full pass's unfiltered
sweep that no participant's filter returns (orphan accounts, empty ``external_id``)."""


def results_name(external_id: str) -> str:
    """Raise :class:`~longterm_sync.ids.UnsafeIdError` for an id that may not name a file
    (the pipeline never lists one; a store edited by hand must not write outside --to)."""
    return id_file_name("results_{}.json", external_id)


def feedback_name(external_id: str) -> str:
    return id_file_name("results_feedback_{}.json", external_id)


def schedule_name(external_id: str) -> str:
    return id_file_name("schedule_{}.json", external_id)
