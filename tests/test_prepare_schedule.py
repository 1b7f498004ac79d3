"""prepare_schedule: files pass upload-schedule's validator, and the sandbox accepts them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from clitools import run_cli
from fixtures_sandbox import SandboxInfo, start_sandbox
from longterm_sync.ids import external_id
from longterm_sync.schedule_file import load_schedule_file
from longterm_sync.timeutil import today_in

SANDBOX_DAY = date(2026, 12, 1)


def _videos(root: Path, names: list[str]) -> Path:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode() * 100)
    return root


def _csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_csv_participants_make_valid_schedules(tmp_path: Path) -> None:
    videos = _videos(tmp_path / "videos", ["b_day2.mp4", "a_day1.mp4", "c_day3.mp4"])
    people = _csv(
        tmp_path / "p.csv",
        "name,surname,phone,language\nJan,Kowalski,0600700800,\nAnna,Nowak,123,EN\n",
    )
    out = tmp_path / "out"
    url = "https://survey.qualtrics.com/jfe/form/SV_x"
    result = run_cli(
        ["prepare_schedule", str(people), f"--videos={videos}", f"--output-dir={out}",
         "--start=2026-12-20", f"--qualtrics-url={url}"]
    )  # fmt: skip
    assert result.code == 0, result.out + result.err
    assert "schedule_Jan_Kowalski.json  new" in result.out
    assert "2 schedules written" in result.out
    files = sorted(p.name for p in out.iterdir())
    assert files == ["schedule_Anna_Nowak.json", "schedule_Jan_Kowalski.json"]
    for name in files:
        checked = load_schedule_file(out / name)  # upload-schedule's own validator
        assert checked.videos == ("a_day1.mp4", "b_day2.mp4", "c_day3.mp4")
    doc = _load(out / "schedule_Jan_Kowalski.json")
    assert doc["phone"] == "0600700800"  # leading zero kept: the hash depends on it
    assert doc["language"] == "PL"
    assert _load(out / "schedule_Anna_Nowak.json")["language"] == "EN"
    entries = doc["schedule"]
    assert [(e["start"], e["end"]) for e in entries] == [
        ("2026-12-20T00:00:00", "2026-12-20T23:59:59"),
        ("2026-12-21T00:00:00", "2026-12-21T23:59:59"),
        ("2026-12-22T00:00:00", "2026-12-22T23:59:59"),
    ]
    form = entries[0]["reply_form"]
    assert [q["type"] for q in form] == ["MOS", "MOS", "TEXT", "QUALTRICS"]
    assert [b["value"] for b in form[0]["buttons"]] == [1, 2, 3, 4, 5]
    assert [b["value"] for b in form[1]["buttons"]] == [True, False]
    assert form[3]["qualtrics_url"] == url
    for question in form:
        assert [d["language"] for d in question["description"]] == ["pol", "eng", "nor"]
    assert form[0]["buttons"][0]["button_text"][0] == {"language": "pol", "text": "1. Zła"}


def test_xlsx_services_external_id_and_default_start(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    _videos(root, [f"videos_{s}/v{i}.mp4" for s in "AB" for i in range(4)])
    people = tmp_path / "people.xlsx"
    pd.DataFrame(
        {"name": ["Ola"], "surname": ["Lis"], "phone": ["007"], "external_id": ["P-01"]}
    ).to_excel(people, index=False)
    out = tmp_path / "out"
    args = [str(people), f"--videos={root}", "--services=A,B", "--days=2", f"--output-dir={out}"]
    result = run_cli(args, script="prepare_schedule")
    assert result.code == 0, result.out + result.err
    doc = load_schedule_file(out / "schedule_P-01.json").payload
    first = today_in() + timedelta(days=10)
    assert doc["schedule"][0]["start"] == f"{first.isoformat()}T00:00:00"
    assert len(doc["schedule"]) == 2
    assert doc["schedule"][1]["service"] == [
        {"service_name": "A", "video": "videos_A/v1.mp4"},
        {"service_name": "B", "video": "videos_B/v1.mp4"},
    ]


def test_append_then_replace_and_extend(tmp_path: Path) -> None:
    videos = _videos(tmp_path / "videos", ["1.mp4", "2.mp4"])
    people = _csv(tmp_path / "p.csv", "name,surname,phone,external_id\nA,B,1,E1\n")
    out = tmp_path / "out"
    base = ["prepare_schedule", str(people), f"--videos={videos}", f"--output-dir={out}"]
    assert run_cli([*base, "--start=2026-12-20"]).code == 0
    again = run_cli(base)  # no --start: the day after the last entry
    assert again.code == 0, again.err
    starts = [e["start"][:10] for e in _load(out / "schedule_E1.json")["schedule"]]
    assert starts == ["2026-12-20", "2026-12-21", "2026-12-22", "2026-12-23"]
    clash = run_cli([*base, "--start=2026-12-21"])
    assert clash.code == 2
    assert "already has an entry starting 2026-12-21T00:00:00" in clash.one_line_error()
    replaced = run_cli([*base, "--start=2027-01-05", "--replace", "--days=1"])
    assert replaced.code == 0, replaced.err
    assert [e["start"] for e in _load(out / "schedule_E1.json")["schedule"]] == [
        "2027-01-05T00:00:00"
    ]
    extended = run_cli(["prepare_schedule", f"--extend={out}", f"--videos={videos}", "--days=1"])
    assert extended.code == 0, extended.err
    assert "appended" in extended.out
    doc = load_schedule_file(out / "schedule_E1.json").payload
    assert [e["start"][:10] for e in doc["schedule"]] == ["2027-01-05", "2027-01-06"]


def test_template_builders_and_raw_questions(tmp_path: Path) -> None:
    videos = _videos(tmp_path / "videos", ["1.mp4"])
    people = _csv(tmp_path / "p.csv", "name,surname,phone\nA,B,1\n")
    template = tmp_path / "form.json"
    template.write_text(
        json.dumps(
            [
                {"kind": "mos", "text": {"eng": "How was it?"}},
                {"type": "TEXT", "optional_id": "free"},
                {"kind": "qualtrics", "url": "https://q.example/s"},
            ]
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = run_cli(["prepare_schedule", str(people), f"--videos={videos}",
                      f"--template={template}", f"--output-dir={out}"])  # fmt: skip
    assert result.code == 0, result.err
    form = load_schedule_file(out / "schedule_A_B.json").payload["schedule"][0]["reply_form"]
    assert [q.get("optional_id") for q in form] == ["q1", "free", "q3"]
    assert form[0]["description"][1] == {"language": "eng", "text": "How was it?"}


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("columns", "p.csv: missing column(s) phone"),
        ("days", "5 days asked but service A has only 2 video(s)"),
        ("template", "QUALTRICS must be the last question"),
        ("template_kind", "unknown kind 'stars'"),
        ("empty_row", "row 3: empty phone and no external_id"),
        ("no_videos", "no videos"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, setup: str, message: str) -> None:
    videos = _videos(tmp_path / "videos", ["1.mp4", "2.mp4"])
    header = "name,surname\nA,B\n" if setup == "columns" else "name,surname,phone\nA,B,1\nC,D,\n"
    if setup != "empty_row":
        header = header.replace("C,D,\n", "")
    people = _csv(tmp_path / "p.csv", header)
    out = tmp_path / "out"
    out.mkdir()
    args = ["prepare_schedule", str(people), f"--videos={videos}", f"--output-dir={out}"]
    if setup == "days":
        args.append("--days=5")
    if setup.startswith("template"):
        template = tmp_path / "t.json"
        items = ["qualtrics", "mos"] if setup == "template" else ["stars"]
        template.write_text(json.dumps(items), encoding="utf-8")
        args += [f"--template={template}", "--qualtrics-url=https://q.example/s"]
    if setup == "no_videos":
        args[2] = f"--videos={tmp_path}/out"
    result = run_cli(args)
    assert result.code == 2, result.out + result.err
    assert message in result.one_line_error()
    assert list(out.iterdir()) == []


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    videos = _videos(tmp_path / "videos", ["1.mp4"])
    people = _csv(tmp_path / "p.csv", "name,surname,phone\nA,B,1\n")
    out = tmp_path / "out"
    result = run_cli(["prepare_schedule", str(people), f"--videos={videos}",
                      f"--output-dir={out}", "--dry-run", "--json"])  # fmt: skip
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["counts"]["schedules would write"] == 1
    assert data["details"]["table"][0]["file"] == "schedule_A_B.json"
    assert not out.exists()


@pytest.fixture(scope="module")
def sandbox_day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxInfo]:
    info = start_sandbox(tmp_path_factory.mktemp("prepare-sandbox"), ["--today", "2026-12-01"])
    try:
        yield info
    finally:
        info.stop()


def test_upload_schedule_dry_run_accepts_the_output(
    sandbox_day: SandboxInfo, tmp_path: Path
) -> None:
    root = tmp_path / "videos"
    _videos(root, [f"videos_{s}/d{i}.mp4" for s in "AB" for i in range(3)])
    people = _csv(
        tmp_path / "p.csv",
        "name,surname,phone,external_id\nJan,Kowalski,600,\nX,Y,1,PX\n",
    )
    out = tmp_path / "jsons"
    start = (SANDBOX_DAY + timedelta(days=10)).isoformat()
    prepared = run_cli(["prepare_schedule", str(people), f"--videos={root}", "--services=A,B",
                        f"--start={start}", f"--output-dir={out}",
                        "--qualtrics-url=https://q.example/s"])  # fmt: skip
    assert prepared.code == 0, prepared.err
    result = run_cli(
        ["upload-schedule", f"--config={sandbox_day.config}", "--server=sandbox", "--dry-run",
         f"--today={SANDBOX_DAY.isoformat()}", "--json", str(root), str(out)]
    )  # fmt: skip
    assert result.code == 0, result.out + result.err
    data = json.loads(result.out)
    assert not data["failures"], data["failures"]
    plans = {p["external_id"]: p for p in data["details"]["plans"]}
    hashed = external_id("Jan", "Kowalski", "600", sandbox_day.salt)
    assert set(plans) == {hashed, "PX"}
    assert data["counts"]["videos would upload"] == 6
