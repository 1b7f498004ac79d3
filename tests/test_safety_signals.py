"""Issue 8, points 4 and 8: SIGTERM and SIGHUP are handled like Ctrl-C (temporary files
removed, exit 128 + signal), a kill -9 at any moment leaves only whole files (the next run
removes the temporary ones), and no run ever ends in a traceback."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from clitools import REPO, run_cli
from fake_platform import FakeParticipant, FakePlatform
from fixtures_sandbox import SANDBOX_STUDY, SandboxInfo

GOOD = "ef" * 32
SILENT = "0a" * 32


def _popen(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKEN_", "LONGTERM_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "longterm_sync", *args],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.name != ".longterm.lock"]


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_terminate_is_handled_like_ctrl_c(sig: int, status: int, tmp_path: Path) -> None:
    participants = [FakeParticipant(GOOD), FakeParticipant(SILENT, mode="silent")]
    with FakePlatform(participants) as fake:
        proc = _popen(["download-results", *fake.args(), "--output-dir", str(tmp_path)], tmp_path)
        deadline = time.monotonic() + 30
        while not any("external_id=" + SILENT in r for r in fake.requests):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == status, err
    assert "Traceback" not in err
    assert err.strip().endswith(f"terminated by {signal.Signals(sig).name}"), err
    assert _temps(tmp_path) == []
    assert not (tmp_path / "results_all.json").exists()


def _check_files(folder: Path) -> None:
    for path in folder.glob("*.json"):
        assert isinstance(orjson.loads(path.read_bytes()), list), path


def test_killed_at_random_points(
    sandbox_factory: Callable[..., SandboxInfo], tmp_path: Path
) -> None:
    # a slow server (80 ms an answer) so that the run lasts a second or two
    server = sandbox_factory(*SANDBOX_STUDY, "--latency-ms", "80")
    rng = random.Random(8)
    args = ["download-results", "--config", server.config, "--server", "sandbox",
            "--output-dir", str(tmp_path)]  # fmt: skip
    killed_while_running = 0
    for attempt in range(6):
        (tmp_path / ".longterm.lock").unlink(missing_ok=True)
        proc = _popen(args, tmp_path)
        deadline = time.monotonic() + 30
        while not (tmp_path / ".longterm.lock").exists() and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.8))
        sig = signal.SIGKILL if attempt % 2 else signal.SIGTERM
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        assert "Traceback" not in err, err
        if sig == signal.SIGKILL:
            assert proc.returncode in (0, -9), err
        else:  # -15: in the interpreter's last moments, after the run
            assert proc.returncode in (0, 143, -15), err
            assert _temps(tmp_path) == []
            killed_while_running += proc.returncode == 143
        _check_files(tmp_path)
    assert killed_while_running
    final = run_cli(args, cwd=tmp_path)
    assert final.code == 0, final.err
    assert _temps(tmp_path) == []
    _check_files(tmp_path)


def test_closed_stdout_is_quiet(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "longterm_sync", "config", "--server=https://example.org"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `| head` that has already exited
    err = proc.stderr.read().decode()
    proc.wait(timeout=30)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert proc.returncode == 141


def test_closed_stdout_after_head(tmp_path: Path) -> None:
    result = subprocess.run(
        f"{sys.executable} -m longterm_sync config --server=https://example.org | head -1",
        shell=True, cwd=tmp_path, capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr


def test_ctrl_c_outside_the_command_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Ctrl-C landing while flags are parsed, or after the command returned but before the
    signal handlers are restored (CI saw it: compress_videos had just finished), is still one
    line and 130, not a traceback."""
    from longterm_sync import cli

    def interrupted(argv: list[str], script: str | None) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_main", interrupted)
    try:
        code = cli.main(["download-results"])
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped main()")
    assert code == 130
    assert capsys.readouterr().err == "longterm: interrupted\n"
