"""download-plot-gyro-sequence headless: one file per viewing, the axes hold the expected
series on the fixed ranges, the title (in the figure and in the file's metadata) holds the
feedback; refusals and viewings without sensor data."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from analysis_helpers import posted_results, shared_study
from clitools import Result, run_cli
from fixtures_sandbox import SandboxInfo
from longterm_sync.analysis import plots
from longterm_sync.config import load_config
from longterm_sync.pipelines.analysis import PlotOptions, Source, run_plot_gyro
from longterm_sync.select import Participant, Selection
from longterm_sync.timeutil import WARSAW
from rest_helpers import download

HEADLESS = {"DISPLAY": "", "WAYLAND_DISPLAY": "", "MPLBACKEND": ""}


def plot_cli(info: SandboxInfo, *flags: str) -> Result:
    return run_cli(
        ["download-plot-gyro-sequence", "--config", info.config, "--server", "sandbox", *flags],
        env=HEADLESS,
        timeout=240,
    )


def _stamps(n: int, step_ms: int) -> list[str]:
    base = datetime(2024, 3, 10, 17, 0, 0, tzinfo=WARSAW).timestamp()
    return [
        datetime.fromtimestamp(base + i * step_ms / 1000, WARSAW).isoformat(timespec="milliseconds")
        for i in range(n)
    ]


def hand_item() -> dict[str, Any]:
    n = 400  # 20 s at 50 Hz
    t = np.arange(n) / 50
    return {
        "external_id": "ab" * 32,
        "date": "2024-03-10T17:05:00.000+01:00",
        "result": {
            "video": "subset1/clip_A.mp4",
            "gyroscope_data": {
                "x": list(np.round(np.sin(t), 5)),
                "y": [0.5] * n,
                "z": [-0.5] * n,
                "timestamp": _stamps(n, 20),
            },
            "accelerometer_data": {
                "x": [0.1] * n,
                "y": [-0.3] * 40 + [-0.35] * (n - 40),
                "z": [0.9] * 60 + [-0.95] * (n - 60),
                "timestamp": _stamps(n, 20),
            },
            "playback_data": {
                "timestamp": _stamps(80, 250),
                "playing": [True] * 40 + [False] * 40,
                "brightness": [0.4] * 80,
                "fullscreen_status": ["FULLSCREEN"] * 80,
            },
            "user_feedback": [
                {
                    "video": "subset1/clip_A.mp4",
                    "date": "2024-03-10T17:09:00+01:00",
                    "comment": "Za ciemno",
                },
                {
                    "video": "subset1/clip_A.mp4",
                    "date": "2024-03-11T08:00:00+01:00",
                    "comment": "second thought",
                },
            ],
        },
    }


def test_figure_axes_series_ranges_and_title() -> None:
    data = plots.plot_data(hand_item(), WARSAW)
    assert data is not None and data.problem is None
    fig = plots.draw(data)
    gyro, acc, strip = fig.axes[:3]
    assert [line.get_color() for line in gyro.get_lines()] == ["red", "green", "blue"]
    assert [line.get_label() for line in acc.get_lines()] == ["acc x", "acc y", "acc z"]
    assert gyro.get_ylim() == (-2.5, 2.5) and acc.get_ylim() == (-1.2, 1.2)
    x, y = gyro.get_lines()[0].get_data()
    assert x[0] == 0 and x[-1] == pytest.approx(399 / 50, abs=1e-3)  # seconds since first
    assert np.allclose(y, np.sin(np.arange(400) / 50), atol=1e-4)
    z = acc.get_lines()[2].get_ydata()
    assert z[0] == pytest.approx(0.9) and z[-1] == pytest.approx(-0.95)
    assert [line.get_label() for line in strip.get_lines()] == [
        "playing",
        "brightness",
        "fullscreen",
    ]
    playing = strip.get_lines()[0].get_ydata()
    assert list(playing[:40]) == [1] * 40 and list(playing[40:]) == [0] * 40
    title = fig._suptitle.get_text()
    assert "study date 2024-03-10 17:05 subset1/clip_A.mp4" in title
    assert "feedback 2024-03-10 17:09: Za ciemno" in title
    assert "feedback 2024-03-11 08:00: second thought" in title
    # the accelerometer line: first max(10 %, 3 s) = 150 samples dropped
    assert data.stats is not None and data.stats.kept == 250
    assert data.stats.median == pytest.approx((0.1, -0.35, -0.95))
    assert data.stats.face_down


def test_missing_sensor_arrays_say_why() -> None:
    item = hand_item()
    item["result"]["accelerometer_data"] = {"x": [], "y": [], "z": [], "timestamp": []}
    data = plots.plot_data(item, WARSAW)
    assert data is not None and data.problem == "no accelerometer data"
    del item["result"]["gyroscope_data"]
    assert plots.plot_data(item, WARSAW).problem == "no gyroscope or accelerometer data"  # type: ignore[union-attr]


def _png_title(path: Path) -> str:
    with Image.open(path) as image:
        return str(image.info.get("Title", ""))


def test_one_png_per_viewing_with_feedback_in_the_title(
    sandbox: SandboxInfo, tmp_path: Path
) -> None:
    study = shared_study()
    p = next(q for q in study.participants if q.feedback_twice)
    mine = [body for q, body in posted_results(study) if q is p]
    with_sensors = [b for b in mine if b["result"]["accelerometer_data"]["z"]]
    comments = [post.body for post in study.posts(p) if post.route == "feedback-comments"]
    assert len(comments) == 2 and len(with_sensors) < len(mine)
    out = tmp_path / "figs"
    result = plot_cli(sandbox, f"--external_id_time={p.external_id}", "--save", str(out))
    assert result.code == 0, result.err
    pngs = sorted(out.glob(f"{p.external_id}_2024-*.png"))
    assert len(pngs) == len(with_sensors)
    assert (out / f"{p.external_id}_contact_sheet.png").is_file()
    assert result.out.count("acc median x,y,z") == len(with_sensors)
    skipped = [ln for ln in result.out.splitlines() if "skipped: no accelerometer data" in ln]
    assert len(skipped) == len(mine) - len(with_sensors)
    video = comments[0]["video"]
    for path in pngs:
        title = _png_title(path)
        assert p.external_id[:12] in title and "study date 2024-03-" in title
        has = all(c["comment"] in title for c in comments)
        assert has == (video.rsplit(".", 1)[0].replace("/", "_") in path.name)
        with Image.open(path) as image:
            assert image.size == (1000, 650)
            pixels = np.asarray(image.convert("L"), dtype=np.float32)
        assert pixels.std() > 10  # drawn, not blank
        # red, green and blue curves are there
        rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
        for channel in range(3):
            others = [c for c in range(3) if c != channel]
            pure = (rgb[..., channel] > 100) & (rgb[..., others].max(axis=-1) < 60)
            assert pure.sum() > 50


def test_folder_svg_and_parallel_equals_single(sandbox: SandboxInfo, tmp_path: Path) -> None:
    folder = tmp_path / "results"
    assert download(sandbox, folder).code == 0
    study = shared_study()
    p = study.participants[0]
    selection = Selection(participants=[Participant(p.external_id)], source="external_id")
    config = load_config(sandbox.config)
    profile, limits = config.profile("sandbox"), config.limits
    runs = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        options = PlotOptions(
            source=Source(selection=selection, folder=folder), output_dir=out, fmt="svg"
        )
        run = asyncio.run(run_plot_gyro(profile, limits, options, workers=workers))
        assert run.summary.ok, run.summary.failures
        runs[workers] = sorted(f.name for f in out.glob("*.svg"))
        assert runs[workers] and len(runs[workers]) == run.summary.counts["figures"]
        svg = (out / runs[workers][0]).read_text()
        assert "<title>" in svg or "study date" in svg
    assert runs[1] == runs[2]


def test_refusals_and_nothing_to_draw(sandbox: SandboxInfo, tmp_path: Path) -> None:
    wild = plot_cli(sandbox, "--user_time=,,,", "--save", str(tmp_path))
    assert wild.code == 2 and "doesn't work for wildcard" in wild.one_line_error()
    users = tmp_path / "two.csv"
    ids = [q.external_id for q in shared_study().participants[:2]]
    users.write_text("external_id,start_date,stop_date\n" + "".join(f"{i},,\n" for i in ids))
    two = plot_cli(sandbox, f"--excel_time={users}", "--save", str(tmp_path))
    assert two.code == 2 and "doesn't work for wildcard" in two.one_line_error()
    unknown = plot_cli(sandbox, "--external_id_time=" + "f0" * 32, "--save", str(tmp_path))
    assert unknown.code == 1 and "f0" * 32 in unknown.out
    # results without sensor data: every viewing skipped, said why, nothing drawn, exit 1
    folder = tmp_path / "nosensors"
    folder.mkdir()
    item = hand_item()
    item["result"]["gyroscope_data"] = None
    (folder / f"results_{'ab' * 32}.json").write_text("[\n" + json.dumps(item) + "\n]\n")
    empty = plot_cli(
        sandbox, "--from", str(folder), f"--external_id_time={'ab' * 32}", "--save", str(tmp_path)
    )
    assert empty.code == 1
    assert "skipped: no gyroscope data" in empty.out and "nothing found" in empty.out
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.skipif(os.name != "posix", reason="scripts are run as on the lab's machines")
def test_script_spelling_runs_headless(sandbox: SandboxInfo, tmp_path: Path) -> None:
    p = shared_study().participants[1]
    result = run_cli(
        ["--config", sandbox.config, "--server=sandbox", f"--external_id_time={p.external_id}"],
        script="download-plot-gyro-sequence",
        cwd=tmp_path,
        env=HEADLESS,
        timeout=240,
    )
    assert result.code == 0, result.err
    assert list(tmp_path.glob(f"{p.external_id}_2024-*.png"))  # no display: saved here
