"""user_activity end to end: hand-built results posted to a fresh sandbox, the real CLI run
as a subprocess, the CSV and workbook read back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from clitools import Result, run_cli
from fixtures_sandbox import SandboxInfo, start_sandbox
from report_helpers import Person, build_study, iso, watch_result

TZ = ZoneInfo("Europe/Warsaw")
A = "a1" * 32
B = "b2" * 32
POISON = "dd" * 32
ORPHAN = "c3" * 32
FACE_DOWN_Z = [0.9] * 60 + [-0.95] * 1140  # picked up face up, then laid face down


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2024, 3, day, hour, minute, second, tzinfo=TZ)


def dated(item: dict, when: datetime) -> dict:
    return {**item, "date": iso(when)}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxInfo]:
    info = start_sandbox(tmp_path_factory.mktemp("activity"), ["--today", "2024-03-15"])
    a = Person(A)
    a.results = [
        watch_result(at(11, 22), watched_s=60),  # the day before the report: not fetched
        watch_result(at(13, 20), watched_s=53, z=None, q2=None),  # uploaded late (order)
        watch_result(at(12, 10), watched_s=60),
        dated(watch_result(at(12, 0), watched_s=58, q2=False), at(12, 0)),  # exactly midnight
        watch_result(at(13, 9), watched_s=72, z=FACE_DOWN_Z, q2=False),
        dated(watch_result(at(15, 22), watched_s=61, q2=5), at(15, 23, 59, 59)),
        dated(watch_result(at(15, 23), watched_s=60), at(16, 0, 0, 1)),  # after the report
    ]
    poison = Person(POISON, results=[{"date": iso(at(14, 8)), "result": "not an object"}])
    build_study(info, [a, Person(B), poison], orphans=[ORPHAN])
    cfg = Path(info.config).read_text()
    fast = info.data_dir / "fast.toml"
    fast.write_text(cfg + "\n[limits]\nretries = 1\nretry_base_delay = 0.01\nwindow_days = 1\n")
    fast.chmod(0o600)
    try:
        yield info
    finally:
        info.stop()


def activity(info: SandboxInfo, out: Path, *flags: str, config: str | None = None) -> Result:
    return run_cli(
        [
            "user_activity",
            "--config",
            config or str(info.data_dir / "fast.toml"),
            "--server",
            "sandbox",
            "--output-dir",
            str(out),
            "--until",
            "2024-03-15",
            "--report_days",
            "4",
            *flags,
        ]
    )


EXPECTED_A = [
    "ok no | ok yes",
    "<+12s ↓ no | >-7s ??? x",
    "-",
    "ok 5",
]


def test_cells_header_order_and_window(study: SandboxInfo, tmp_path: Path) -> None:
    result = activity(study, tmp_path, "--json", f"--external_id_time={A}")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["counts"]["participants"] == 1
    assert summary["counts"]["results"] == 5  # the two outside the window were not fetched
    lines = (tmp_path / "user_activity.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "no,external_id,2024-03-12,2024-03-13,2024-03-14,2024-03-15"
    assert lines[1] == f"1,{A}," + ",".join(EXPECTED_A)
    assert len(lines) == 2


def test_all_participants_poison_and_orphan(study: SandboxInfo, tmp_path: Path) -> None:
    result = activity(study, tmp_path, "--json", "--xlsx")
    assert result.code == 1, result.err  # the poison participant failed alone
    summary = json.loads(result.out)
    assert [f["item"] for f in summary["failures"]] == [f"participant {POISON}"]
    assert any(ORPHAN[:12] in w and "no schedule" in w for w in summary["warnings"])
    rows = [ln.split(",") for ln in (tmp_path / "user_activity.csv").read_text().splitlines()[1:]]
    assert [r[:2] for r in rows] == [["1", A], ["2", B], ["3", POISON]]
    assert rows[0][2:] == EXPECTED_A
    assert rows[1][2:] == ["-"] * 4
    assert rows[2][2:] == ["error"] * 4
    book = openpyxl.load_workbook(tmp_path / "user_activity.xlsx")
    sheet = book["activity"]
    assert [c.value for c in sheet[1]] == [
        "no",
        "external_id",
        *(f"2024-03-{d}" for d in (12, 13, 14, 15)),
    ]
    colours = [sheet.cell(row=2, column=j).fill.start_color.rgb[-6:] for j in range(3, 7)]
    assert colours == ["C6EFCE", "FFC7CE", "EDEDED", "C6EFCE"]  # ok, face down, none, ok
    assert sheet.cell(row=4, column=3).fill.start_color.rgb[-6:] == "FF7C80"  # error
    assert "legend" in book.sheetnames


def test_margin_and_question(study: SandboxInfo, tmp_path: Path) -> None:
    result = activity(
        study, tmp_path, f"--external_id_time={A}", "--sec_margin=15", "--question=q1"
    )
    assert result.code == 0, result.err
    row = (tmp_path / "user_activity.csv").read_text().splitlines()[1].split(",")
    assert row[2:] == ["ok 4 | ok 4", "ok ↓ 4 | ok ??? 4", "-", "ok 4"]


def test_selection_range_clips_the_window(study: SandboxInfo, tmp_path: Path) -> None:
    """Rows active on --until are kept (B ends after it), the others listed as skipped."""
    users = tmp_path / "users.csv"
    ended = "ee" * 32
    users.write_text(
        "external_id,start_date,stop_date\n"
        f"{A},2024-03-13,\n{ended},2024-01-01,2024-03-14\n{B},2024-03-01,2024-03-20\n"
        f"{POISON},2099-01-01,\n"
    )
    result = activity(study, tmp_path, f"--excel_time={users}")
    assert result.code == 0, result.err
    out = result.out.splitlines()
    assert out[0] == "skipped 2 participants not active at 2024-03-15 23:59:"
    assert out[2].split()[:2] == ["3", ended] and out[2].endswith("ended in the past")
    assert out[3].split()[:2] == ["5", POISON] and out[3].endswith("starts in the future")
    rows = (tmp_path / "user_activity.csv").read_text().splitlines()[1:]
    assert rows == [f"1,{A},-," + ",".join(EXPECTED_A[1:]), f"2,{B},-,-,-,-"]


def test_default_windows_give_the_same_file(study: SandboxInfo, tmp_path: Path) -> None:
    """window_days = 1 (four windows) and the default (one window) agree byte for byte."""
    one, many = tmp_path / "one", tmp_path / "many"
    r1 = activity(study, one, f"--external_id_time={A}", config=study.config)
    r2 = activity(study, many, f"--external_id_time={A}")
    assert r1.code == 0 and r2.code == 0, r1.err + r2.err
    assert (one / "user_activity.csv").read_bytes() == (many / "user_activity.csv").read_bytes()


def test_unwritable_output_dir(study: SandboxInfo, tmp_path: Path) -> None:
    """An --output-dir that is a file cannot be written, even by root: exit 4, one line."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    result = activity(study, blocker, f"--external_id_time={A}", "-q")
    assert result.code == 4, result.err
    assert "is a file" in result.one_line_error()
    assert blocker.read_text() == "x"


def test_bad_flag_values_are_one_line(study: SandboxInfo, tmp_path: Path) -> None:
    for flags in (["--report_days=0"], ["--sec_margin=abc"], ["--until=yesterday"]):
        result = activity(study, tmp_path, *flags)
        assert result.code == 2, result.err
        result.one_line_error()
    assert not (tmp_path / "user_activity.csv").exists()
