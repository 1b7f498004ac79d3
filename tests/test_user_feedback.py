"""user_feedback end to end against the sandbox: file layout, order, ranges, windows."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from clitools import Result, run_cli
from fixtures_sandbox import SandboxInfo, start_sandbox
from report_helpers import Person, build_study

A = "a1" * 32
B = "b2" * 32
ORPHAN = "c3" * 32

# (participant, naive Warsaw date as a phone posts it, video, comment). DST starts on
# 2024-03-31 in Warsaw: the server answers +01:00 before and +02:00 after.
COMMENTS = [
    (A, "2024-03-30T21:00:00", "clip_A.mp4", "Ok"),
    (B, "2024-03-31T10:00:00", "sub/clip_B.mp4", 'Za ciemno, "naprawdę",\nale ok'),
    (A, "2024-03-31T01:30:00", "clip_A.mp4", "Zażółć gęślą jaźń"),
    (B, "2024-03-29T08:00:00", "clip_C.mp4", "early"),
    (A, "2024-04-01T00:00:00", "clip_A.mp4", "exactly midnight"),
]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxInfo]:
    info = start_sandbox(tmp_path_factory.mktemp("feedback"), ["--today", "2024-04-02"])
    people = {A: Person(A), B: Person(B)}
    for ext, date, video, comment in COMMENTS:
        people[ext].comments.append({"video": video, "date": date, "comment": comment})
    build_study(info, list(people.values()), orphans=[ORPHAN])
    fast = info.data_dir / "windows.toml"
    fast.write_text(Path(info.config).read_text() + "\n[limits]\nwindow_days = 1\n")
    fast.chmod(0o600)
    try:
        yield info
    finally:
        info.stop()


def feedback(info: SandboxInfo, out: Path, *flags: str, config: str | None = None) -> Result:
    return run_cli(
        [
            "user_feedback",
            "--config",
            config or info.config,
            "--server",
            "sandbox",
            "--output-dir",
            str(out),
            *flags,
        ]
    )


def rows(out: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO((out / "user_feedback.csv").read_text(encoding="utf-8"))))


def test_all_participants_newest_first(study: SandboxInfo, tmp_path: Path) -> None:
    result = feedback(study, tmp_path)
    assert result.code == 0, result.err
    assert result.out.startswith("user_feedback: 2 participants, 5 comments;")
    table = rows(tmp_path)
    assert table[0] == ["date", "external_id", "video", "comment"]
    assert table[1:] == [
        ["2024-04-01T00:00:00+02:00", A, "clip_A.mp4", "exactly midnight"],
        ["2024-03-31T10:00:00+02:00", B, "sub/clip_B.mp4", 'Za ciemno, "naprawdę",\nale ok'],
        ["2024-03-31T01:30:00+01:00", A, "clip_A.mp4", "Zażółć gęślą jaźń"],
        ["2024-03-30T21:00:00+01:00", A, "clip_A.mp4", "Ok"],
        ["2024-03-29T08:00:00+01:00", B, "clip_C.mp4", "early"],
    ]
    frame = pd.read_csv(tmp_path / "user_feedback.csv")
    assert list(frame.columns) == ["date", "external_id", "video", "comment"]
    assert len(frame) == 5


def test_range_bounds_and_json(study: SandboxInfo, tmp_path: Path) -> None:
    """``,,,start,stop``: strict start, a date-only stop includes its whole day."""
    result = feedback(study, tmp_path, "--user_time=,,,2024-03-29T08:00:00,2024-03-31", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["counts"] == {"participants": 2, "comments": 3}
    assert summary["ok"] is True and summary["bytes"] > 0
    assert [r[3] for r in rows(tmp_path)[1:]] == [
        'Za ciemno, "naprawdę",\nale ok',
        "Zażółć gęślą jaźń",
        "Ok",
    ]


def test_windows_give_the_same_bytes(study: SandboxInfo, tmp_path: Path) -> None:
    flags = ("--user_time=,,,2024-03-20,2024-04-02",)
    one, many = tmp_path / "one", tmp_path / "many"
    r1 = feedback(study, one, *flags)
    r2 = feedback(study, many, *flags, "-v", config=str(study.data_dir / "windows.toml"))
    assert r1.code == 0 and r2.code == 0, r1.err + r2.err
    assert (one / "user_feedback.csv").read_bytes() == (many / "user_feedback.csv").read_bytes()
    assert len(rows(one)) == 6


def test_one_participant_by_id(study: SandboxInfo, tmp_path: Path) -> None:
    result = feedback(study, tmp_path, f"--external_id_time={B},,")
    assert result.code == 0, result.err
    assert {r[1] for r in rows(tmp_path)[1:]} == {B}


def test_wrong_token_is_one_line(study: SandboxInfo, tmp_path: Path) -> None:
    result = feedback(study, tmp_path, "--token=" + "0" * 40)
    assert result.code == 3
    line = result.one_line_error()
    assert "rejected" in line and "0000...0000" in line and "0" * 40 not in result.err
    assert not (tmp_path / "user_feedback.csv").exists()


def test_names_hashed_with_the_profile_salt(sandbox: SandboxInfo, tmp_path: Path) -> None:
    """The shared synthetic study: --user_time with a name picks that participant only."""
    users = pd.read_csv(sandbox.study_dir / "users.csv", dtype=str)
    first = users.iloc[1]
    result = run_cli(
        [
            "user_feedback",
            "--config",
            sandbox.config,
            "--server",
            "sandbox",
            "--output-dir",
            str(tmp_path),
            f"--user_time={first['name']},{first['surname']},{first['phone']}",
            "-v",
        ]
    )
    assert result.code == 0, result.err
    assert first["name"] not in result.err + result.out
    assert first["phone"] not in result.err + result.out
    table = rows(tmp_path)
    assert len(table) > 1 and {r[1] for r in table[1:]} == {first["external_id"]}


def test_every_row_skipped_writes_an_empty_table(study: SandboxInfo, tmp_path: Path) -> None:
    users = tmp_path / "users.xlsx"
    pd.DataFrame(
        {
            "external_id": [A, B],
            "start_date": ["2099-01-01", "2000-01-01"],
            "stop_date": ["", "2000-12-31"],
        }
    ).to_excel(users, index=False)
    result = feedback(study, tmp_path, f"--excel_time={users}")
    assert result.code == 0, result.err
    out = result.out.splitlines()
    assert out[0].startswith("skipped 2 participants not active at ")
    assert out[1].split() == ["row", "external_id", "start_date", "stop_date", "reason"]
    assert out[2].split()[:2] == ["2", A] and out[2].endswith("starts in the future")
    assert out[3].split()[:2] == ["3", B] and out[3].endswith("ended in the past")
    assert out[4].startswith("user_feedback: 0 participants, 2 skipped, 0 comments;")
    assert rows(tmp_path) == [["date", "external_id", "video", "comment"]]
    quiet = feedback(study, tmp_path, f"--excel_time={users}", "-q")
    assert quiet.out == "" and quiet.err.splitlines()[:4] == out[:4]
