"""upload-schedule against the sandbox platform (REST over HTTP, videos over SSH).

The merge plan is checked against what the sandbox then stores; the sandbox's date is pinned
so that "today + 2" is the same day for the plan and for the server.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from clitools import REPO, run_cli
from fixtures_sandbox import SandboxInfo, start_sandbox
from longterm_sync.config import ServerProfile, load_config
from longterm_sync.events import ItemDone, RecordingReporter
from longterm_sync.ids import external_id
from longterm_sync.merge_plan import Action, MergePlan
from longterm_sync.pipelines.upload import UploadOptions, run_upload
from longterm_sync.summary import Summary
from upload_helpers import (
    API_MD_ACTIONS,
    API_MD_RESULT,
    API_MD_STORED,
    API_MD_UPLOAD,
    entry,
    get_json,
    put_videos,
    relative_days,
    schedule,
    write_json,
)

TODAY = date(2026, 12, 1)


class PlanRecorder(RecordingReporter):
    """Records what the pipeline reports, as the CLI's printer would receive it."""

    @property
    def plans(self) -> dict[str, MergePlan]:
        return {e.item: e.data for e in self.of(ItemDone) if isinstance(e.data, MergePlan)}

    @property
    def matches(self) -> dict[str, bool]:
        return {e.item: e.data for e in self.of(ItemDone) if isinstance(e.data, bool)}


def stored_schedule(info: Any, eid: str) -> dict[str, Any] | None:
    rows = get_json(info, f"/api/users/schedules/?external_id={eid}")
    assert len(rows) <= 1
    return rows[0]["schedule"] if rows else None


def profile_of(info: Any) -> ServerProfile:
    return load_config(info.config).profile("sandbox")


def upload(
    info: Any,
    jsons: Path,
    videos: Path,
    *,
    dry_run: bool = False,
    today: date = TODAY,
) -> tuple[Summary, PlanRecorder]:
    config = load_config(info.config)
    recorder = PlanRecorder()
    options = UploadOptions(video_path=videos, jsons_path=jsons, dry_run=dry_run, today=today)
    summary = asyncio.run(
        run_upload(config.profile("sandbox"), config.limits, options, reporter=recorder)
    )
    return summary, recorder


@pytest.fixture(scope="module")
def pinned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxInfo]:
    """One empty sandbox whose server date is TODAY; each test uses its own participants."""
    info = start_sandbox(tmp_path_factory.mktemp("upload-sandbox"), ["--today", TODAY.isoformat()])
    try:
        yield info
    finally:
        info.stop()


def _doc(offsets: list[int], eid: str, video: str = "subset1/clip_A.mp4") -> dict[str, Any]:
    return schedule(relative_days(TODAY, offsets), external_id=eid, video=video)


def test_api_md_example_plan_matches_what_is_stored(pinned: Any, tmp_path: Path) -> None:
    videos = put_videos(
        tmp_path / "videos", {"subset1/clip_A.mp4": b"A" * 1000, "subset1/clip_B.mp4": b"B" * 999}
    )
    first = tmp_path / "first"
    write_json(first / "p1.json", _doc(API_MD_STORED, "P1"))
    summary, rec = upload(pinned, first, videos)
    assert not summary.failures, summary.lines()
    assert rec.plans["p1.json"].new_participant
    assert rec.matches == {"p1.json": True}
    stored = stored_schedule(pinned, "P1")
    assert stored is not None and stored["schedule"] == rec.plans["p1.json"].result

    second = tmp_path / "second"
    write_json(second / "p1.json", _doc(API_MD_UPLOAD, "P1", video="subset1/clip_B.mp4"))
    summary, rec = upload(pinned, second, videos)
    assert not summary.failures, summary.lines()
    plan = rec.plans["p1.json"]
    assert [e.action for e in plan.entries] == API_MD_ACTIONS
    stored = stored_schedule(pinned, "P1")
    assert stored is not None
    assert stored["schedule"] == plan.result
    days = [(date.fromisoformat(e["start"][:10]) - TODAY).days for e in stored["schedule"]]
    assert days == API_MD_RESULT
    assert rec.matches == {"p1.json": True}


def test_offset_and_naive_start_make_two_entries(pinned: Any, tmp_path: Path) -> None:
    videos = put_videos(tmp_path / "videos", {"subset1/clip_A.mp4": b"A"})
    write_json(tmp_path / "a" / "p2.json", _doc([5], "P2"))
    upload(pinned, tmp_path / "a", videos)
    doc = _doc([], "P2")
    doc["schedule"] = [entry(TODAY + timedelta(days=5), offset="+01:00")]
    write_json(tmp_path / "b" / "p2.json", doc)
    _summary, rec = upload(pinned, tmp_path / "b", videos)
    plan = rec.plans["p2.json"]
    assert plan.entries[0].action is Action.APPEND
    assert "already has an entry" in plan.entries[0].note
    stored = stored_schedule(pinned, "P2")
    assert stored is not None and stored["schedule"] == plan.result
    assert len(stored["schedule"]) == 2


