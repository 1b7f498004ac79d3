"""The cell rules of user_activity on hand-built results (pure functions, no server).

The same rules run end to end against the sandbox in test_user_activity.py."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from longterm_sync.pipelines.activity import (
    ActivityTable,
    ParticipantRow,
    answer_part,
    cell_kind,
    pose_part,
    report_bounds,
    report_days,
    row_cells,
    viewing,
    watch_part,
    watched_seconds,
)

TZ = ZoneInfo("Europe/Warsaw")
T0 = datetime(2022, 2, 15, 17, 51, 22, tzinfo=TZ)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def accel(z: list[float], hz: float = 10.0) -> dict[str, Any]:
    stamps = [iso(T0 + timedelta(seconds=i / hz)) for i in range(len(z))]
    return {"x": [0.0] * len(z), "y": [0.0] * len(z), "z": z, "timestamp": stamps}


def result(
    watched_s: float | None = 90.0,
    duration_ms: int = 90_000,
    z: list[float] | None = None,
    q2: Any = True,
    form: Any = None,
) -> dict[str, Any]:
    res: dict[str, Any] = {"video": "clip_A.mp4", "video_duration": duration_ms}
    if watched_s is not None:
        res["playback_started"] = iso(T0)
        res["playback_ended"] = iso(T0 + timedelta(seconds=watched_s))
    if z is not None:
        res["accelerometer_data"] = accel(z)
    if form is None:
        form = {
            "content": [
                {"optional_id": "q1", "answer": {"content": 4}},
                {"optional_id": "q2", "answer": {"content": q2}},
            ]
        }
    res["reply_form"] = form
    return res


@pytest.mark.parametrize(
    ("watched", "expected"),
    [(90.0, "ok"), (93.0, "ok"), (87.0, "ok"), (102.0, "<+12s"), (83.0, ">-7s"), (93.6, "<+4s")],
)
def test_watch_part(watched: float, expected: str) -> None:
    assert watch_part(result(watched), margin=3) == expected


def test_watch_part_falls_back_to_playback_data_span() -> None:
    res = result(None)
    res["playback_data"] = {"timestamp": [iso(T0), iso(T0 + timedelta(seconds=80))]}
    assert watched_seconds(res) == 80.0
    assert watch_part(res, margin=3) == ">-10s"


def test_watch_part_unknown_without_times_or_duration() -> None:
    assert watch_part(result(None), margin=3) == "?"
    assert watch_part(result(90, duration_ms=0), margin=3) == "?"


def test_face_down_after_the_settling_samples() -> None:
    # 10 Hz for 60 s: 10 % (60 samples) is more than the first 3 s (30), so 60 are dropped.
    face_up_start = [0.98] * 60 + [-0.95] * 540
    assert pose_part(result(z=face_up_start)) == " ↓"
    # Face down only while picking the phone up: not face down.
    assert pose_part(result(z=[-0.98] * 60 + [0.9] * 540)) == ""
    # Short recording: 3 s (30 samples) dominates 10 % of 40 (4 samples).
    assert pose_part(result(z=[0.9] * 30 + [-0.99] * 10)) == " ↓"
    assert pose_part(result(z=[-0.99] * 29 + [0.9] * 11)) == ""


def test_no_accelerometer_data() -> None:
    assert pose_part(result(z=None)) == " ???"
    assert pose_part(result(z=[])) == " ???"
    assert pose_part(result(z=[-0.9] * 10)) == " ???"  # all inside the first 3 s


@pytest.mark.parametrize(
    ("answer", "expected"),
    [(True, " yes"), (False, " no"), (4, " 4"), (None, " x"), ("  a\nb ", " a b")],
)
def test_answer_part(answer: Any, expected: str) -> None:
    assert answer_part(result(q2=answer), "q2") == expected


def test_answer_forms() -> None:
    assert answer_part(result(form=[]), "q2") == " x"  # the phone sends [] without a form
    value_form = {"content": [{"optional_id": "q2", "answer": {"value": 5}}]}
    assert answer_part(result(form=value_form), "q2") == " 5"
    assert answer_part(result(), "q1") == " 4"
    assert answer_part(result(), "q9") == " x"


def test_viewing_of_a_broken_item_is_counted_not_raised() -> None:
    v = viewing({"date": "garbage", "result": "not an object"}, margin=3, question="q2", tz=TZ)
    assert v.incomplete and v.text == "? ??? x"
    v = viewing(None, margin=3, question="q2", tz=TZ)
    assert v.incomplete


def test_days_and_bounds() -> None:
    days = report_days(date(2022, 3, 31), 3)
    assert days == [date(2022, 3, 29), date(2022, 3, 30), date(2022, 3, 31)]
    start, stop = report_bounds(days, TZ)
    assert start == datetime(2022, 3, 29, tzinfo=TZ) - timedelta(microseconds=1)
    assert stop == datetime(2022, 4, 1, tzinfo=TZ)


def test_row_joins_a_day_in_date_order_by_local_day() -> None:
    days = report_days(date(2022, 3, 27), 2)  # DST starts on the 27th in Warsaw
    items = [
        {"date": "2022-03-27T20:00:00+02:00", "result": result(102, z=[0.9] * 100, q2=False)},
        {"date": "2022-03-27T08:00:00+02:00", "result": result(90, z=[0.9] * 100)},
        # 23:30 UTC on the 26th is 00:30 on the 27th in Warsaw (+01:00 before the change)
        {"date": "2022-03-26T23:30:00+00:00", "result": result(80, q2=None)},
        {"date": "2022-03-20T08:00:00+01:00", "result": result(90)},  # outside the window
    ]
    views = [viewing(i, margin=3, question="q2", tz=TZ) for i in items]
    assert row_cells(views, days) == ["-", ">-10s ??? x | ok yes | <+12s no"]


def test_cell_kinds_and_header() -> None:
    assert cell_kind("-") == "none"
    assert cell_kind("ok yes") == "ok"
    assert cell_kind("ok yes | <+4s no") == "off_time"
    assert cell_kind("ok ↓ yes | <+4s no") == "face_down"
    assert cell_kind("ok ??? x") == "unknown"
    assert cell_kind("error") == "failed"
    table = ActivityTable(days=report_days(date(2022, 1, 2), 2))
    table.rows.append(ParticipantRow("abc", ["-", "ok x"]))
    assert table.header == ["no", "external_id", "2022-01-01", "2022-01-02"]
    assert table.frame().values.tolist() == [[1, "abc", "-", "ok x"]]
