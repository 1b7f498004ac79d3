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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TRAMPOLINE = """\
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as fh:
    fh.write(f"{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}")
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


@dataclass(frozen=True)
class Usage:
    code: int
    rss_mb: float  # the child's own peak
    wall: float
    cpu: float  # user + system seconds of the child and of the processes it waited for


def run_usage(cmd: list[str], **popen: Any) -> Usage:
    """Run ``cmd`` (Popen keyword arguments for stdio, cwd, env) through the trampoline."""
    with tempfile.TemporaryDirectory(prefix="peak-") as tmp:
        report = Path(tmp) / "usage"
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", _TRAMPOLINE, str(report), *cmd], **popen)
        proc.wait()
        wall = time.perf_counter() - started
        kib, cpu = report.read_text().split() if report.exists() else ("0", "0")
    return Usage(proc.returncode, int(kib) / 1024, wall, float(cpu))


def run_measured(cmd: list[str], **popen: Any) -> tuple[int, float, float]:
    """Run ``cmd``; return its exit status, its own peak RSS in MB and the wall seconds."""
    usage = run_usage(cmd, **popen)
    return usage.code, usage.rss_mb, usage.wall


__all__ = ["Usage", "run_measured", "run_usage"]
