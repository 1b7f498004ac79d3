"""Every command treats the same situation the same way (issue 9, "consistent outcomes").

A participant named by ``--user_time``, ``--external_id_time`` or a spreadsheet row that the
server does not know is a failure everywhere: listed, exit status 1, and no file of its own.
``results_feedback_{id}.json`` exists only for participants with feedback (as the original),
and ``user_feedback`` for everyone is one request (as the original).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from clitools import Result, run_cli
from fixtures_sandbox import SandboxInfo, start_sandbox
from longterm_sync.timeutil import WARSAW
from report_helpers import Person, build_study, watch_result

TALKS = "a1" * 32  # results and a comment
SILENT = "b2" * 32  # results, no comment
NOBODY = "ff" * 32  # not on the server

COMMANDS = {
    "download-results": ("results_{}.json", "results_feedback_{}.json"),
    "download-schedule": ("schedule_{}.json",),
    "user_feedback": (),
    "user_activity": (),
}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxInfo]:
    info = start_sandbox(tmp_path_factory.mktemp("outcomes"), ["--today", "2024-03-05"])
    talks, silent = Person(TALKS), Person(SILENT)
    for person in (talks, silent):
        person.results.append(watch_result(datetime(2024, 3, 1, 18, tzinfo=WARSAW), watched_s=60))
    talks.comments.append({"video": "clip_A.mp4", "date": "2024-03-01T18:05:00", "comment": "Ok"})
    build_study(info, [talks, silent])
    try:
        yield info
    finally:
        info.stop()


def run(info: SandboxInfo, command: str, out: Path, *flags: str) -> Result:
    extra = ["--mode=json"] if command == "download-schedule" else []
    extra += ["--until=2024-03-05"] if command == "user_activity" else []
    common = ["--config", info.config, "--server", "sandbox", "--output-dir", str(out)]
    return run_cli([command, *common, *extra, *flags])


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_unknown_participant_fails_in_every_command(
    study: SandboxInfo, tmp_path: Path, command: str
) -> None:
    users = tmp_path / "users.csv"
    users.write_text(f"external_id,start_date,stop_date\n{TALKS},,\n{NOBODY},,\n")
    for flags in ([f"--external_id_time={NOBODY}"], [f"--excel_time={users}"]):
        out = tmp_path / flags[0][2:8]
        result = run(study, command, out, *flags, "--json")
        assert result.code == 1, (flags, result.err)
        summary = json.loads(result.out)
        assert [f["item"] for f in summary["failures"]] == [f"participant {NOBODY}"]
        assert summary["failures"][0]["reason"].startswith("the server has no schedule")
        for pattern in COMMANDS[command]:
            assert not (out / pattern.format(NOBODY)).exists()
    human = run(study, command, tmp_path / "human", f"--external_id_time={NOBODY}")
    assert human.code == 1
    assert f"  participant {NOBODY}: the server has no schedule" in human.out


def test_feedback_file_only_for_who_has_feedback(study: SandboxInfo, tmp_path: Path) -> None:
    result = run(study, "download-results", tmp_path)
    assert result.code == 0, result.err
    assert (tmp_path / f"results_feedback_{TALKS}.json").exists()
    assert not (tmp_path / f"results_feedback_{SILENT}.json").exists()
    assert (tmp_path / f"results_{SILENT}.json").exists()  # results are written for both


def test_feedback_of_everyone_is_one_request(study: SandboxInfo, tmp_path: Path) -> None:
    for flags in ([], ["--user_time=,,,2024-03-01,2024-03-02"]):
        result = run(study, "user_feedback", tmp_path, "--json", *flags)
        assert result.code == 0, result.err
        summary = json.loads(result.out)
        assert summary["details"]["requests"] == 1
        assert summary["counts"] == {"participants": 1, "comments": 1}
    named = run(study, "user_feedback", tmp_path, "--json", f"--external_id_time={SILENT}")
    assert json.loads(named.out)["counts"] == {"participants": 1, "comments": 0}
