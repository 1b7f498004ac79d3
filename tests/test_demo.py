"""``longterm demo``: the sandbox study backed up end to end, as ``make demo`` runs it."""

from __future__ import annotations

import json
from pathlib import Path

from clitools import run_cli

SMALL = ["--users", "2", "--days", "3", "--video-mb", "0.05"]


def test_demo_backs_up_everything_then_runs_incrementally(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    first = run_cli(["demo", "--dir", str(folder), *SMALL, "--json"])
    assert first.code == 0, first.err
    summary = json.loads(first.out)
    jobs = {part["command"]: part for part in summary["parts"]}
    assert set(jobs) == {
        "download-schedule",
        "download-results",
        "user_feedback",
        "user_activity",
        "videos",
    }
    assert summary["ok"] and summary["counts"]["failed jobs"] == 0
    assert jobs["download-schedule"]["counts"]["participants"] == 2
    assert jobs["videos"]["counts"]["downloaded"] > 0
    backup = folder / "backup"
    assert len(list((backup / "schedules").glob("schedule_*.json"))) == 2
    assert (backup / "results" / "results_all.json").stat().st_size > 0
    for name in ("user_feedback.csv", "user_activity.csv", "user_activity.xlsx"):
        assert (backup / "reports" / name).stat().st_size > 0
    videos = [p for p in (backup / "videos").rglob("*.mp4")]
    assert videos and all(Path(f"{v}.md5sum").exists() for v in videos)
    # the orphan account is reported once, not once per job
    warnings = [w for part in summary["parts"] for w in part["warnings"]]
    assert len(warnings) == len(set(warnings))

    second = run_cli(["demo", "--dir", str(folder), *SMALL, "--json"])
    assert second.code == 0, second.err
    videos_again = next(p for p in json.loads(second.out)["parts"] if p["command"] == "videos")
    assert "downloaded" not in videos_again["counts"]
    assert videos_again["counts"]["skipped (md5 matches)"] == len(videos)


def test_demo_human_summary_masks_the_token(tmp_path: Path) -> None:
    done = run_cli(["demo", "--dir", str(tmp_path / "d"), *SMALL])
    assert done.code == 0, done.err
    assert "backup: 5 jobs, 0 failed jobs" in done.out
    token = (tmp_path / "d" / "server" / "config.toml").read_text().split('token = "')[1][:40]
    assert token not in done.out + done.err
    assert f"{token[:4]}...{token[-4:]}" in done.out


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    (precious / "backup").mkdir(parents=True)
    (precious / "backup" / "thesis.txt").write_text("years of work")
    done = run_cli(["demo", "--dir", str(precious), "--fresh", *SMALL])
    assert done.code == 2
    assert "was not made by `longterm demo`" in done.one_line_error()
    assert (precious / "backup" / "thesis.txt").read_text() == "years of work"


def test_demo_fresh_starts_over(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    assert run_cli(["demo", "--dir", str(folder), *SMALL, "-q"]).code == 0
    stale = folder / "backup" / "results" / "stale.json"
    stale.write_text("[]")
    again = run_cli(["demo", "--dir", str(folder), *SMALL, "--fresh", "--json"])
    assert again.code == 0, again.err
    assert not stale.exists()
    videos = next(p for p in json.loads(again.out)["parts"] if p["command"] == "videos")
    assert videos["counts"]["downloaded"] > 0


def test_demo_bad_numbers_are_one_line_errors(tmp_path: Path) -> None:
    done = run_cli(["demo", "--dir", str(tmp_path / "d"), "--users", "0"])
    assert done.code == 2
    assert "--users: must be at least 1" in done.one_line_error()
    assert not (tmp_path / "d").exists()
