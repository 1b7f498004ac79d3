"""download-results against the sandbox: the documented files, their order and content."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fixtures_sandbox import SandboxInfo
from longterm_sync.sandbox.fill import FillClient
from longterm_sync.timeutil import WARSAW
from report_helpers import Person, build_study
from rest_helpers import check_format, config_with_limits, download, load, participant_ids, tree


def instant(row: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(row["date"])


@pytest.fixture(scope="module")
def full_run(sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("results-full")
    result = download(sandbox, out, "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["ok"] and summary["counts"]["participants"] == len(participant_ids(sandbox))
    return out


def test_writes_every_documented_file(sandbox: SandboxInfo, full_run: Path) -> None:
    ids = participant_ids(sandbox)
    names = set(tree(full_run))
    expected = {"results_all.json", "results_feedback_all.json"}
    commented = {r["external_id"] for r in load(full_run / "results_feedback_all.json")}
    assert commented and commented <= set(ids)
    for ext in ids:
        expected |= {f"results_{ext}.json"}
        if ext in commented:  # as the original: a feedback file only for who has feedback
            expected |= {f"results_feedback_{ext}.json"}
    assert names == expected
    for data in tree(full_run).values():
        check_format(data)  # the documented format: one compact item per line


def test_participant_files_are_sorted_and_complete(sandbox: SandboxInfo, full_run: Path) -> None:
    ids = participant_ids(sandbox)
    total = 0
    for ext in ids:
        results = load(full_run / f"results_{ext}.json")
        path = full_run / f"results_feedback_{ext}.json"
        feedback = load(path) if path.exists() else []
        assert [instant(r) for r in results] == sorted(instant(r) for r in results)
        assert [instant(r) for r in feedback] == sorted(instant(r) for r in feedback)
        assert {r["external_id"] for r in results + feedback} <= {ext}
        total += len(results)
    assert total > 0


def test_user_feedback_is_every_comment_on_that_video(sandbox: SandboxInfo, full_run: Path) -> None:
    several = 0
    for ext in participant_ids(sandbox):
        path = full_run / f"results_feedback_{ext}.json"
        feedback = load(path) if path.exists() else []
        for result in load(full_run / f"results_{ext}.json"):
            video = result["result"]["video"]
            expected = [f for f in feedback if f["video"] == video]
            assert result["result"]["user_feedback"] == expected
            several += len(expected) > 1
    assert several, "the study should have a video with two comments (the server's bug case)"


def test_all_files_concatenate_participants_in_selection_order(
    sandbox: SandboxInfo, full_run: Path
) -> None:
    ids = participant_ids(sandbox)
    for prefix in ("results_", "results_feedback_"):
        joined: list[Any] = []
        for ext in ids:  # users.csv lists them in creation order, as /api/users/ does
            joined.extend(load(full_run / f"{prefix}{ext}.json"))
        assert load(full_run / f"{prefix}all.json") == joined


def test_window_size_does_not_change_a_byte(
    sandbox: SandboxInfo, full_run: Path, tmp_path: Path
) -> None:
    config = config_with_limits(sandbox, tmp_path, window_days=1, rest_concurrency=3)
    out = tmp_path / "out"
    result = download(sandbox, out, "--json", config=config)
    assert result.code == 0, result.err
    assert json.loads(result.out)["details"]["windows"] > len(participant_ids(sandbox))
    assert tree(out) == tree(full_run)


def test_modes_write_only_their_files(sandbox: SandboxInfo, tmp_path: Path) -> None:
    only_fb = tmp_path / "fb"
    assert download(sandbox, only_fb, "--mode=feedback", "-q").code == 0
    assert all(n.startswith("results_feedback_") for n in tree(only_fb))
    only_res = tmp_path / "res"
    result = download(sandbox, only_res, "--mode", "results", script=True)
    assert result.code == 0, result.err
    names = tree(only_res)
    assert "results_all.json" in names and not any("feedback" in n for n in names)


def test_range_of_one_participant_keeps_strict_bounds(
    sandbox: SandboxInfo, full_run: Path, tmp_path: Path
) -> None:
    ext = participant_ids(sandbox)[1]
    everything = load(full_run / f"results_{ext}.json")
    start, stop = instant(everything[1]), instant(everything[-2])
    arg = f"--external_id_time={ext},{start.isoformat()},{stop.isoformat()}"
    out = tmp_path / "range"
    result = download(sandbox, out, arg, "-q")
    assert result.code == 0, result.err
    got = load(out / f"results_{ext}.json")
    assert got == [r for r in everything if start < instant(r) < stop]
    assert len(got) == len(everything) - 4  # both rows on the bounds are excluded
    # the participant's feedback is on its first day, outside the range: no feedback file
    feedback = load(full_run / f"results_feedback_{ext}.json")
    assert feedback and not [r for r in feedback if start < instant(r) < stop]
    assert set(tree(out)) == {
        "results_all.json",
        "results_feedback_all.json",
        f"results_{ext}.json",
    }


def _result(moment: datetime, video: str = "clip_A.mp4") -> dict[str, Any]:
    return {"date": moment.isoformat(), "result": {"video": video, "service": "A"}}


async def add_entry(info: SandboxInfo, ext: str, day: str) -> None:
    """Append a schedule entry (after today + 2, so the server's merge keeps it)."""
    entry = {
        "start": f"{day}T00:00:00",
        "end": f"{day}T23:59:59",
        "service": [{"service_name": "A", "video": "clip_A.mp4"}],
        "reply_form": [],
    }
    async with aiohttp.ClientSession() as session:
        await FillClient(session, info.url).upload_schedule(
            {"external_id": ext, "schedule": [entry]}, info.token
        )


def test_wide_range_around_a_short_schedule_is_few_requests(
    sandbox: SandboxInfo, full_run: Path, tmp_path: Path
) -> None:
    config = config_with_limits(sandbox, tmp_path, window_days=1)
    out = tmp_path / "wide"
    result = download(sandbox, out, "--user_time=,,,2000-01-01,2040-01-01", "--json", config=config)
    assert result.code == 0, result.err
    participants = len(participant_ids(sandbox))
    # boundaries only where the schedules are (about 12 days each), not 40 years of them
    assert json.loads(result.out)["details"]["windows"] < 20 * participants
    assert tree(out) == tree(full_run)


def test_rows_on_window_boundaries_appear_once(sandbox_factory: Any, tmp_path: Path) -> None:
    info = sandbox_factory()
    start = datetime(2024, 3, 1, tzinfo=WARSAW)
    us = timedelta(microseconds=1)
    boundary = start + timedelta(days=1)  # window_days=1: the first internal boundary
    moments = [
        start,  # on the range's start: excluded (strict, like one request)
        start + us,
        boundary - us,
        boundary,
        boundary + us,
        start + timedelta(days=2),  # the second boundary
        start + timedelta(days=3) - us,
        start + timedelta(days=3),  # on the range's stop: excluded
    ]
    ext = "boundary-participant"
    person = Person(ext, results=[_result(m) for m in reversed(moments)])
    person.comments.append({"video": "clip_A.mp4", "date": boundary.isoformat(), "comment": "x"})
    build_study(info, [person])
    asyncio.run(add_entry(info, ext, "2024-03-20"))  # the schedule now spans the range
    rng = f"--external_id_time={ext},{start.isoformat()},{(start + timedelta(days=3)).isoformat()}"
    small = config_with_limits(info, tmp_path, window_days=1)
    out_small, out_one = tmp_path / "small", tmp_path / "one"
    result = download(info, out_small, rng, "--json", config=small)
    assert result.code == 0, result.err
    assert json.loads(result.out)["details"]["windows"] == 3
    assert download(info, out_one, rng, "-q").code == 0
    got = [instant(r) for r in load(out_small / f"results_{ext}.json")]
    assert got == moments[1:-1]
    assert tree(out_small) == tree(out_one)
    rebuilt = load(out_small / f"results_{ext}.json")[0]["result"]["user_feedback"]
    assert [f["comment"] for f in rebuilt] == ["x"]


def test_result_missing_fields_is_reported_not_fatal(sandbox_factory: Any, tmp_path: Path) -> None:
    info = sandbox_factory()
    moment = datetime(2024, 3, 2, 12, tzinfo=WARSAW)
    person = Person(
        "incomplete-participant",
        results=[
            _result(moment),
            {"date": (moment + timedelta(hours=1)).isoformat(), "result": {"service": "A"}},
        ],
    )
    build_study(info, [person])
    out = tmp_path / "out"
    result = download(info, out, "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["counts"]["results"] == 2
    assert summary["counts"]["incomplete items"] == 1
    assert any("result.video" in w for w in summary["warnings"])
    rows = load(out / "results_incomplete-participant.json")
    assert rows[1]["result"] == {"service": "A", "user_feedback": []}


def test_unknown_participant_is_a_failure_without_a_file(
    sandbox: SandboxInfo, tmp_path: Path
) -> None:
    known = participant_ids(sandbox)[0]
    result = download(sandbox, tmp_path, f"--excel_time={users_csv(tmp_path, known)}", "--json")
    assert result.code == 1, result.err
    summary = json.loads(result.out)
    assert [f["item"] for f in summary["failures"]] == ["participant nobody-here"]
    assert "no schedule" in summary["failures"][0]["reason"]
    assert not (tmp_path / "results_nobody-here.json").exists()
    assert not (tmp_path / "results_feedback_nobody-here.json").exists()
    assert (tmp_path / f"results_{known}.json").exists()  # the known one is written


def users_csv(folder: Path, known: str) -> Path:
    path = folder / "users.csv"
    path.write_text(f"external_id,start_date,stop_date\n{known},,\nnobody-here,,\n")
    return path


def test_progress_bar_on_a_terminal_leaves_the_same_files(
    sandbox: SandboxInfo, full_run: Path, tmp_path: Path
) -> None:
    """stderr on a pseudo-terminal draws the participant bar; stdout and the files are as
    without it (the bar is transient and never reaches stdout)."""
    import os
    import subprocess
    import sys

    out = tmp_path / "tty"
    primary, secondary = os.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "longterm_sync", "download-results", "--config",
             sandbox.config, "--server", "sandbox", "--output-dir", str(out)],
            stdout=subprocess.PIPE, stderr=secondary, timeout=120, check=False,
            env={**os.environ, "COLUMNS": "160"},
        )  # fmt: skip
        os.close(secondary)
        drawn = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(primary)
    assert proc.returncode == 0, drawn.decode(errors="replace")
    assert b"participants" in drawn and b"Traceback" not in drawn
    assert proc.stdout.decode().startswith("download-results: ")
    for name in ("results_all.json", "results_feedback_all.json"):
        assert (out / name).read_bytes() == (full_run / name).read_bytes()
