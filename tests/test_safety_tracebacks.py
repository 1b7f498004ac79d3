"""Issue 8, point 8: no tracebacks, ever: an invalid JSON answer fails its participant with one
line in the summary, whatever the command."""

from __future__ import annotations

from pathlib import Path

import pytest

from clitools import run_cli
from fake_platform import FakeParticipant, FakePlatform

GOOD, BAD = "ab" * 32, "cd" * 32

COMMANDS = [["user_activity"], ["download-results"], ["user_feedback", f"--external_id_time={BAD}"]]


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_invalid_json_fails_the_participant(command: list[str], tmp_path: Path) -> None:
    with FakePlatform([FakeParticipant(GOOD), FakeParticipant(BAD, mode="invalid")]) as fake:
        result = run_cli([*command, *fake.args(), "--output-dir", str(tmp_path)], cwd=tmp_path)
    assert "Traceback" not in result.err, result.err
    assert result.code == 1, result.out + result.err
    (line,) = [ln for ln in result.out.splitlines() if ln.startswith(f"  participant {BAD}")]
    assert "invalid JSON" in line


def test_invalid_participant_list_is_one_line(tmp_path: Path) -> None:
    with FakePlatform([FakeParticipant(GOOD)], users_mode="invalid") as fake:
        result = run_cli(
            ["user_activity", *fake.args(), "--output-dir", str(tmp_path)], cwd=tmp_path
        )
    assert result.code == 3
    assert "invalid JSON" in result.one_line_error()
