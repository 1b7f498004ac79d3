"""``longterm demo``: the sandbox study backed up end to end, as ``make demo`` runs it."""

from __future__ import annotations

import json
from pathlib import Path

from clitools import run_cli

SMALL = ["--users", "2", "--days", "3", "--video-mb", "0.05"]


def test_demo_full_backup_new_day_nightly_verify(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    first = run_cli(["demo", "--dir", str(folder), *SMALL, "--json"])
    assert first.code == 0, first.err
    summary = json.loads(first.out)
    assert summary["ok"]
    full, nightly, verify = summary["parts"]
    assert (full["details"]["kind"], nightly["details"]["kind"]) == ("full", "nightly")
    assert verify["command"] == "backup verify" and verify["ok"]
    assert summary["counts"]["results added by the sandbox"] > 0
    # the nightly run fetched the lookback window and stored only the new day
    runs = summary["details"]["runs"]
    assert 0 < runs[1]["records added"] < runs[0]["records added"]
    assert runs[1]["MB stored"] < runs[0]["MB stored"]
    backup = folder / "backup"
    latest = backup / "text_files" / "latest"
    assert len(list(latest.glob("schedule_*.json"))) == 2
    assert (latest / "results_all.json").stat().st_size > 0
    videos = list((backup / "media_files").rglob("*.mp4"))
    assert videos and all(Path(f"{v}.md5sum").exists() for v in videos)
    assert (backup / "backup_log.txt").read_text().count("== ") == 2

    second = run_cli(["demo", "--dir", str(folder), *SMALL, "--json"])
    assert second.code == 0, second.err
    again = json.loads(second.out)
    assert [p["details"].get("kind") for p in again["parts"][:2]] == ["nightly", "nightly"]
    assert again["details"]["added_day"] > summary["details"]["added_day"]
    videos_again = again["parts"][0]["parts"][0]
    assert "downloaded" not in videos_again["counts"]


def test_demo_human_summary_masks_the_token(tmp_path: Path) -> None:
    done = run_cli(["demo", "--dir", str(tmp_path / "d"), *SMALL])
    assert done.code == 0, done.err
    assert "after a new day" in done.out and "records added" in done.out
    site = done.out.rsplit("the study's HTML site: ", 1)[1].strip()
    assert site == str((tmp_path / "d" / "backup" / "report" / "index.html").resolve())
    assert "Needs attention" in Path(site).read_text(encoding="utf-8")
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
    stale = folder / "backup" / "stale.json"
    stale.write_text("[]")
    again = run_cli(["demo", "--dir", str(folder), *SMALL, "--fresh", "--json"])
    assert again.code == 0, again.err
    assert not stale.exists()
    first = json.loads(again.out)["parts"][0]
    assert first["details"]["kind"] == "full"
    assert first["parts"][0]["counts"]["downloaded"] > 0


def test_demo_bad_numbers_are_one_line_errors(tmp_path: Path) -> None:
    done = run_cli(["demo", "--dir", str(tmp_path / "d"), "--users", "0"])
    assert done.code == 2
    assert "--users: must be at least 1" in done.one_line_error()
    assert not (tmp_path / "d").exists()
