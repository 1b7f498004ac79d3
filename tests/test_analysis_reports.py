"""device-report and missing-videos against the synthetic study, whose generator makes every
5th participant from the 3rd change phone halfway and every 4th report a video not due."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from analysis_helpers import cli, local_ms, posted_results, shared_study
from fixtures_sandbox import SandboxInfo
from rest_helpers import download

UNKNOWN = "f0" * 32


@pytest.fixture(scope="module")
def folder(sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("analysis-reports")
    assert download(sandbox, out).code == 0
    return out


def test_device_report_finds_the_change_halfway(
    sandbox: SandboxInfo, folder: Path, tmp_path: Path
) -> None:
    study = shared_study()
    result = cli(sandbox, "device-report", tmp_path, "--from", str(folder), "--xlsx", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["counts"]["changes"] == 1
    frame = pd.read_csv(tmp_path / "device_report.csv", dtype=str)
    changer = next(p for p in study.participants if p.changes_phone)
    own = frame[frame.external_id == changer.external_id]
    assert list(own.device_no) == ["1", "2"]
    assert list(own.device_model) == ["iPhone 11", "Pixel 7"]
    dates = sorted(local_ms(body["date"]) for p, body in posted_results(study) if p is changer)
    before = [d for d in dates if d < study.middle_day.isoformat()]
    assert own.first_seen.iloc[0] == dates[0] and own.last_seen.iloc[0] == before[-1]
    assert own.first_seen.iloc[1] == dates[len(before)] and own.last_seen.iloc[1] == dates[-1]
    assert own.viewings.astype(int).sum() == len(dates)
    others = frame[frame.external_id != changer.external_id]
    assert set(others.device_no) == {"1"} and len(others) == len(study.participants) - 1
    # the printed table says the same
    text = cli(sandbox, "device-report", tmp_path, "--from", str(folder)).out
    line = next(ln for ln in text.splitlines() if ln.startswith(changer.external_id[:12]))
    assert line.split()[1:3] == ["2", "1"] and "Pixel 7" in line
    assert (tmp_path / "device_report.xlsx").stat().st_size > 0


def _expected_reports() -> list[tuple[str, str, str, str]]:
    study = shared_study()
    out = []
    for p in study.participants:
        for post in study.posts(p):
            if post.route == "missing-videos":
                when = datetime.fromisoformat(post.body["date"])
                due = study._services(p.index, when.date())
                status = "due" if post.body["video"] in due else "not due"
                out.append((p.external_id, when.date().isoformat(), post.body["video"], status))
    return sorted(out)


def _check_missing(path: Path) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    got = sorted(zip(frame.external_id, frame.entry_day, frame.video, frame.status, strict=True))
    expected = _expected_reports()
    assert got == expected
    assert {"due", "not due"} == {e[3] for e in expected}
    not_due = frame[frame.status == "not due"].iloc[0]
    assert not_due.video not in not_due.due_videos.split()
    first = datetime.fromisoformat(not_due.scheduled_on.split()[0]).date()
    day = datetime.fromisoformat(not_due.entry_day).date()
    assert first != day and abs(first - day) <= timedelta(days=6)


def test_missing_videos_from_the_server(sandbox: SandboxInfo, tmp_path: Path) -> None:
    result = cli(sandbox, "missing-videos", tmp_path, "--xlsx")
    assert result.code == 0, result.err
    _check_missing(tmp_path / "missing_videos.csv")
    assert "not due" in result.out.splitlines()[0]


def test_missing_videos_from_a_folder_and_for_one_participant(
    sandbox: SandboxInfo, tmp_path: Path
) -> None:
    study = shared_study()
    src = tmp_path / "latest"
    src.mkdir()
    reports = [
        {"external_id": p.external_id, "date": local_ms(post.body["date"]), **post.body}
        | {"date": local_ms(post.body["date"])}
        for p in study.participants
        for post in study.posts(p)
        if post.route == "missing-videos"
    ]
    (src / "missing_videos.json").write_text(
        "[\n" + ",\n".join(json.dumps(r) for r in reports) + "\n]\n"
    )
    for p in study.participants:
        (src / f"schedule_{p.external_id}.json").write_text(json.dumps(p.payload, indent=2))
    result = cli(sandbox, "missing-videos", tmp_path / "out", "--from", str(src))
    assert result.code == 0, result.err
    _check_missing(tmp_path / "out" / "missing_videos.csv")
    who = next(p for p in study.participants if p.reports_not_due)
    one = cli(sandbox, "missing-videos", tmp_path / "one", f"--external_id_time={who.external_id}")
    assert one.code == 0, one.err
    frame = pd.read_csv(tmp_path / "one" / "missing_videos.csv", dtype=str)
    assert set(frame.external_id) == {who.external_id} and len(frame) == 2


def test_reports_refuse_bad_input(sandbox: SandboxInfo, folder: Path, tmp_path: Path) -> None:
    for command in ("device-report", "missing-videos"):
        result = cli(sandbox, command, tmp_path, f"--external_id_time={UNKNOWN}")
        assert result.code == 1 and UNKNOWN in result.out, result.err
    result = cli(sandbox, "missing-videos", tmp_path, "--from", str(folder))
    assert result.code == 2
    assert "no missing_videos.json in" in result.one_line_error()
    result = cli(sandbox, "device-report", tmp_path, "--from", str(tmp_path / "nope"))
    assert result.code == 2 and "is not a folder" in result.one_line_error()
