"""Kill -9 a store writer at random moments: every committed snapshot stays whole."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from longterm_sync.backup.store import SnapshotStore
from longterm_sync.backup.verify import verify_backup

WRITER = Path(__file__).with_name("backup_writer.py")
KILLS = 8


def _writer(text: Path, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(text), str(count)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def test_killed_writers_leave_every_committed_snapshot_intact(tmp_path: Path) -> None:
    text = tmp_path / "dest" / "text_files"
    rng = random.Random(10)
    committed: list[int] = []
    for _ in range(KILLS):
        proc = _writer(text, 1000)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # at least one commit per round, then a random moment
        assert first.startswith("committed")
        committed.append(int(first.split()[1]))
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        rest = proc.communicate()[0]
        committed.extend(int(line.split()[1]) for line in rest.splitlines())
        assert proc.returncode == -signal.SIGKILL
        report = verify_backup(tmp_path / "dest")
        assert report.ok, report.failures
        with SnapshotStore.open(text, readonly=True) as store:
            ids = [s.id for s in store.snapshots()]
            assert set(committed) <= set(ids)
            for snap in store.snapshots():
                listing = store.listing(snap.id, "results_x.json")
                assert listing is not None and len(listing) == 40
                assert all(len(r) == 4000 for r in store.records(listing))
    proc = _writer(text, 1)
    assert proc.communicate(timeout=60)[0].startswith("committed")
    assert proc.returncode == 0
    assert verify_backup(tmp_path / "dest").ok
