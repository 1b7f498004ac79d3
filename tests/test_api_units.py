"""Pure parts of the REST engine: window planning, the streamed JSON format, retries."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest

from longterm_sync.api import encode_query, route_path
from longterm_sync.jsonstream import ArrayWriter, dump_array, encode_item
from longterm_sync.pipelines.results import (
    Feedback,
    build_feedback,
    decode_items,
    encode_results_window,
    fix_result,
)
from longterm_sync.retry import Exhausted, Retryable, RetryPolicy, with_retries
from longterm_sync.timeutil import WARSAW
from longterm_sync.windows import (
    ONE_MICROSECOND,
    Window,
    participant_windows,
    plan_windows,
    windows_contiguous,
)

T0 = datetime(2024, 1, 1, tzinfo=WARSAW)


def covering(windows: list[Window], moment: datetime) -> list[int]:
    """Which windows the server would put a row dated ``moment`` in (strict bounds)."""
    return [
        i
        for i, w in enumerate(windows)
        if (w.start is None or moment > w.start) and (w.stop is None or moment < w.stop)
    ]


def test_windows_split_the_range_without_gap_or_overlap() -> None:
    stop = T0 + timedelta(days=100)
    windows = plan_windows(T0, stop, days=31)
    assert len(windows) == 4
    assert windows[0].start == T0 and windows[-1].stop == stop
    assert windows_contiguous(windows)
    boundary = T0 + timedelta(days=31)
    assert windows[0].stop == boundary + ONE_MICROSECOND
    # a row exactly on a boundary, and one microsecond either side: one window each
    for moment in (boundary - ONE_MICROSECOND, boundary, boundary + ONE_MICROSECOND):
        assert len(covering(windows, moment)) == 1, moment
    assert covering(windows, boundary) == [0]
    assert covering(windows, boundary + ONE_MICROSECOND) == [1]
    # the range's own bounds stay strict, as one unwindowed request would be
    assert covering(windows, T0) == [] and covering(windows, stop) == []


def test_every_microsecond_near_boundaries_lands_once() -> None:
    windows = plan_windows(T0, T0 + timedelta(days=10), days=3)
    rng = random.Random(5)
    for w in windows[1:]:
        assert w.start is not None
        for delta in (-2, -1, 0, 1, 2):
            assert len(covering(windows, w.start + delta * ONE_MICROSECOND)) == 1
    for _ in range(500):
        moment = T0 + timedelta(seconds=rng.uniform(1, 10 * 86400 - 1))
        assert len(covering(windows, moment)) == 1


def test_open_range_is_anchored_on_the_schedule_and_stays_open() -> None:
    schedule = {
        "schedule": [
            {"start": "2024-01-01T00:00:00", "end": "2024-01-01T23:59:59"},
            {"start": "2024-04-01T00:00:00", "end": "2024-04-01T23:59:59"},
            {"start": "not a date"},
        ]
    }
    now = datetime(2024, 3, 1, tzinfo=WARSAW)
    windows = participant_windows(None, None, days=31, schedule=schedule, tz=WARSAW, now=now)
    assert windows[0].start is None and windows[-1].stop is None
    assert windows_contiguous(windows)
    assert len(windows) == 2  # boundaries only up to now: Jan 1 + 31 days
    assert covering(windows, datetime(2020, 1, 1, tzinfo=WARSAW)) == [0]
    assert covering(windows, datetime(2030, 1, 1, tzinfo=WARSAW)) == [1]


def test_boundaries_stay_within_the_schedule() -> None:
    schedule = {"schedule": [{"start": "2024-01-01T00:00:00", "end": "2024-02-29T23:59:59"}]}
    start, stop = datetime(2000, 1, 1, tzinfo=WARSAW), datetime(2040, 1, 1, tzinfo=WARSAW)
    now = datetime(2030, 1, 1, tzinfo=WARSAW)
    windows = participant_windows(start, stop, days=31, schedule=schedule, tz=WARSAW, now=now)
    assert len(windows) == 2 and windows_contiguous(windows)
    assert windows[0].start == start and windows[-1].stop == stop
    for year in (2001, 2024, 2039):
        assert len(covering(windows, datetime(year, 2, 1, tzinfo=WARSAW))) == 1


def test_no_dates_at_all_is_one_unbounded_request() -> None:
    now = datetime(2024, 3, 1, tzinfo=WARSAW)
    assert participant_windows(None, None, days=31, schedule=None, tz=WARSAW, now=now) == [
        Window(None, None)
    ]
    assert participant_windows(
        None, None, days=31, schedule={"schedule": []}, tz=WARSAW, now=now
    ) == [Window(None, None)]
    short = plan_windows(T0, T0 + timedelta(days=5), days=31)
    assert short == [Window(T0, T0 + timedelta(days=5))]
    with pytest.raises(ValueError):
        plan_windows(T0, None, days=0)


def test_query_keeps_plus_encoded_and_commas_literal() -> None:
    query = encode_query({"external_id": "a,b", "start_date": "2024-01-01T00:00:00+01:00"})
    assert query == "external_id=a,b&start_date=2024-01-01T00:00:00%2B01:00"
    assert route_path("watch-results") == "/api/watch-results/"
    assert route_path("users/schedules/") == "/api/users/schedules/"


def one_per_line(items: list[object]) -> bytes:
    """The documented format, built independently with the stdlib."""
    if not items:
        return b"[]\n"
    lines = [json.dumps(x, separators=(",", ":"), ensure_ascii=False) for x in items]
    return ("[\n" + ",\n".join(lines) + "\n]\n").encode()


@pytest.mark.parametrize(
    "items",
    [[], [{}], [{"a": 1}], [{"zażółć": "gęślą jaźń", "n": [1, 2, {"x": None}]}, [], "s", 3.5]],
)
def test_streamed_array_is_one_compact_item_per_line(items: list[object], tmp_path: Path) -> None:
    expected = one_per_line(items)
    assert dump_array(items) == expected
    assert orjson.loads(expected) == items
    path = tmp_path / "a.json"
    with path.open("wb") as fh:
        writer = ArrayWriter(fh)
        for item in items:
            writer.write_parts([encode_item(item)])
        writer.finish()
    assert path.read_bytes() == expected
    assert b"\\u" not in expected  # non-ASCII written as UTF-8, not escaped


def test_splicing_files_concatenates_their_items(tmp_path: Path) -> None:
    parts = [[{"a": 1}, {"b": [2]}], [], [{"c": "ż"}]]
    paths = []
    for i, items in enumerate(parts):
        path = tmp_path / f"p{i}.json"
        path.write_bytes(dump_array(items))
        paths.append(path)
    out = tmp_path / "all.json"
    with out.open("wb") as fh:
        writer = ArrayWriter(fh)
        for path, items in zip(paths, parts, strict=True):
            writer.splice_file(path, len(items))
        writer.finish()
    assert out.read_bytes() == dump_array([x for items in parts for x in items])
    assert orjson.loads(out.read_bytes()) == [x for items in parts for x in items]


def test_raw_values_are_copied_verbatim() -> None:
    body = b'[{"date":"2024-01-01T00:00:00+01:00","result":{"x":[1.50,2e-5, 3],"video":"v"}}]'
    window = encode_results_window(body, Feedback([], {}, []), WARSAW, "t")
    assert window.parts == [
        b'{"date":"2024-01-01T00:00:00+01:00","result":{"x":[1.50,2e-5, 3],"video":"v",'
        b'"user_feedback":[]}}'
    ]


def test_results_are_sorted_by_instant_and_user_feedback_rebuilt() -> None:
    feedback_rows = [
        {"video": "v1", "external_id": "e", "date": "2024-03-02T10:00:00+01:00", "comment": "b"},
        {"video": "v1", "external_id": "e", "date": "2024-03-01T10:00:00+01:00", "comment": "a"},
        {"video": "v2", "external_id": "e", "date": "2024-03-01T11:00:00+01:00", "comment": "c"},
    ]
    fb = build_feedback([orjson.dumps(feedback_rows)], WARSAW, "t")
    assert [plain(r)["comment"] for r in fb.items] == ["a", "c", "b"]
    assert [plain(r)["comment"] for r in fb.by_video["v1"]] == ["a", "b"]
    results = [
        # DST: 02:30+01:00 is after 02:10+02:00 in time though it sorts before as text
        {"external_id": "e", "date": "2024-10-27T02:30:00+01:00", "result": {"video": "v1"}},
        {"external_id": "e", "date": "2024-10-27T02:10:00+02:00", "result": {"video": "v2"}},
        {"external_id": "e", "date": "2024-03-01T00:00:00+01:00", "result": {"video": "v3"}},
    ]
    window = encode_results_window(orjson.dumps(results), fb, WARSAW, "t")
    decoded = [orjson.loads(p) for p in window.parts]
    assert [r["result"]["video"] for r in decoded] == ["v3", "v2", "v1"]
    assert decoded[2]["result"]["user_feedback"] == [plain(r) for r in fb.by_video["v1"]]
    assert decoded[0]["result"]["user_feedback"] == []
    assert window.problems == []


def plain(item: object) -> dict[str, object]:
    """A decoded-one-level item (values still raw JSON) as plain Python objects."""
    return dict(orjson.loads(encode_item(item)))


def fixed(item: object) -> str | None:
    """What fix_result says about ``item``, decoded the way the server's answer is."""
    (decoded,) = decode_items(orjson.dumps([item]), "t")
    return fix_result(decoded, Feedback(items=[], by_video={}, problems=[]), WARSAW)


