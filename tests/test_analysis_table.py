"""results-table and --like-preprocess-r: columns and values against the synthetic study's
known answers, from a download-results folder and from the server; bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis_helpers import cli, local_ms, posted_results, shared_study
from clitools import run_cli
from fixtures_sandbox import SandboxInfo
from longterm_sync.analysis.source import BadFile, iter_items
from longterm_sync.analysis.table import HEAD, TAIL
from longterm_sync.sandbox.synth import video_duration_ms
from rest_helpers import download

UNKNOWN = "f0" * 32


@pytest.fixture(scope="module")
def folder(sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("analysis-results")
    result = download(sandbox, out)
    assert result.code == 0, result.err
    return out


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, dtype=str)


def test_columns_and_values_match_the_generated_study(
    sandbox: SandboxInfo, folder: Path, tmp_path: Path
) -> None:
    result = cli(sandbox, "results-table", tmp_path, "--from", str(folder), "--xlsx", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    frame = read_table(tmp_path / "results_table.csv")
    answers = ["answer_q1", "answer_q2", "answer_q3", "answer_q4"]
    assert list(frame.columns) == [*HEAD, *answers, *TAIL] == summary["details"]["columns"]
    study = shared_study()
    posted = posted_results(study)
    assert len(frame) == len(posted) == summary["counts"]["rows"]
    rows = {(r.external_id, r.date, r.video): r for r in frame.itertuples()}
    face_down_seen = no_accel_seen = 0
    for p, body in posted:
        res = body["result"]
        row = rows[(p.external_id, local_ms(body["date"]), res["video"])]
        form = {q["optional_id"]: q["answer"]["content"] for q in res["reply_form"]["content"]}
        assert row.answer_q1 == str(form["q1"])
        assert row.answer_q2 == ("" if form["q2"] is None else str(form["q2"]))
        assert row.answer_q3 == form["q3"]
        assert row.answer_q4 == ""
        assert float(row.video_duration_s) == video_duration_ms(res["video"]) / 1000
        assert row.service == res["service"]
        assert row.device_brand == res["device_info"]["brand"]
        assert row.reply_started == res["reply_form"]["started"]
        if not res["accelerometer_data"]["z"]:
            assert row.face_down == ""
            no_accel_seen += 1
        else:
            assert row.face_down == str(p.face_down)
            face_down_seen += p.face_down
        delta = float(row.playback_delta_s)
        assert row.speed_state == (
            "ok" if abs(delta) <= 3 else "longer" if delta > 0 else "shorter"
        )
    assert face_down_seen and no_accel_seen
    assert set(frame.speed_state) == {"ok", "longer", "shorter"}
    # sorted by participant, then date
    keys = list(zip(frame.external_id, frame.date, strict=True))
    assert keys == sorted(keys)
    book = pd.read_excel(tmp_path / "results_table.xlsx", sheet_name=None)
    assert set(book) == {"results", "columns"} and len(book["results"]) == len(frame)


def test_folder_and_server_give_the_same_table(
    sandbox: SandboxInfo, folder: Path, tmp_path: Path
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli(sandbox, "results-table", a, "--from", str(folder)).code == 0
    assert cli(sandbox, "results-table", b).code == 0
    assert (a / "results_table.csv").read_bytes() == (b / "results_table.csv").read_bytes()
    # results_all.json alone (no per-participant files) is read the same way
    only_all = tmp_path / "only_all"
    only_all.mkdir()
    shutil.copy(folder / "results_all.json", only_all)
    c = tmp_path / "c"
    assert cli(sandbox, "results-table", c, "--from", str(only_all)).code == 0
    assert (c / "results_table.csv").read_bytes() == (a / "results_table.csv").read_bytes()


def test_selection_narrows_a_folder(sandbox: SandboxInfo, folder: Path, tmp_path: Path) -> None:
    p = shared_study().participants[0]
    flag = f"--external_id_time={p.external_id},2024-03-10T00:00:00,2024-03-12T23:59:59"
    result = cli(sandbox, "results-table", tmp_path, "--from", str(folder), flag)
    assert result.code == 0, result.err
    frame = read_table(tmp_path / "results_table.csv")
    assert set(frame.external_id) == {p.external_id}
    assert frame.date.min() >= "2024-03-10" and frame.date.max() < "2024-03-13"
    assert len(frame) >= 2


# -- --like-preprocess-r --------------------------------------------------------------------


def _item(ext: str, date: str, video: str, form: object) -> dict:
    return {"external_id": ext, "date": date, "result": {"video": video, "reply_form": form}}


def _q(value: object, key: str = "content") -> dict:
    return {"type": "MOS", "answer": {key: value}, "optional_id": "x"}


def test_like_preprocess_r_row_for_row(sandbox: SandboxInfo, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    items = [
        _item("aa", "2022-02-15T17:52:09.104000+01:00", "cudotworcy_vmaf100.mp4",
              {"content": [_q(4), _q(True), _q("Krótkie")]}),
        _item("aa", "2022-02-15T18:52:09.104000+01:00", "cudo_B.mp4", []),
        _item("aa", "2022-02-16T10:00:00+01:00", "x_codec_h265.mp4", {"content": [_q(1)]}),
        _item("bb", "2022-02-16T11:00:00+01:00", "src07.mp4", {"content": [_q(2)]}),
        _item("bb", "2022-02-16T12:00:00+01:00", "vmaf80_denver.mp4",
              {"content": [_q(5, "value"), _q(False, "value")]}),
        _item("bb", "2022-02-16T13:00:00+01:00", 'say "hi".mp4', {"content": [_q(None)]}),
        "poison",
    ]  # fmt: skip
    (src / "results_all.json").write_text(json.dumps(items, ensure_ascii=False, indent=4))
    result = cli(sandbox, "results-table", tmp_path / "out", "--from", str(src),
                 "--like-preprocess-r")  # fmt: skip
    assert result.code == 0, result.err
    assert (tmp_path / "out" / "dataframe_lts_phase2.csv").read_text() == (
        '"external_id","date","video","q1","q2"\n'
        '"aa","2022-02-15T17:52:09.104000+01:00","cudotworcy_vmaf100.mp4",4,TRUE\n'
        '"aa","2022-02-15T18:52:09.104000+01:00","cudo_B.mp4",NA,NA\n'
        '"bb","2022-02-16T12:00:00+01:00","vmaf80_denver.mp4",5,FALSE\n'
        '"bb","2022-02-16T13:00:00+01:00","say ""hi"".mp4",NA,NA\n'
    )
    assert not (tmp_path / "out" / "results_table.csv").exists()


# -- bad input ------------------------------------------------------------------------------


def test_unknown_participant_is_one_line_and_exit_1(
    sandbox: SandboxInfo, folder: Path, tmp_path: Path
) -> None:
    for source in (["--from", str(folder)], []):
        result = cli(sandbox, "results-table", tmp_path, *source, f"--external_id_time={UNKNOWN}")
        assert result.code == 1, result.err
        assert UNKNOWN in result.out and "Traceback" not in result.err
        assert not (tmp_path / "results_table.csv").exists()


def test_range_without_data_writes_nothing(
    sandbox: SandboxInfo, folder: Path, tmp_path: Path
) -> None:
    for source in (["--from", str(folder)], []):
        result = cli(sandbox, "results-table", tmp_path, *source,
                     "--user_time=,,,2020-01-01,2020-01-31")  # fmt: skip
        assert result.code == 1, result.err
        assert "nothing found" in result.out
        assert not (tmp_path / "results_table.csv").exists()


def test_folder_without_results_is_a_usage_error(sandbox: SandboxInfo, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli(sandbox, "results-table", tmp_path / "out", "--from", str(empty))
    assert result.code == 2
    assert "no results_*.json files in" in result.one_line_error()


def test_truncated_file_is_named_with_its_line_and_the_rest_is_written(
    sandbox: SandboxInfo, folder: Path, tmp_path: Path
) -> None:
    src = tmp_path / "in"
    shutil.copytree(folder, src)
    victim = sorted(src.glob("results_[0-9a-f]*.json"))[0]
    lines = victim.read_bytes().splitlines(keepends=True)
    victim.write_bytes(b"".join(lines[:3]) + lines[3][: len(lines[3]) // 2])
    result = cli(sandbox, "results-table", tmp_path / "out", "--from", str(src), "--json")
    assert result.code == 1, result.err
    summary = json.loads(result.out)
    (failure,) = summary["failures"]
    assert failure["item"] == f"{victim}:4" and "truncated" in failure["reason"]
    frame = read_table(tmp_path / "out" / "results_table.csv")
    expected = len(posted_results(shared_study())) - (len(lines) - 2) + 2
    assert len(frame) == expected  # the two items before the cut are kept


def test_stream_reader_yields_items_before_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "results_x.json"
    path.write_bytes(b'[\n{"a":1},\n{"a":2},\n{"a":3 oops},\n{"a":4}\n]\n')
    got = []
    with pytest.raises(BadFile) as bad:
        for line, item in iter_items(path):
            got.append((line, item))
    assert got == [(2, {"a": 1}), (3, {"a": 2})]
    assert bad.value.line == 4 and str(bad.value).startswith(f"{path}:4: not JSON")


def test_a_folder_needs_no_server_profile(folder: Path, tmp_path: Path) -> None:
    """--from reads files only: a config without any [servers] entry (so --server dev has
    no url) still works, with the default timezone."""
    empty = tmp_path / "empty.toml"
    empty.write_text("[limits]\nrest_concurrency = 2\n")
    out = tmp_path / "out"
    result = run_cli(["results-table", "--config", str(empty), "--from", str(folder),
                      "--output-dir", str(out)], cwd=tmp_path)  # fmt: skip
    assert result.code == 0, result.err
    assert len(read_table(out / "results_table.csv")) == len(posted_results(shared_study()))
