"""Validation of the experimenter's schedule file: every bad form is one line naming the file."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from longterm_sync.errors import InputFileError
from longterm_sync.ids import external_id
from longterm_sync.schedule_file import (
    ID_MISMATCH,
    ScheduleFileError,
    find_schedule_files,
    load_schedule_file,
    parse_entry_datetime,
    video_name_problem,
)
from upload_helpers import schedule, write_json

DAY = date(2026, 12, 1)


def load(tmp_path: Path, doc: Any, salt: str = "") -> Any:
    return load_schedule_file(write_json(tmp_path / "user_001.json", doc), salt=salt)


def problem(tmp_path: Path, doc: Any) -> str:
    with pytest.raises(ScheduleFileError) as info:
        load(tmp_path, doc)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("user_001.json: ")
    assert isinstance(info.value, InputFileError)
    return text


def test_valid_file_hashes_the_id_and_drops_personal_data(tmp_path: Path) -> None:
    doc = schedule([DAY], video="subset1/a.mp4")
    loaded = load(tmp_path, doc, salt="pepper")
    assert loaded.external_id == external_id("Long_001", "Stress_test", "1234567", "pepper")
    assert loaded.id_source == "hashed"
    assert not {"name", "surname", "phone"} & set(loaded.payload)
    assert loaded.payload["external_id"] == loaded.external_id
    assert loaded.payload["schedule"] == doc["schedule"]
    assert loaded.videos == ("subset1/a.mp4",)
    assert "Long_001" not in str(loaded.payload) and "1234567" not in str(loaded.payload)


def test_given_external_id_wins_and_is_kept(tmp_path: Path) -> None:
    loaded = load(tmp_path, schedule([DAY], external_id="SFASDFASDF"))
    assert loaded.external_id == "SFASDFASDF"
    assert loaded.id_source == ID_MISMATCH
    assert "name" not in loaded.payload
    doc = schedule([DAY], external_id=external_id("Long_001", "Stress_test", "1234567", ""))
    assert load(tmp_path, doc).id_source == "given"


def test_broken_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "user_001.json"
    path.write_text('{\n  "language": "PL",\n  "schedule": [,]\n}\n', encoding="utf-8")
    with pytest.raises(ScheduleFileError) as info:
        load_schedule_file(path)
    assert str(info.value).startswith("user_001.json: line 3 column 16: not valid JSON")


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "user_001.json"
    path.write_bytes(b'{\n"language": "\xff"}')
    with pytest.raises(ScheduleFileError, match=r"line 2: not UTF-8"):
        load_schedule_file(path)


def test_duplicate_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "user_001.json"
    path.write_text('{"language": "PL", "language": "EN"}', encoding="utf-8")
    with pytest.raises(ScheduleFileError, match="'language' appears twice"):
        load_schedule_file(path)


def test_top_level_list_is_refused(tmp_path: Path) -> None:
    assert "top level must be an object, got a list" in problem(tmp_path, [1])


def _mutated(change: Any) -> dict[str, Any]:
    doc = schedule([DAY, date(2026, 12, 2)])
    change(doc)
    return doc


BAD_FORMS = [
    ("no id", lambda d: d.pop("phone"), "no external_id and no complete name/surname/phone"),
    ("no language", lambda d: d.pop("language"), "language is missing"),
    ("no schedule", lambda d: d.pop("schedule"), "schedule is missing"),
    (
        "typo schedule",
        lambda d: d.__setitem__("shedule", d.pop("schedule")),
        "schedule is missing (found 'shedule': a typo?)",
    ),
    ("empty schedule", lambda d: d.__setitem__("schedule", []), "schedule has no entries"),
    ("no start", lambda d: d["schedule"][0].pop("start"), "schedule[0] has no 'start'"),
    (
        "date only start",
        lambda d: d["schedule"][1].__setitem__("start", "2026-12-02"),
        "schedule[1].start: '2026-12-02' is not an ISO datetime with a time part",
    ),
    (
        "empty start",
        lambda d: d["schedule"][0].__setitem__("start", ""),
        "schedule[0].start: '' is not an ISO datetime",
    ),
    (
        "garbage end",
        lambda d: d["schedule"][0].__setitem__("end", "2026-12-01T25:00:00"),
        "schedule[0].end: '2026-12-01T25:00:00' is not a valid ISO datetime",
    ),
    (
        "end before start",
        lambda d: d["schedule"][0].__setitem__("end", "2026-11-30T23:00:00"),
        "schedule[0].end '2026-11-30T23:00:00' is not after start '2026-12-01T00:00:00'",
    ),
    (
        "end equals start",
        lambda d: d["schedule"][0].__setitem__("end", "2026-12-01T00:00:00"),
        "is not after start",
    ),
    (
        "replay_form typo",
        lambda d: d["schedule"][0].__setitem__("replay_form", d["schedule"][0].pop("reply_form")),
        "schedule[0] has no 'reply_form' (found 'replay_form': a typo?)",
    ),
    (
        "unknown reply type",
        lambda d: d["schedule"][0]["reply_form"][0].__setitem__("type", "MOS_5"),
        "schedule[0].reply_form[0].type must be one of MOS, TEXT, QUALTRICS, got 'MOS_5'",
    ),
    (
        "qualtrics not last",
        lambda d: d["schedule"][1]["reply_form"].append({"type": "TEXT"}),
        "schedule[1].reply_form[3]: QUALTRICS must be the last question",
    ),
    (
        "mos without buttons",
        lambda d: d["schedule"][0]["reply_form"][0].pop("buttons"),
        "schedule[0].reply_form[0].buttons must be a non-empty list for MOS",
    ),
    (
        "qualtrics without url",
        lambda d: d["schedule"][0]["reply_form"][3].pop("qualtrics_url"),
        "qualtrics_url must be an http(s) URL",
    ),
    (
        "no service",
        lambda d: d["schedule"][0].__setitem__("service", []),
        "schedule[0].service must be a non-empty list",
    ),
    (
        "no video",
        lambda d: d["schedule"][0]["service"][0].pop("video"),
        "schedule[0].service[0].video is missing",
    ),
    (
        "escaping video",
        lambda d: d["schedule"][0]["service"][0].__setitem__("video", "../etc/passwd"),
        "no '..'",
    ),
    (
        "absolute video",
        lambda d: d["schedule"][0]["service"][0].__setitem__("video", "/x.mp4"),
        "not absolute",
    ),
    (
        "repeated start",
        lambda d: d["schedule"][1].update(start=d["schedule"][0]["start"]),
        "schedule[1].start '2026-12-01T00:00:00' repeats schedule[0]",
    ),
    (
        "id with comma",
        lambda d: d.__setitem__("external_id", "a,b"),
        "contains spaces or commas",
    ),
    ("entry not object", lambda d: d["schedule"].append("x"), "schedule[2] must be an object"),
]


@pytest.mark.parametrize(
    ("change", "expected"), [(c, e) for _, c, e in BAD_FORMS], ids=[n for n, _, _ in BAD_FORMS]
)
def test_each_bad_form_is_one_line(tmp_path: Path, change: Any, expected: str) -> None:
    assert expected in problem(tmp_path, _mutated(change))


def test_every_problem_of_a_file_is_listed(tmp_path: Path) -> None:
    doc = schedule([DAY])
    doc.pop("language")
    doc["schedule"][0]["end"] = "2026-11-01T00:00:00"
    doc["schedule"][0]["reply_form"][0]["type"] = "SLIDER"
    text = problem(tmp_path, doc)
    assert "language is missing" in text
    assert "is not after start" in text
    assert "got 'SLIDER'" in text


def test_offsets_compare_as_moments(tmp_path: Path) -> None:
    doc = schedule([DAY])
    doc["schedule"][0]["start"] = "2026-12-01T10:00:00+01:00"
    doc["schedule"][0]["end"] = "2026-12-01T09:30:00Z"  # 10:30 in Warsaw: after start
    assert load(tmp_path, doc).payload["schedule"][0]["end"] == "2026-12-01T09:30:00Z"


def test_reference_template_shape_passes_with_a_video_per_service(tmp_path: Path) -> None:
    doc = schedule([DAY])
    doc["schedule"][0]["service"] = [
        {"service_name": "A", "video": "subset1/Shrek_jan.avi"},
        {"service_name": "B", "video": "subset1/Shrek_go.avi"},
        {"service_name": "", "video": "subset1/Shrek_jan.avi"},
    ]
    second = copy.deepcopy(doc["schedule"][0])
    second.update(start="2026-12-02T00:00:00", end="2026-12-02T23:59:59", reply_form=[])
    doc["schedule"].append(second)
    assert load(tmp_path, doc).videos == ("subset1/Shrek_jan.avi", "subset1/Shrek_go.avi")


def test_parse_entry_datetime_naive_is_profile_time() -> None:
    parsed = parse_entry_datetime("2026-07-01T12:00:00")
    assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 7200  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "name", ["a.mp4", "subset1/clip_A.mp4", "a b/ł.mp4"], ids=["flat", "sub", "unicode"]
)
def test_good_video_names(name: str) -> None:
    assert video_name_problem(name) is None


@pytest.mark.parametrize("name", ["a//b.mp4", "./a.mp4", "a/", "a\\b", "x.mp4.md5sum", "a\x00"])
def test_bad_video_names(name: str) -> None:
    assert video_name_problem(name)


def test_find_schedule_files_is_flat_and_sorted(tmp_path: Path) -> None:
    write_json(tmp_path / "b.json", {})
    write_json(tmp_path / "a.JSON", {})
    write_json(tmp_path / "sub" / "c.json", {})
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in find_schedule_files(tmp_path)] == ["a.JSON", "b.json"]
    with pytest.raises(InputFileError, match="does not exist"):
        find_schedule_files(tmp_path / "nope")


def test_one_start_spelled_twice_warns(tmp_path: Path) -> None:
    doc = schedule([DAY, date(2026, 12, 2), date(2026, 12, 3)])
    doc["schedule"][1]["start"] = "2026-12-01T00:00:00+01:00"
    doc["schedule"][1]["end"] = "2026-12-01T23:00:00+01:00"
    doc["schedule"][2]["start"] = "2026-12-01T18:00:00"  # a second session that day is fine
    doc["schedule"][2]["end"] = "2026-12-01T20:00:00"
    loaded = load(tmp_path, doc)
    assert loaded.warnings == (
        "user_001.json: schedule[1] and schedule[0] both start at 2026-12-01T00:00:00 "
        "(spelled differently); the phone gets two entries",
    )


def test_problems_name_the_line_of_their_object(tmp_path: Path) -> None:
    doc = schedule([DAY, date(2026, 12, 2)])
    doc["schedule"][1]["end"] = "2026-11-01T00:00:00"
    doc["schedule"][1]["reply_form"][2]["type"] = "SLIDER"
    path = write_json(tmp_path / "user_001.json", doc)
    text = path.read_text(encoding="utf-8").splitlines()
    with pytest.raises(ScheduleFileError) as info:
        load_schedule_file(path)
    first, second = info.value.problems
    entry_line = int(first.split(":")[0].removeprefix("line "))
    assert first.endswith(
        "schedule[1].end '2026-11-01T00:00:00' is not after start '2026-12-02T00:00:00'"
    )
    assert text[entry_line - 1].strip() == "{" and '"start": "2026-12-02' in text[entry_line]
    form_line = int(second.split(":")[0].removeprefix("line "))
    assert form_line > entry_line and '"optional_id": "q3"' in text[form_line]
    assert second.endswith(
        "schedule[1].reply_form[2].type must be one of MOS, TEXT, QUALTRICS, got 'SLIDER'"
    )


def test_duplicate_key_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "user_001.json"
    path.write_text('{\n "language": "PL",\n "schedule": [\n  {"start": 1, "start": 2}\n ]\n}')
    with pytest.raises(ScheduleFileError, match="line 4: key 'start' appears twice"):
        load_schedule_file(path)
