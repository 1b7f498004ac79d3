"""The general helper-process runner (procs.py) with real child processes: a job runs and
its messages and logs come back, a child's failure reaches the parent as the same error
class (so with the same scope and exit status), and cancelling the parent, or killing it
with SIGKILL, stops the child."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from longterm_sync.errors import (
    ExitCode,
    InputFileError,
    LocalIOError,
    LongtermError,
    ProtocolError,
    RemoteError,
    Scope,
    scope_of,
)
from longterm_sync.events import Job
from longterm_sync.procs import Message, run_child
from longterm_sync.workers import run_items

CHILD = "procs_child"  # tests/procs_child.py
TESTS = Path(__file__).parent


@pytest.fixture(autouse=True)
def _child_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child is a fresh interpreter: it finds tests/procs_child.py through PYTHONPATH."""
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", f"{TESTS}{os.pathsep}{path}" if path else str(TESTS))


def _run(job: dict[str, Any]) -> list[Message]:
    got: list[Message] = []
    asyncio.run(run_child(CHILD, job, got.append, what="test child"))
    return got


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie nobody reaped yet does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait_dead(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_child_runs_its_job_and_its_messages_and_logs_come_back(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.INFO, logger="longterm_sync"):
        got = _run({"mode": "echo", "count": 3})
    assert got == [{"n": 0}, {"n": 1}, {"n": 2}]  # in order; log lines are not messages
    relayed = [r for r in caplog.records if r.name == "longterm_sync.procs"]
    assert [(r.levelno, r.getMessage()) for r in relayed] == [(logging.WARNING, "child says hello")]
    assert capfd.readouterr().err == ""  # nothing printed behind the CLI's back


@pytest.mark.parametrize(
    ("error", "cls", "scope", "status"),
    [
        ("RemoteError", RemoteError, Scope.JOB, ExitCode.REMOTE),
        ("LocalIOError", LocalIOError, Scope.JOB, ExitCode.LOCAL_IO),
        ("InputFileError", InputFileError, Scope.FATAL, ExitCode.USAGE),
        ("ProtocolError", ProtocolError, Scope.ITEM, ExitCode.REMOTE),
    ],
)
def test_child_error_is_raised_as_its_own_class_and_scope(
    error: str, cls: type[LongtermError], scope: Scope, status: ExitCode
) -> None:
    job = {"mode": "raise", "error": error, "message": "it broke", "hint": "look here"}
    with pytest.raises(LongtermError) as caught:
        _run(job)
    assert type(caught.value) is cls
    assert scope_of(caught.value) is scope and caught.value.exit_code == status
    assert str(caught.value) == "it broke (look here)"


def test_child_errors_under_the_failure_policy() -> None:
    """Children as items of the one worker loop: an item-scope error in a child fails that
    item only; a job-scope one stops the loop and is raised as that one error."""

    async def work(error: str) -> str:
        if error:
            await run_child(
                CHILD, {"mode": "raise", "error": error, "message": f"{error}!"}, print, what="t"
            )
        else:
            await run_child(CHILD, {"mode": "echo", "count": 0}, print, what="t")
        return error or "fine"

    job = Job("procs")
    out = asyncio.run(run_items(["", "ProtocolError", ""], work, workers=2, job=job))
    assert out == ["fine", None, "fine"]
    assert [(f.item, f.reason) for f in job.summary.failures] == [
        ("ProtocolError", "ProtocolError!")
    ]
    with pytest.raises(LocalIOError, match="LocalIOError!"):
        asyncio.run(run_items(["", "LocalIOError"], work, workers=2, job=Job("procs")))


def test_child_bug_and_bad_exit_are_one_line_errors(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(LongtermError) as bug:
        _run({"mode": "bug"})
    assert type(bug.value) is LongtermError
    assert str(bug.value) == "test child failed: ValueError('not one of ours')"
    assert "Traceback" not in capfd.readouterr().err
    with pytest.raises(LocalIOError, match="a test child process exited with status 7"):
        _run({"mode": "exit", "status": 7})


def test_cancelling_the_parent_kills_the_child(tmp_path: Path) -> None:
    beats = tmp_path / "beats"
    pids: list[int] = []

    async def main() -> None:
        started = asyncio.Event()

        def got(message: Message) -> None:
            pids.append(int(message["pid"]))
            started.set()

        task = asyncio.create_task(
            run_child(CHILD, {"mode": "beat", "beats": str(beats)}, got, what="test child")
        )
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(main(), 30))
    assert pids and not _alive(pids[0])  # killed and reaped before run_child returned
    size = beats.stat().st_size
    time.sleep(0.3)
    assert beats.stat().st_size == size  # nothing writes any more


def test_a_child_dies_with_its_parent(tmp_path: Path) -> None:
    """``kill -9`` of the parent leaves no child writing (PR_SET_PDEATHSIG)."""
    beats, pidfile = tmp_path / "beats", tmp_path / "pid"
    parent = (
        "import asyncio, sys\n"
        "from longterm_sync.procs import run_child\n"
        "def got(m):\n"
        f"    open({str(pidfile)!r}, 'w').write(str(m['pid']))\n"
        f"asyncio.run(run_child({CHILD!r}, {{'mode': 'beat', 'beats': {str(beats)!r}}}, got,"
        " what='t'))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", parent])
    try:
        deadline = time.monotonic() + 30
        while not (pidfile.exists() and pidfile.read_text() and beats.exists()):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        child = int(pidfile.read_text())
        assert _alive(child)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert _wait_dead(child), "the child outlived its killed parent"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
