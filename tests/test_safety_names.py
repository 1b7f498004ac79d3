"""Issue 8, point 2: ids from outside (the server's listing, a spreadsheet) name files only
when they match one strict rule; a hostile id is refused and named, the others are written."""

from __future__ import annotations

from pathlib import Path

import pytest

from clitools import Result, run_cli
from fake_platform import FakeParticipant, FakePlatform
from longterm_sync.ids import id_file_name, is_safe_id, shown_id

GOOD = "ab" * 32
HOSTILE = ["x/../../PWNED", "/tmp/abs/PWNED", "new\nline", "a" * 300, "..", "semi;colon"]


def _listing() -> list[FakeParticipant]:
    return [FakeParticipant(h) for h in HOSTILE] + [FakeParticipant(GOOD)]


def test_the_rule() -> None:
    assert is_safe_id(GOOD) and is_safe_id("Long_001-x")
    for bad in [*HOSTILE, "", "a b", "é"]:
        assert not is_safe_id(bad)
        with pytest.raises(ValueError, match="refused"):
            id_file_name("results_{}.json", bad)
    assert "\n" not in shown_id("new\nline") and len(shown_id("a" * 300)) < 80


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _check_refused(result: Result, root: Path) -> None:
    assert "Traceback" not in result.err, result.err
    assert result.code == 1, result.out + result.err
    text = result.out + result.err
    assert text.count("refused") >= len(HOSTILE), text
    assert "new\nline" not in text and "a" * 300 not in text
    assert "PWNED" not in "".join(_files(root.parent))
    assert not Path("/tmp/abs").exists()


COMMANDS = [
    (["download-results"], {f"results_{GOOD}.json", f"results_feedback_{GOOD}.json"}),
    (["download-schedule", "--mode=json"], {f"schedule_{GOOD}.json"}),
    (["user_feedback"], {"user_feedback.csv"}),
    (["user_activity"], {"user_activity.csv"}),
]


@pytest.mark.parametrize(("command", "expected"), COMMANDS, ids=[c[0] for c, _ in COMMANDS])
def test_hostile_ids_from_the_listing(
    command: list[str], expected: set[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with FakePlatform(_listing()) as fake:
        result = run_cli([*command, *fake.args(), "--output-dir", str(out)], cwd=out)
    _check_refused(result, tmp_path)
    written = {name for name in _files(out) if not name.startswith(".")}
    assert expected <= written
    assert all(GOOD in name or "_all" in name or name.endswith(".csv") for name in written)
    for name in written:
        body = (out / name).read_text()
        assert "PWNED" not in body and "new\nline" not in body


def test_hostile_ids_from_a_spreadsheet(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    rows = "".join(f'"{h}",,\n' for h in HOSTILE if "\n" not in h) + f"{GOOD},,\n"
    (tmp_path / "users.csv").write_text("external_id,start_date,stop_date\n" + rows)
    with FakePlatform(_listing()) as fake:
        result = run_cli(
            [
                "download-results",
                *fake.args(),
                "--output-dir",
                str(out),
                f"--excel_time={tmp_path / 'users.csv'}",
            ],
            cwd=out,
        )
    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.err
    assert result.out.count("refused") == len(HOSTILE) - 1
    assert (out / f"results_{GOOD}.json").exists()
    assert "PWNED" not in "".join(_files(tmp_path))