def test_dry_run_sends_nothing(pinned: Any, tmp_path: Path) -> None:
    videos = put_videos(tmp_path / "videos", {"dry/clip.mp4": b"D" * 10})
    write_json(tmp_path / "j" / "p3.json", _doc([3], "P3", video="dry/clip.mp4"))
    before = (get_json(pinned, "/api/users/"), get_json(pinned, "/api/users/schedules/"))
    summary, rec = upload(pinned, tmp_path / "j", videos, dry_run=True)
    assert not summary.failures, summary.lines()
    assert rec.plans["p3.json"].new_participant and not rec.matches
    assert (get_json(pinned, "/api/users/"), get_json(pinned, "/api/users/schedules/")) == before
    media = pinned.media_root
    assert not (media / "dry").exists()
    assert not (videos / "dry" / "clip.mp4.md5sum").exists()
    assert summary.counts["videos would upload"] == 1


def test_names_never_sent_and_invalid_file_makes_no_account(pinned: Any, tmp_path: Path) -> None:
    videos = put_videos(tmp_path / "videos", {"subset1/clip_A.mp4": b"A" * 10})
    profile = profile_of(pinned)
    good = schedule(relative_days(TODAY, [3]), name="Zofia", surname="Sekretna", phone="5550199")
    write_json(tmp_path / "j" / "good.json", good)
    bad = schedule(relative_days(TODAY, [3]), name="Adam", surname="Zly", phone="5550100")
    bad["schedule"][0]["start"] = "2026-12-04"  # would crash the server after creating the account
    write_json(tmp_path / "j" / "bad.json", bad)
    summary, _rec = upload(pinned, tmp_path / "j", videos)
    assert [f.item for f in summary.failures] == ["bad.json"]
    eid = external_id("Zofia", "Sekretna", "5550199", profile.salt)
    stored = stored_schedule(pinned, eid)
    assert stored is not None and stored["external_id"] == eid
    text = json.dumps(get_json(pinned, "/api/users/schedules/"))
    for secret in ("Zofia", "Sekretna", "5550199", '"name"', '"surname"', '"phone"'):
        assert secret not in text
    for path in Path(pinned.data_dir).rglob("*.sqlite3"):
        assert b"Sekretna" not in path.read_bytes()
    accounts = [u["external_id"] for u in get_json(pinned, "/api/users/")]
    assert external_id("Adam", "Zly", "5550100", profile.salt) not in accounts


def test_video_must_exist_locally_or_on_the_server(pinned: Any, tmp_path: Path) -> None:
    media = pinned.media_root
    (media / "old").mkdir(parents=True, exist_ok=True)
    (media / "old" / "server_only.mp4").write_bytes(b"S")
    write_json(tmp_path / "j" / "on_server.json", _doc([3], "P4", video="old/server_only.mp4"))
    write_json(tmp_path / "j" / "nowhere.json", _doc([3], "P5", video="old/missing.mp4"))
    summary, _rec = upload(pinned, tmp_path / "j", tmp_path / "no-videos")
    assert [f.item for f in summary.failures] == ["nowhere.json"]
    assert "old/missing.mp4" in summary.failures[0].reason
    assert stored_schedule(pinned, "P4") is not None
    assert "P5" not in [u["external_id"] for u in get_json(pinned, "/api/users/")]


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_cli_end_to_end_videos_and_schedules(pinned: Any, tmp_path: Path) -> None:
    work = tmp_path / "study"
    clips = {"subset1/clip_A.mp4": os.urandom(300_000), "top.mp4": os.urandom(1000)}
    put_videos(work / "videos", clips)
    write_json(work / "user_001.json", _doc([3, 4], "P6", video="subset1/clip_A.mp4"))
    args = [
        "upload-schedule",
        f"--config={pinned.config}",
        "--server=sandbox",
        f"--today={TODAY.isoformat()}",
    ]
    result = run_cli(args, cwd=work)
    assert result.code == 0, result.out + result.err
    assert "participant P6 (user_001.json): new, whole schedule stored" in result.out
    media = pinned.media_root
    for name, data in clips.items():
        assert (work / "videos" / f"{name}.md5sum").read_text() == _md5(data) + "\n"
        assert (media / name).read_bytes() == data
        assert (media / f"{name}.md5sum").read_text() == _md5(data) + "\n"
    assert stored_schedule(pinned, "P6") is not None
    assert pinned.token not in result.out + result.err

    again = run_cli([*args, "--json"], cwd=work)
    assert again.code == 0, again.err
    data = json.loads(again.out)
    assert data["details"]["plans"][0]["entries"][0]["action"] == "unchanged"
    assert data["counts"]["schedules already up to date"] == 1
    assert data["counts"]["videos skipped (unchanged)"] == 2
    assert not any("uploaded" in k or "sent" in k for k in data["counts"]), data["counts"]


