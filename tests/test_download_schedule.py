"""download-schedule --mode json against the sandbox."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from clitools import Result, run_cli
from fixtures_sandbox import SandboxInfo
from longterm_sync.timeutil import WARSAW
from rest_helpers import load, participant_ids, tree


def schedules(info: SandboxInfo, out: Path, *args: str, script: bool = False) -> Result:
    common = ["--config", info.config, "--server", "sandbox", "--output-dir", str(out), *args]
    if script:
        return run_cli(common, script="download-schedule")
    return run_cli(["download-schedule", *common])


def experimenter_file(info: SandboxInfo, ext: str) -> dict[str, Any]:
    """The schedule the experimenter uploaded for ``ext`` (from the study folder)."""
    for path in info.study_dir.glob("**/*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("external_id") == ext:
            return data
    raise AssertionError(f"no schedule file for {ext}")


def test_json_mode_writes_one_schedule_per_participant(
    sandbox: SandboxInfo, tmp_path: Path
) -> None:
    result = schedules(sandbox, tmp_path, "--mode=json", "--json")
    assert result.code == 0, result.err
    ids = participant_ids(sandbox)
    assert set(tree(tmp_path)) == {f"schedule_{ext}.json" for ext in ids}
    summary = json.loads(result.out)
    assert summary["counts"]["participants"] == len(ids)
    assert any("no schedule" in w for w in summary["warnings"])  # the study's orphan
    for ext in ids:
        data = (tmp_path / f"schedule_{ext}.json").read_bytes()
        stored = orjson.loads(data)
        assert data == orjson.dumps(stored, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
        uploaded = experimenter_file(sandbox, ext)
        assert stored["external_id"] == ext
        assert stored["schedule"] == uploaded["schedule"]  # no range: every entry
        assert not {"name", "surname", "phone"} & set(stored)


def test_range_keeps_entries_starting_inside_it(sandbox: SandboxInfo, tmp_path: Path) -> None:
    ext = participant_ids(sandbox)[0]
    result = schedules(
        sandbox, tmp_path, "--mode", "json", f"--external_id_time={ext},2024-03-10,2024-03-12"
    )
    assert result.code == 0, result.err
    stored = load(tmp_path / f"schedule_{ext}.json")
    starts = [datetime.fromisoformat(e["start"]).replace(tzinfo=WARSAW) for e in stored["schedule"]]
    everything = experimenter_file(sandbox, ext)["schedule"]
    assert [e["start"][:10] for e in stored["schedule"]] == [
        "2024-03-10",
        "2024-03-11",
        "2024-03-12",  # a date-only stop covers that whole day
    ]
    assert len(everything) > len(starts)


def test_participant_without_schedule_fails_alone(sandbox: SandboxInfo, tmp_path: Path) -> None:
    result = schedules(sandbox, tmp_path, "--mode=json", "--external_id_time=nobody", script=True)
    assert result.code == 1
    assert "participant nobody: the server has no schedule for it" in result.out
    assert list(tmp_path.iterdir()) == []


def test_video_folder_positional_or_flag_not_both(sandbox: SandboxInfo, tmp_path: Path) -> None:
    result = schedules(sandbox, tmp_path, "--mode=video", "--video_path=a", "b", script=True)
    assert result.code == 2
    assert "given twice ('b' and 'a')" in result.one_line_error()
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
