"""upload-schedule's command line where no server is needed: bad input stops before any request.

The server URL points at a closed port, so any request the command tried would fail loudly
(exit 3) instead of the asserted outcome.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from clitools import run_cli
from upload_helpers import schedule, write_json

TOKEN = "0123456789abcdef0123456789abcdef01234567"
DEAD = "http://127.0.0.1:9"


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[servers.prod]\nurl = "{DEAD}"\n\n[servers.lab]\nurl = "{DEAD}"\n'
        "\n[limits]\nretries = 0\n",  # an unreachable server fails at once
        encoding="utf-8",
    )
    return path


def _args(tmp_path: Path, *extra: str, server: str = "lab") -> list[str]:
    return [
        "upload-schedule",
        f"--config={_config(tmp_path)}",
        f"--server={server}",
        f"--token={TOKEN}",
        *extra,
    ]


def test_invalid_files_fail_alone_and_nothing_is_sent(tmp_path: Path) -> None:
    jsons = tmp_path / "jsons"
    (jsons).mkdir()
    (jsons / "broken.json").write_text('{\n  "language": "PL",\n  "schedule": [\n', "utf-8")
    bad = schedule([])
    bad["schedule"] = [{"start": "2026-12-01", "end": "2026-12-01T10:00:00"}]
    write_json(jsons / "dateonly.json", bad)
    result = run_cli([*_args(tmp_path), str(tmp_path / "no-videos"), str(jsons)])
    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.err
    assert "broken.json: invalid, not sent: line 4 column 1: not valid JSON" in result.out
    assert "dateonly.json: invalid, not sent: line 8: schedule[0] has no 'service'" in result.out
    assert "schedule[0].start: '2026-12-01' is not an ISO datetime" in result.out
    assert "2 failed:" in result.out
    assert TOKEN not in result.out + result.err


def test_missing_schedule_folder_is_one_line(tmp_path: Path) -> None:
    result = run_cli([*_args(tmp_path), "--jsons_path", str(tmp_path / "nope")])
    assert result.code == 2
    assert "schedule folder" in result.one_line_error()


def test_positional_and_flag_must_agree(tmp_path: Path) -> None:
    result = run_cli([*_args(tmp_path), "a", "b", "--video_path=c"])
    assert result.code == 2
    assert "video_path given twice" in result.one_line_error()


def test_flag_forms_are_accepted(tmp_path: Path) -> None:
    jsons = tmp_path / "j"
    jsons.mkdir()
    result = run_cli([*_args(tmp_path), f"--video_path={tmp_path / 'v'}", f"--jsons_path={jsons}"])
    assert result.code == 0, result.err
    assert "no *.json schedule files in" in result.out


def test_prod_without_a_terminal_refuses(tmp_path: Path) -> None:
    jsons = tmp_path / "j"
    jsons.mkdir()
    result = run_cli(
        [*_args(tmp_path, server="prod"), str(tmp_path / "v"), str(jsons)], stdin="y\n"
    )
    assert result.code == 2
    line = result.one_line_error()
    assert "refusing to upload to the production server" in line and "--yes" in line


@pytest.mark.parametrize("flag", ["--yes", "--dry-run"])
def test_prod_with_yes_or_dry_run_does_not_ask(tmp_path: Path, flag: str) -> None:
    jsons = tmp_path / "j"
    jsons.mkdir()
    result = run_cli([*_args(tmp_path, flag, server="prod"), str(tmp_path / "v"), str(jsons)])
    assert result.code == 0, result.err
    assert "[y/N]" not in result.err


def test_no_token_is_one_line(tmp_path: Path) -> None:
    result = run_cli(
        ["upload-schedule", f"--config={_config(tmp_path)}", "--server=lab", str(tmp_path)]
    )
    assert result.code == 2
    assert "no REST token" in result.one_line_error()


def test_unreachable_server_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    jsons = tmp_path / "j"
    write_json(jsons / "ok.json", schedule([date(2030, 1, 1)], video="a.mp4"))
    videos = tmp_path / "v"
    videos.mkdir()
    (videos / "a.mp4").write_bytes(b"video")
    result = run_cli([*_args(tmp_path), str(videos), str(jsons)])
    assert result.code == 3, result.out + result.err
    assert "cannot reach" in result.one_line_error()
    assert not (videos / "a.mp4.md5sum").exists()
