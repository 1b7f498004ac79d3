"""Peak RSS of one child command, its own and nobody else's.

``ru_maxrss`` of a child is not only its own: Linux records the high-water mark of the
memory a process had when it called ``execve`` (kernel ``setup_new_exec``). A child forked or
vforked from a bench process that already holds hundreds of MB starts its count there:
the backup bench's nightly runs read 485-900 MB this way while each run peaked at 150-160 MB
(the bench had loaded two ``latest/`` folders to compare them). So the command is started by
a small trampoline interpreter (its exec resets the count to its own ~10 MB), which waits for
it and hands back the child's ``wait4`` usage.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_TRAMPOLINE = """\
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as fh:
    fh.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_measured(cmd: list[str], **popen: Any) -> tuple[int, float, float]:
    """Run ``cmd`` (Popen keyword arguments for stdio and cwd); return its exit status, its
    own peak RSS in MB and the wall seconds."""
    with tempfile.TemporaryDirectory(prefix="peak-") as tmp:
        report = Path(tmp) / "maxrss"
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", _TRAMPOLINE, str(report), *cmd], **popen)
        proc.wait()
        wall = time.perf_counter() - started
        kib = int(report.read_text()) if report.exists() else 0
    return proc.returncode, kib / 1024, wall


__all__ = ["run_measured"]
