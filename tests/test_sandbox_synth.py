"""The synthetic study: deterministic, shaped like the reference documents, awkward on purpose."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson

from longterm_sync.ids import external_id
from longterm_sync.sandbox.synth import VIDEO_NAMES, Post, Study, StudyParams

TODAY = date(2024, 3, 15)
RESULT_KEYS = [
    "video", "service", "timezone", "reply_form", "device_info", "memory_free", "memory_total",
    "playback_data", "gyroscope_data", "accelerometer_data", "playback_ended", "video_duration",
    "timezone_offset", "playback_started", "query_started", "user_feedback",
]  # fmt: skip


def posts(study: Study) -> list[tuple[int, Post]]:
    return [(p.index, post) for p in study.participants for post in study.posts(p)]


def results(study: Study) -> list[dict[str, Any]]:
    return [post.body["result"] for _, post in posts(study) if post.route == "watch-results"]


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    a = Study(StudyParams(users=3, days=4, samples=50, today=TODAY, seed=5))
    b = Study(StudyParams(users=3, days=4, samples=50, today=TODAY, seed=5))
    c = Study(StudyParams(users=3, days=4, samples=50, today=TODAY, seed=6))
    dump = lambda s: orjson.dumps([(i, p.route, p.body) for i, p in posts(s)])  # noqa: E731
    assert dump(a) == dump(b) != dump(c)
    assert a.video_bytes(VIDEO_NAMES[0]) == b.video_bytes(VIDEO_NAMES[0])


def test_participants_schedules_and_ids() -> None:
    study = Study(StudyParams(users=4, days=8, samples=5, today=TODAY, seed=1))
    first = study.participants[0]
    assert (first.name, first.surname, first.phone) == ("Long_001", "Stress_test", "1234567")
    assert first.external_id == external_id("Long_001", "Stress_test", "1234567", "sandbox-salt-1")
    entries = first.schedule["schedule"]
    assert entries[0]["start"] == "2024-03-08T00:00:00"  # today - days + 1
    assert entries[-1]["start"] == "2024-03-18T00:00:00"  # today + 3
    assert entries[-1]["end"] == "2024-03-18T23:59:59"
    types = [(q["optional_id"], q["type"]) for q in entries[0]["reply_form"]]
    assert types == [("q1", "MOS"), ("q2", "MOS"), ("q3", "TEXT"), ("q4", "QUALTRICS")]
    assert [b["value"] for b in entries[0]["reply_form"][1]["buttons"]] == [True, False]
    videos = {s["video"] for e in entries for s in e["service"]}
    assert videos <= set(VIDEO_NAMES) and any("/" in v for v in videos)
    assert any(len(e["service"]) == 2 for e in entries)
    assert "name" not in first.payload and first.payload["external_id"] == first.external_id
    assert first.start == datetime.fromisoformat("2024-03-08T00:00:00+01:00")


def test_results_shape_and_size_at_default_samples() -> None:
    study = Study(StudyParams(users=1, days=2, today=TODAY))
    result = results(study)[0]
    assert list(result) == RESULT_KEYS
    size = len(orjson.dumps(result))
    assert 150_000 < size < 350_000, size
    playback = result["playback_data"]
    watched = datetime.fromisoformat(result["playback_ended"]) - datetime.fromisoformat(
        result["playback_started"]
    )
    assert abs(len(playback["timestamp"]) - watched.total_seconds() * 4) <= 1  # every 250 ms
    assert len(result["gyroscope_data"]["x"]) == 1800


def test_awkward_cases_are_present() -> None:
    study = Study(StudyParams(users=6, days=10, samples=30, today=TODAY, seed=1, poison=1))
    all_posts = posts(study)
    res = [post.body["result"] for _, post in all_posts if post.route == "watch-results"]
    good = [r for r in res if isinstance(r, dict)]
    assert sum(1 for r in res if not isinstance(r, dict)) == 1  # one poison row
    assert any(r["accelerometer_data"]["z"] == [] for r in good)  # no accelerometer data
    face_down = [
        r
        for r in good
        if r["accelerometer_data"]["z"] and max(r["accelerometer_data"]["z"]) < -0.95
    ]
    assert face_down and len(face_down) < len(good)
    assert any(r["reply_form"]["content"][1]["answer"]["content"] is None for r in good)
    spans = {
        (
            datetime.fromisoformat(r["playback_ended"])
            - datetime.fromisoformat(r["playback_started"])
        ).total_seconds()
        * 1000
        > r["video_duration"] + 1
        for r in good
    }
    assert spans == {True, False}  # some watched longer than the video
    assert any(
        (
            datetime.fromisoformat(r["playback_ended"])
            - datetime.fromisoformat(r["playback_started"])
        ).total_seconds()
        * 1000
        < r["video_duration"] * 0.7
        for r in good
    )  # some stopped early
    # late uploads: some participant posts an older result after a newer one
    late = False
    for p in study.participants:
        dates = [post.body["date"] for post in study.posts(p) if post.route == "watch-results"]
        late = late or dates != sorted(dates)
    assert late
    # two comments on one video for some participants
    feedback: dict[int, list[str]] = {}
    for index, post in all_posts:
        if post.route == "feedback-comments":
            feedback.setdefault(index, []).append(post.body["video"])
    assert any(len(v) == 2 and v[0] == v[1] for v in feedback.values())
    assert any(post.route == "missing-videos" for _, post in all_posts)


def test_videos_and_sidecars(tmp_path: Path) -> None:
    root = tmp_path
    study = Study(StudyParams(users=1, days=1, samples=5, video_mb=0.25, today=TODAY))
    written = study.write_videos(root)
    assert len(written) == 6 == len(VIDEO_NAMES)
    for path in written:
        data = path.read_bytes()
        assert len(data) == 250_000
        assert path.with_name(path.name + ".md5sum").read_bytes() == (
            hashlib.md5(data).hexdigest().encode() + b"\n"
        )
