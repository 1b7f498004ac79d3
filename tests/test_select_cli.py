"""Every malformed selection form through the real CLI: exit 2, one line, nothing sent.

The server URL points at a closed port: had anything been sent, the exit status would be 3.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from clitools import run_cli

ID = "ab" * 32
CLOSED = "http://127.0.0.1:9"


def _bad_files(folder: Path) -> dict[str, Path]:
    files = {
        "no_columns.csv": "id,start\nx,2022-01-01\n",
        "bad_date.csv": f"external_id,start_date,stop_date\n{ID},2022-02-30,\n",
        "broken.xlsx": "not a workbook",
        "users.json": "[]",
        "empty.csv": "",
    }
    out = {}
    for name, text in files.items():
        (folder / name).write_text(text)
        out[name] = folder / name
    return out


FORMS = [
    ("--user_time=a,b", "3 or 5"),
    ("--user_time=a,b,1,2022-01-01", "3 or 5"),
    ("--user_time=a,,1", "surname missing"),
    ("--user_time=,,,2022-01-32,2022-02-01", "start '2022-01-32'"),
    ("--user_time=,,,2022-01-01,soon", "stop 'soon'"),
    ("--user_time=,,,2022-02-01,2022-01-01T00:00", "not before stop"),
    (f"--external_id_time={ID},2022-01-01", "1 or 3"),
    ("--external_id_time=,2022-01-01,2022-02-01", "external_id is empty"),
    (f"--external_id_time={ID},2022-01-01,later", "stop 'later'"),
    ("--excel_time=FILES/no_columns.csv", "lacks column(s) external_id"),
    ("--excel_time=FILES/bad_date.csv", "row 2: start_date '2022-02-30'"),
    ("--excel_time=FILES/broken.xlsx", "is not really a .xlsx workbook"),
    ("--excel_time=FILES/users.json", "unsupported file type"),
    ("--excel_time=FILES/empty.csv", "is empty"),
    ("--excel_time=FILES/missing.xlsx", "does not exist"),
]


CASES = [("user_feedback", f, m) for f, m in FORMS] + [
    ("user_activity", f, m) for f, m in FORMS if f.startswith("--user_time")
]


@pytest.mark.parametrize(
    ("command", "flag", "message"), CASES, ids=[f"{c}{f}" for c, f, _ in CASES]
)
def test_malformed_selection(command: str, flag: str, message: str, tmp_path: Path) -> None:
    _bad_files(tmp_path)
    arg = flag.replace("FILES", str(tmp_path))
    result = run_cli(
        [command, f"--server={CLOSED}", "--token=" + "1" * 40, "--output-dir", str(tmp_path), arg]
    )
    assert result.code == 2, result.err
    line = result.one_line_error()
    assert line.startswith(f"longterm {command}: error: --"), line
    assert message in line
    assert not (tmp_path / f"{command}.csv").exists()


def test_script_shim_spells_the_flags_with_equals(tmp_path: Path) -> None:
    result = run_cli(
        [f"--server={CLOSED}", "--token=" + "1" * 40, "--user_time=a,b"],
        script="user_feedback",
    )
    assert result.code == 2
    assert result.one_line_error().startswith("user_feedback.py: error: --user_time")
