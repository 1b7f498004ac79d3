"""Small habits of every command: --version, and -q keeping stdout empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from clitools import run_cli
from fixtures_sandbox import SandboxInfo
from longterm_sync.cli import build_parser

COMMANDS = sorted(build_parser()[1])
SCRIPTS = ["download-results", "download-schedule", "upload-schedule", "user_activity",
           "user_feedback"]  # fmt: skip


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_version_on_every_command(command: str) -> None:
    result = run_cli([command, "--version"] if command else ["--version"])
    assert result.code == 0, result.err
    assert result.out.startswith("longterm-sync ") and result.out.split()[1][0].isdigit()


@pytest.mark.parametrize("script", SCRIPTS)
def test_version_on_every_script(script: str) -> None:
    result = run_cli(["--version"], script=script)
    assert result.code == 0 and result.out.startswith("longterm-sync "), result.err


def test_quiet_sends_warnings_and_failures_to_stderr(sandbox: SandboxInfo, tmp_path: Path) -> None:
    nobody = "ee" * 32
    common = ["--config", sandbox.config, "--server=sandbox", "--output-dir", str(tmp_path)]
    loud = run_cli(["download-results", *common, f"--external_id_time={nobody}"])
    quiet = run_cli(["download-results", *common, f"--external_id_time={nobody}", "-q"])
    assert loud.code == quiet.code == 1
    assert quiet.out == ""
    assert "1 failed:" in quiet.err and f"  participant {nobody}: the server has no" in quiet.err
    assert "download-results:" not in quiet.err  # the summary line is not repeated
    assert f"  participant {nobody}" in loud.out
    both = run_cli(
        ["download-results", *common, f"--external_id_time={nobody}", "--user_time=", "-q"]
    )
    assert both.out == "" and "warning: --external_id_time takes priority" in both.err
