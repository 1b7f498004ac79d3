"""The event stream, the JSON-lines log and the one failure policy, against the sandbox.

Events are recorded from real runs (RecordingReporter); the log is read back from the file
a real ``--log-json`` run appended to; the policy is checked with a poison participant (an
item error: one fails, the run goes on) and a disk that refuses (a job error: the run stops).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import stat
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from clitools import run_cli
from fixtures_sandbox import SANDBOX_TODAY, SandboxInfo
from longterm_sync.config import load_config
from longterm_sync.errors import (
    AuthError,
    ConfigError,
    Exhausted,
    FileFailed,
    LocalIOError,
    ProtocolError,
    Retryable,
    Scope,
    TransientError,
    scope_of,
)
from longterm_sync.events import (
    ItemDone,
    ItemFailed,
    Job,
    Planned,
    Progress,
    RecordingReporter,
    Warned,
)
from longterm_sync.pipelines.activity import ActivityOptions, run_activity
from longterm_sync.pipelines.results import ResultsOptions, run_download_results
from longterm_sync.select import Participant, Selection
from longterm_sync.workers import run_items
from rest_helpers import config_with_limits, download
from upload_helpers import put_videos, relative_days, schedule, write_json

FAULT_STUDY = (
    "--users", "4", "--days", "6", "--samples", "100", "--seed", "7", "--video-mb", "0",
)  # fmt: skip


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- the event stream ------------------------------------------------------------------------


def test_event_stream_of_a_real_download_results(sandbox: SandboxInfo, tmp_path: Path) -> None:
    config = load_config(sandbox.config)
    rec = RecordingReporter()
    options = ResultsOptions(output_dir=tmp_path, selection=Selection(participants=None))
    summary = asyncio.run(
        run_download_results(config.profile("sandbox"), config.limits, options, reporter=rec)
    )
    assert summary.ok, summary.lines()
    (planned,) = rec.of(Planned)
    assert planned.job == "download-results"
    done = rec.of(ItemDone)
    before = rec.events[: rec.events.index(planned)]  # who the run covers, then the work
    assert all(isinstance(e, Warned | ItemFailed) for e in before)
    assert rec.events.index(planned) < rec.events.index(done[0])
    assert planned.items == len(done) == summary.counts["participants"] > 0
    assert len({e.item for e in done}) == len(done)  # each participant once
    assert all(e.item.startswith("participant ") for e in done)
    assert sum(e.counts["results"] for e in done) == summary.counts["results"]
    assert sum(e.counts["feedback"] for e in done) == summary.counts["feedback"]
    assert not rec.of(ItemFailed)
    for event in rec.events:  # what a log keeps is plain JSON
        assert json.loads(json.dumps(event.as_dict()))["event"] == event.kind


def test_item_failure_is_an_event_and_the_run_goes_on(sandbox_factory: Any, tmp_path: Path) -> None:
    """user_activity over a poison participant: one ItemFailed (and one failure in the
    summary, the same reason), an ItemDone for each of the three others, the table written."""
    info = sandbox_factory(*FAULT_STUDY, "--poison", "1")
    config = load_config(str(config_with_limits(info, tmp_path, retries=1, retry_base_delay=0.01)))
    rec = RecordingReporter()
    options = ActivityOptions(
        selection=Selection(participants=None),
        output_dir=tmp_path / "out",
        until=date.fromisoformat(SANDBOX_TODAY),
        report_days=7,
    )
    summary = asyncio.run(
        run_activity(config.profile("sandbox"), config.limits, options, reporter=rec)
    )
    (failed,) = rec.of(ItemFailed)
    assert [(f.item, f.reason) for f in summary.failures] == [(failed.item, failed.reason)]
    assert "server error 500" in failed.reason
    assert len(rec.of(ItemDone)) == 3
    assert rec.of(Planned)[0].items == 4
    assert (tmp_path / "out" / "user_activity.csv").exists()


# -- the JSON-lines log ----------------------------------------------------------------------


def test_log_json_records_events_then_the_summary(sandbox_factory: Any, tmp_path: Path) -> None:
    info = sandbox_factory(*FAULT_STUDY, "--poison", "1")
    config = config_with_limits(info, tmp_path, retries=1, retry_base_delay=0.01)
    log = tmp_path / "nightly.jsonl"
    first = download(info, tmp_path / "out", "-q", f"--log-json={log}", config=config)
    assert first.code == 1, first.err
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    got = records(log)
    kinds = [r["event"] for r in got]
    assert kinds[-1] == "summary" and "planned" in kinds
    assert set(kinds[: kinds.index("planned")]) <= {"warning"}
    assert "progress" not in kinds
    assert kinds.count("item_done") == 3 and kinds.count("item_failed") == 1
    (failed,) = [r for r in got if r["event"] == "item_failed"]
    assert failed["item"].startswith("participant ") and "server error 500" in failed["reason"]
    summary = got[-1]
    assert summary["exit_code"] == 1 and summary["counts"]["participants"] == 3
    assert summary["failures"] == [{"item": failed["item"], "reason": failed["reason"]}]
    assert all(r["command"] == "download-results" and r["time"] for r in got)
    # a second run appends; an error ends with an error record instead of a summary
    token = "0123456789abcdef0123456789abcdef01234567"
    second = download(info, tmp_path / "out", "-q", f"--log-json={log}", f"--token={token}")
    assert second.code == 3
    again = records(log)
    assert again[: len(got)] == got
    assert again[-1]["event"] == "error" and again[-1]["exit_code"] == 3
    assert "rejected" in again[-1]["message"] and token not in log.read_text()


def test_log_json_that_cannot_be_written_is_one_line(sandbox: SandboxInfo, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = download(sandbox, tmp_path / "out", "-q", f"--log-json={blocker}/log.jsonl")
    assert result.code == 4
    assert "cannot write" in result.one_line_error()
    assert not (tmp_path / "out").exists()


# -- the failure policy ----------------------------------------------------------------------


def test_every_error_has_one_scope() -> None:
    assert scope_of(TransientError("x")) is Scope.ITEM
    assert scope_of(ProtocolError("x")) is Scope.ITEM
    assert scope_of(Exhausted(3, Retryable("reset"))) is Scope.ITEM
    assert scope_of(FileFailed("x")) is Scope.ITEM
    assert scope_of(LocalIOError("x")) is Scope.JOB
    assert scope_of(AuthError("x")) is Scope.JOB
    assert scope_of(ConfigError("x")) is Scope.FATAL
    assert scope_of(ValueError("a bug")) is Scope.FATAL


def test_run_items_fails_items_and_stops_on_a_job_error() -> None:
    """An item error fails that item and the others finish; a job error cancels the items
    in flight and is raised as itself, not as an exception group."""
    cancelled: list[int] = []

    async def work(n: int) -> int:
        if n == 1:
            raise TransientError(f"item {n} answered 500")
        if n == 3:
            raise LocalIOError("disk full while writing x")
        try:
            await asyncio.sleep(0.01 if n in (0, 2) else 5)
        except asyncio.CancelledError:
            cancelled.append(n)
            raise
        return n * 10

    rec = RecordingReporter()
    job = Job("test", rec)
    ok = asyncio.run(run_items([0, 1, 2], work, workers=2, job=job, label=str))
    assert ok == [0, None, 20]
    assert [(f.item, f.reason) for f in job.summary.failures] == [("1", "item 1 answered 500")]
    assert rec.of(ItemFailed) == [ItemFailed(item="1", reason="item 1 answered 500", job="test")]

    job = Job("test", rec)
    with pytest.raises(LocalIOError, match="disk full"):
        asyncio.run(run_items([3, 4], work, workers=2, job=job))
    assert cancelled == [4] and not job.summary.failures


def _small_disk(limit: int) -> Any:
    def apply() -> None:  # no file may grow past ``limit``: writes fail as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _cli(args: list[str], limit: int, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKEN_", "LONGTERM_"))}
    return subprocess.run(
        [sys.executable, "-m", "longterm_sync", *args],
        env=env, capture_output=True, text=True, timeout=120, preexec_fn=_small_disk(limit),
        check=False, cwd=cwd,
    )  # fmt: skip


def test_disk_full_stops_the_download_instead_of_failing_participants(
    sandbox_factory: Any, tmp_path: Path
) -> None:
    info = sandbox_factory(*FAULT_STUDY)
    out = tmp_path / "out"
    proc = _cli(
        ["download-results", "--config", info.config, "--server", "sandbox",
         "--output-dir", str(out), "--json"],
        limit=4096,
    )  # fmt: skip
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert proc.stdout == ""  # no summary: the run stopped, no participant "failed"
    assert proc.stderr.count("\n") == 1 and "cannot write" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (out / "results_all.json").exists()


def test_upload_whose_disk_write_fails_stops_and_sends_no_schedule(
    sandbox_factory: Any, tmp_path: Path
) -> None:
    """The local sidecar of an uploaded video cannot be written: that is the run's disk, not
    one schedule's fault, so the run stops (exit 4) before any schedule is sent."""
    info = sandbox_factory()
    work = tmp_path / "study"
    put_videos(work / "videos", {"a/clip.mp4": b"v" * 5000})
    today = date.fromisoformat(SANDBOX_TODAY)
    write_json(
        work / "p1.json",
        schedule(relative_days(today, [3, 4]), external_id="P1", video="a/clip.mp4"),
    )
    proc = _cli(
        ["upload-schedule", f"--config={info.config}", "--server=sandbox",
         f"--today={SANDBOX_TODAY}", "videos", "."],
        limit=24, cwd=work,
    )  # fmt: skip
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert ".md5sum" in proc.stderr.strip().splitlines()[-1]
    assert "sent p1.json" not in proc.stdout
    users = run_cli(["user_feedback", "--config", info.config, "--server", "sandbox",
                     "--output-dir", str(tmp_path / "fb"), "--json"])  # fmt: skip
    assert users.code == 0
    assert json.loads(users.out)["counts"]["participants"] == 0  # no account was created


def test_warnings_are_events(sandbox: SandboxInfo, tmp_path: Path) -> None:
    config = load_config(sandbox.config)
    rec = RecordingReporter()
    selection = Selection(participants=[Participant("nobody-here")], source="external_id")
    options = ResultsOptions(output_dir=tmp_path, selection=selection)
    summary = asyncio.run(
        run_download_results(config.profile("sandbox"), config.limits, options, reporter=rec)
    )
    assert [f.item for f in summary.failures] == [e.item for e in rec.of(ItemFailed)]
    assert [w for w in summary.warnings] == [e.text for e in rec.of(Warned)]
    assert not rec.of(Progress)
