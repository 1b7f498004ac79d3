"""The issue's crash test: kill a real ``longterm backup`` against the sandbox at 20 random
moments, verify after every kill, then run normally and compare latest/ with a clean backup
of the same server state."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from backup_helpers import STUDY, backup
from clitools import REPO
from fixtures_sandbox import SandboxInfo
from longterm_sync.backup.verify import verify_backup
from rest_helpers import tree

KILLS = 20


def _start(info: SandboxInfo, dest: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "longterm_sync", "backup", "--config", info.config,
           "--server", "sandbox", "--dest_location", str(dest), "-q"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKEN_", "LONGTERM_"))}
    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def test_twenty_kills_then_a_normal_run_equals_a_clean_backup(
    sandbox_factory: object, tmp_path: Path
) -> None:
    info: SandboxInfo = sandbox_factory(*STUDY)  # type: ignore[operator]
    clean = tmp_path / "clean"
    started = time.monotonic()
    assert backup(info, clean).code == 0
    span = time.monotonic() - started
    dest = tmp_path / "killed"
    rng = random.Random(20)
    for _ in range(KILLS):
        proc = _start(info, dest)
        time.sleep(rng.uniform(0.05, span))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if (dest / "text_files" / "store.sqlite3").exists():
            report = verify_backup(dest)
            assert report.ok, report.failures
    done = backup(info, dest)
    assert done.code == 0, done.err
    assert verify_backup(dest).ok
    assert tree(dest / "text_files" / "latest") == tree(clean / "text_files" / "latest")
    assert sorted(p.name for p in (dest / "text_files").glob(".latest-*")) == [
        (dest / "text_files" / "latest").readlink().name
    ]
    videos = {p.relative_to(clean / "media_files") for p in (clean / "media_files").rglob("*")}
    assert videos <= {
        p.relative_to(dest / "media_files") for p in (dest / "media_files").rglob("*")
    }
