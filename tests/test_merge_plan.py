"""The client's own copy of the server's merge rule (checked against the sandbox elsewhere)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from longterm_sync.merge_plan import Action, plan_merge, results_match, start_date
from upload_helpers import (
    API_MD_ACTIONS,
    API_MD_RESULT,
    API_MD_STORED,
    API_MD_UPLOAD,
    entry,
    relative_days,
    schedule,
)

TODAY = date(2026, 12, 1)


def doc(offsets: list[int], eid: str = "p1", video: str = "subset1/clip_A.mp4") -> dict[str, Any]:
    data = schedule(relative_days(TODAY, offsets), external_id=eid, video=video)
    for key in ("name", "surname", "phone"):
        data.pop(key)
    return data


def starts(entries: list[dict[str, Any]]) -> list[int]:
    return [(start_date(e["start"]) - TODAY).days for e in entries]


def test_api_md_example() -> None:
    stored = doc(API_MD_STORED)
    upload = doc(API_MD_UPLOAD, video="subset1/clip_B.mp4")
    plan = plan_merge(stored, upload, TODAY)
    assert [e.action for e in plan.entries] == API_MD_ACTIONS
    assert starts(plan.result) == API_MD_RESULT
    videos = [e["service"][0]["video"] for e in plan.result]
    assert (
        videos
        == ["subset1/clip_A.mp4"] * 3
        + ["subset1/clip_B.mp4"]
        + ["subset1/clip_A.mp4"]
        + ["subset1/clip_B.mp4"] * 2
    )
    assert plan.stored_count == 5 and plan.changes == 3
    assert not plan.new_participant


def test_identical_entry_is_unchanged() -> None:
    stored = doc([2, 3])
    plan = plan_merge(stored, doc([2, 3]), TODAY)
    assert [e.action for e in plan.entries] == [Action.UNCHANGED, Action.UNCHANGED]
    assert plan.changes == 0 and plan.result == stored["schedule"]


def test_new_participant_keeps_everything_even_the_past() -> None:
    plan = plan_merge(None, doc([-3, 0, 5]), TODAY)
    assert plan.new_participant
    assert [e.action for e in plan.entries] == [Action.NEW] * 3
    assert plan.entries[0].note == "in the past, stored anyway"
    assert starts(plan.result) == [-3, 0, 5]


def test_offset_spelling_does_not_match_naive_start() -> None:
    stored = doc([3])
    upload = doc([])
    upload["schedule"] = [entry(TODAY + timedelta(days=3), offset="+01:00")]
    plan = plan_merge(stored, upload, TODAY)
    assert plan.entries[0].action is Action.APPEND
    assert "already has an entry" in plan.entries[0].note
    assert len(plan.result) == 2


def test_date_is_read_in_the_strings_own_offset() -> None:
    # The server compares the date as written, whatever day it is in Warsaw at that moment.
    cases = [
        ("2026-12-03T00:30:00+05:00", Action.APPEND),  # Dec 2 in Warsaw, Dec 3 written
        ("2026-12-02T23:30:00-05:00", Action.IGNORED_SOON),  # Dec 3 in Warsaw, Dec 2 written
        ("2026-12-03T00:30:00+14:00", Action.APPEND),
        ("2026-12-02T23:59:59+01:00", Action.IGNORED_SOON),
    ]
    for start, expected in cases:
        upload = doc([])
        upload["schedule"] = [entry(TODAY + timedelta(days=3))]
        upload["schedule"][0]["start"] = start
        assert plan_merge(doc([]), upload, TODAY).entries[0].action is expected, start


def test_boundaries_today_plus_one_and_two() -> None:
    plan = plan_merge(doc([]), doc([-1, 0, 1, 2]), TODAY)
    assert [e.action for e in plan.entries] == [
        Action.IGNORED_PAST,
        Action.IGNORED_SOON,
        Action.IGNORED_SOON,
        Action.APPEND,
    ]


def test_stored_entries_are_never_deleted() -> None:
    stored = doc([-10, 4, 9])
    plan = plan_merge(stored, doc([6]), TODAY)
    assert starts(plan.result) == [-10, 4, 9, 6]


def test_orphan_account_is_flagged() -> None:
    plan = plan_merge({}, doc([5]), TODAY)
    assert not plan.new_participant
    assert any("invisible" in w for w in plan.warnings)


def test_plan_lines_and_dict() -> None:
    plan = plan_merge(doc([-4, 5]), doc([-4, 0, 5, 7]), TODAY)
    lines = plan.lines("user_001.json")
    assert lines[0].startswith("participant p1 (user_001.json): 2 entries stored; today 2026-12-01")
    assert "entries from 2026-12-03 are used" in lines[0]
    assert lines[1].endswith("ignored: in the past")
    assert "ignored: sooner than today+2" in lines[2]
    assert lines[3].endswith("unchanged") and lines[4].endswith("append")
    assert lines[5].startswith("  = 1 ignored: in the past, 1 ignored: sooner than today+2")
    data = plan.to_dict()
    assert data["stored_after"] == 3 and data["entries"][3]["action"] == "append"


def test_results_match() -> None:
    plan = plan_merge(doc([1]), doc([3]), TODAY)
    assert results_match(plan, [dict(e) for e in plan.result])
    assert not results_match(plan, plan.result[:1])
    assert not results_match(plan, {"detail": "x"})


def test_collapsed_lines_fold_long_no_change_runs() -> None:
    plan = plan_merge(doc([3]), doc([-9, -8, -7, -6, -5, 0, 1, 3, 8]), TODAY)
    lines = plan.lines(collapse=True)
    assert lines[1] == (
        "  2026-11-22T00:00:00 .. 2026-11-26T00:00:00  ignored: in the past (5 entries)"
    )
    assert lines[2].endswith("ignored: sooner than today+2")  # a run of 2 stays itemised
    assert lines[3].endswith("ignored: sooner than today+2")
    assert lines[4].endswith("unchanged") and lines[5].endswith("append")
    assert len(plan.lines()) == 1 + 9 + 1


def test_changed_language_or_comments_of_an_existing_participant_is_announced() -> None:
    stored = doc([3])
    upload = {**doc([3, 4]), "language": "NO", "comments": "second cohort"}
    plan = plan_merge(stored, upload, TODAY)
    assert len(plan.warnings) == 2
    assert plan.warnings[0] == (
        "language 'NO' differs from the stored 'PL': the server keeps the stored language "
        "(only entries merge)"
    )
    assert plan.warnings[1].startswith("comments 'second cohort' differs from the stored ''")
    assert "  warning: language 'NO' differs" in "\n".join(plan.lines())
    assert plan_merge(stored, doc([3, 4]), TODAY).warnings == ()  # the same: nothing said
    assert plan_merge(None, upload, TODAY).warnings == ()  # a new participant stores them
