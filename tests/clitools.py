"""Run the real ``longterm`` CLI in a subprocess, as a user would, and capture what it says."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    code: int
    out: str
    err: str

    def one_line_error(self) -> str:
        """The error must be a single line with no traceback."""
        assert "Traceback" not in self.err, self.err
        lines = [ln for ln in self.err.splitlines() if ln.strip()]
        assert len(lines) == 1, self.err
        return lines[0]


def run_cli(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    script: str | None = None,
    stdin: str | None = None,
) -> Result:
    """Run ``python -m longterm_sync ARGS`` (or ``python scripts/SCRIPT.py ARGS``)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKEN_", "LONGTERM_"))}
    full_env.update(env or {})
    cmd = (
        [sys.executable, str(REPO / "scripts" / f"{script}.py"), *args]
        if script
        else [sys.executable, "-m", "longterm_sync", *args]
    )
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)