def _pty_run(args: list[str], answer: str, cwd: Path) -> tuple[int, str]:
    """Run the CLI with a terminal on stdin (so it may ask) and type ``answer``."""
    master, slave = os.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKEN_", "LONGTERM_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "longterm_sync", *args],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
    )
    os.close(slave)
    os.write(master, answer.encode() + b"\n")
    out, err = proc.communicate(timeout=120)
    os.close(master)
    assert REPO.exists()
    return proc.returncode, out.decode() + err.decode()


@pytest.mark.parametrize(("answer", "code"), [("n", 2), ("y", 0)])
def test_prod_asks_before_sending(pinned: Any, tmp_path: Path, answer: str, code: int) -> None:
    text = Path(pinned.config).read_text(encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(text.replace("[servers.sandbox]", "[servers.prod]"), encoding="utf-8")
    config.chmod(0o600)
    work = tmp_path / "study"
    write_json(work / "p7.json", _doc([3], "P7"))
    put_videos(work / "videos", {"subset1/clip_A.mp4": b"A"})
    args = ["upload-schedule", f"--config={config}", "--server=prod", f"--today={TODAY}"]
    status, output = _pty_run(args, answer, work)
    assert status == code, output
    assert "[y/N]" in output
    assert "participant P7 (p7.json): new" in output  # the plan is shown before the question
    assert (stored_schedule(pinned, "P7") is not None) == (answer == "y")


def test_wrong_token_is_one_line_naming_the_server(pinned: Any, tmp_path: Path) -> None:
    work = tmp_path / "study"
    write_json(work / "p8.json", _doc([3], "P8"))
    put_videos(work / "videos", {"subset1/clip_A.mp4": b"A"})
    result = run_cli(
        [
            "upload-schedule",
            f"--config={pinned.config}",
            "--server=sandbox",
            "--token=ffffffffffffffffffffffffffffffffffffffff",
        ],
        cwd=work,
    )
    assert result.code == 3, result.out + result.err
    line = result.one_line_error()
    assert pinned.url in line or "sandbox" in line
    assert "P8" not in [u["external_id"] for u in get_json(pinned, "/api/users/")]


def test_a_wrong_today_is_caught_by_comparing_with_the_answer(pinned: Any, tmp_path: Path) -> None:
    videos = put_videos(tmp_path / "videos", {"subset1/clip_A.mp4": b"A"})
    write_json(tmp_path / "a" / "p9.json", _doc([5], "P9"))
    upload(pinned, tmp_path / "a", videos)
    write_json(tmp_path / "b" / "p9.json", _doc([1], "P9"))
    # The client believes it is three days earlier than the server does.
    summary, rec = upload(pinned, tmp_path / "b", videos, today=TODAY - timedelta(days=3))
    assert rec.plans["p9.json"].entries[0].action is Action.APPEND
    assert rec.matches == {"p9.json": False}
    assert any("different entry list than planned" in w for w in summary.warnings)


def test_ignored_language_change_is_said_even_with_quiet(pinned: Any, tmp_path: Path) -> None:
    """Only entries merge: a new language or comments for an existing participant is
    announced in the plan, and with -q on stderr."""
    work = tmp_path / "study"
    put_videos(work / "videos", {"subset1/clip_A.mp4": b"clip"})
    write_json(work / "user_001.json", _doc([3, 4], "P-lang"))
    args = ["upload-schedule", f"--config={pinned.config}", "--server=sandbox"]
    args.append(f"--today={TODAY.isoformat()}")
    assert run_cli(args, cwd=work).code == 0
    write_json(work / "user_001.json", {**_doc([3, 4, 5], "P-lang"), "language": "NO"})
    result = run_cli([*args, "-q"], cwd=work)
    assert result.code == 0, result.err
    assert result.out == ""
    assert "warning: language 'NO' differs from the stored 'PL'" in result.err
    assert (stored_schedule(pinned, "P-lang") or {})["language"] == "PL"