def test_results_missing_fields_are_counted_not_fatal() -> None:
    fb = Feedback(items=[], by_video={}, problems=[])
    assert "result.video" in (fixed({"date": "2024-01-01T00:00:00+01:00", "result": {}}) or "")
    assert "lacks result" in (fixed({"date": "2024-01-01T00:00:00+01:00"}) or "")
    assert fixed([1]) == "a result that is not an object"
    assert "a result object" in (fixed({"date": "2024-01-01T00:00:00+01:00", "result": 3}) or "")
    assert "unreadable" in (fixed({"date": "x", "result": {"video": "v"}}) or "")
    assert fixed({"date": "2024-01-01T00:00:00+01:00", "result": {"video": "v"}}) is None
    body = orjson.dumps([{"result": {"video": "v"}}, {"date": "2024-01-01T00:00:00+01:00"}])
    window = encode_results_window(body, fb, WARSAW, "t")
    assert len(window.parts) == 2 and len(window.problems) == 2


def test_retries_until_success_then_give_up() -> None:
    policy = RetryPolicy(retries=3, max_seconds=10, base_delay=0.001)
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise Retryable("reset")
        return "ok"

    assert asyncio.run(with_retries(flaky, policy)) == "ok" and calls == 3

    async def broken() -> str:
        raise Retryable("500", connect=False)

    with pytest.raises(Exhausted) as info:
        asyncio.run(with_retries(broken, policy))
    assert info.value.attempts == 4 and "500" in str(info.value)

    async def fatal() -> str:
        raise KeyError("not retried")

    with pytest.raises(KeyError):
        asyncio.run(with_retries(fatal, policy))


def test_retry_total_time_is_bounded() -> None:
    policy = RetryPolicy(retries=1000, max_seconds=0.2, base_delay=0.05)

    async def broken() -> str:
        raise Retryable("down")

    loop_start = datetime.now()
    with pytest.raises(Exhausted):
        asyncio.run(with_retries(broken, policy))
    assert (datetime.now() - loop_start).total_seconds() < 1.5
