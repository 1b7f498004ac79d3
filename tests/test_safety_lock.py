"""Issue 8, point 3: one run per destination folder (flock), and what killed runs left there
is removed while the lock is held (video partials are kept: they are resumed)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from clitools import REPO, run_cli
from fake_platform import FakeParticipant, FakePlatform
from longterm_sync.lock import LOCK_NAME, DestinationLock, remove_stale_temps

GOOD = "cd" * 32


def test_a_second_run_stops_at_once_naming_the_holder(tmp_path: Path) -> None:
    with FakePlatform([FakeParticipant(GOOD)]) as fake, DestinationLock(tmp_path):
        result = run_cli(
            ["download-results", *fake.args(), "--output-dir", str(tmp_path)], cwd=tmp_path
        )
    assert result.code == 5, result.err
    line = result.one_line_error()
    assert f"pid {os.getpid()}" in line and "--wait" in line
    assert not list(tmp_path.glob("results_*"))


def test_wait_waits_for_the_holder(tmp_path: Path) -> None:
    with FakePlatform([FakeParticipant(GOOD)]) as fake:
        lock = DestinationLock(tmp_path)
        lock.acquire()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKEN_", "LONGTERM_"))}
        proc = subprocess.Popen(
            [sys.executable, "-m", "longterm_sync", "download-results", *fake.args(),
             "--output-dir", str(tmp_path), "--wait"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            time.sleep(1.5)
            assert proc.poll() is None  # still waiting
            assert not (tmp_path / f"results_{GOOD}.json").exists()
        finally:
            lock.release()
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "waiting for pid" in err
    assert (tmp_path / f"results_{GOOD}.json").exists()


def _plant(folder: Path) -> tuple[list[Path], list[Path]]:
    """Leftovers of killed runs: (what must go, what must stay)."""
    folder.mkdir(parents=True, exist_ok=True)
    stale = [
        folder / ".results_all.json.k3j_x9a2.partial",
        folder / ".write-test.ab12cd34",
        folder / ".clip.mp4.md5sum.partial",
    ]
    keep = [folder / ".clip.mp4.partial", folder / "notes.partial", folder / "results_x.json"]
    for path in stale + keep:
        path.write_bytes(b"x" * 1000)
    return stale, keep


def test_stale_temporary_files_are_removed_under_the_lock(tmp_path: Path) -> None:
    stale, keep = _plant(tmp_path)
    with FakePlatform([FakeParticipant(GOOD)]) as fake:
        result = run_cli(
            ["download-results", *fake.args(), "--output-dir", str(tmp_path)], cwd=tmp_path
        )
    assert result.code == 0, result.err
    assert "removed 3 temporary file(s)" in result.err
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in keep)
    assert not (tmp_path / LOCK_NAME).exists()  # released: the folder holds only output


def test_video_destinations_are_cleaned_recursively(tmp_path: Path) -> None:
    stale, keep = _plant(tmp_path / "sub" / "deeper")
    top_stale, top_keep = _plant(tmp_path)
    with DestinationLock(tmp_path, recursive=True) as lock:
        assert lock.cleaned.files == 6
    assert not any(p.exists() for p in stale + top_stale)
    assert all(p.exists() for p in keep + top_keep)
    assert remove_stale_temps(tmp_path, recursive=True).files == 0


def test_every_writing_command_has_wait() -> None:
    for command in ("download-results", "download-schedule", "user_feedback", "user_activity",
                    "upload-schedule"):  # fmt: skip
        result = run_cli([command, "--help"], cwd=REPO)
        assert "--wait" in result.out, command
