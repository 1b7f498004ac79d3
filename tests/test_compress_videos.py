"""compress_videos on tiny generated clips, checked against VMAF measured independently."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clitools import REPO, run_cli
from longterm_sync.atomic import PARTIAL_SUFFIX
from longterm_sync.events import Event, ItemDone, ItemFailed, Planned, RecordingReporter
from longterm_sync.pipelines.compress import CompressOptions, ProbeDone, run_compress_videos
from longterm_sync.video.compress import SearchSettings
from longterm_sync.video.encode import Codec, Scene, VmafModel, check_model, encode_scene, measure
from longterm_sync.video.ffmpeg import probe
from longterm_sync.video.search import CRF_MAX, RUNG_FACTORS, CrfSearch, Probe
from video_helpers import frame_count, make_clip, make_flat, mean, vmaf_frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


def _inputs(folder: Path, clip: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(clip.read_bytes())
    return folder


def test_two_targets_match_an_independent_measurement(clip: Path, tmp_path: Path) -> None:
    inputs = _inputs(tmp_path / "files_to_compress", clip, ["45_clip.mp4", "80_clip.mp4"])
    result = run_cli(["compress_videos", "--jobs=2"], cwd=tmp_path, timeout=280)
    assert result.code == 0, result.out + result.err
    assert "45_clip.mp4: scene 1: CRF" in result.err  # progress per file and scene
    out = tmp_path / "created_files"
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "45_clip.json", "45_clip.mp4", "45_clip.source.mp4",
        "80_clip.json", "80_clip.mp4", "80_clip.source.mp4",
    ]  # fmt: skip
    for target in (45, 80):
        report = json.loads((out / f"{target}_clip.json").read_text(encoding="utf-8"))
        assert report["file_name"] == f"{target}_clip.mp4"
        assert report["target_vmaf"] == target
        assert (out / f"{target}_clip.source.mp4").read_bytes() == clip.read_bytes()
        video = out / f"{target}_clip.mp4"
        assert frame_count(video) == frame_count(inputs / f"{target}_clip.mp4") == 100
        frames = vmaf_frames(video, clip, tmp_path / f"vmaf{target}.json")
        assert report["vmaf"] == pytest.approx(mean(frames), abs=0.01)
        assert [s["scene"] for s in report["scenes"]] == [1, 2]  # the cut scdet finds at 2 s
        assert report["scenes"][1]["start"] == pytest.approx(2.0)
        for scene in report["scenes"]:
            mine = mean(frames[scene["start_frame"] : scene["end_frame"]])
            assert scene["vmaf"] == pytest.approx(mine, abs=0.01)
            # the search's figure is the final file's: same frames, same neighbours
            assert scene["vmaf"] == pytest.approx(scene["search_vmaf"], abs=0.01)
            assert scene["encodes"] == sum(1 for p in scene["probes"] if not p["reused"])
            assert scene["probes_reused"] == sum(1 for p in scene["probes"] if p["reused"])
            assert all(p["every_frame"] for p in scene["probes"])  # 2 s scenes: every frame
            assert {"start", "end", "resolution", "crf"} <= scene.keys()
            if scene["reached"]:
                assert abs(scene["vmaf"] - target) <= 1.0
            else:
                assert scene["reason"], scene
        assert sum(s["encodes"] for s in report["scenes"]) == report["encodes"]
        assert abs(report["vmaf"] - target) <= 2.0
    first = json.loads((out / "45_clip.json").read_text(encoding="utf-8"))
    second = json.loads((out / "80_clip.json").read_text(encoding="utf-8"))
    assert first["probes_reused"] == 0  # an empty cache
    # the same content at another target starts from the first file's points
    assert all(s["probes_reused"] == first["scenes"][i]["encodes"]
               for i, s in enumerate(second["scenes"]))  # fmt: skip
    assert (out / ".compress-cache" / "probes.json").is_file()
    lower = json.loads((out / "45_clip.json").read_text(encoding="utf-8"))
    assert (out / "45_clip.mp4").stat().st_size < (out / "80_clip.mp4").stat().st_size
    assert lower["vmaf"] < 60


def test_events_on_one_stream_and_a_failed_file_does_not_stop_the_run(tmp_path: Path) -> None:
    """Issue 13's event stream: Planned, a line per probe, a table per file, ItemFailed for
    a file whose ffmpeg fails (its source vanished after the check) while the next goes on."""
    clip = make_clip(tmp_path / "clip.mp4", size="96x64", seconds=1.2)
    inputs = _inputs(tmp_path / "in", clip, ["50_gone.mp4", "60_kept.mp4"])

    class Vanishing(RecordingReporter):
        def emit(self, event: Event) -> None:
            super().emit(event)
            if isinstance(event, Planned):  # after every input was checked, before encoding
                (inputs / "50_gone.mp4").unlink()

    reporter = Vanishing()
    options = CompressOptions(
        input_dir=inputs, output_dir=tmp_path / "out", settings=SearchSettings(jobs=2)
    )
    summary = asyncio.run(run_compress_videos(options, reporter=reporter))
    assert {e.job for e in reporter.events} == {"compress_videos"}
    assert [e.items for e in reporter.of(Planned)] == [2]
    (failed,) = reporter.of(ItemFailed)
    assert failed.item == "50_gone.mp4" and "ffmpeg" in failed.reason
    assert [f.item for f in summary.failures] == ["50_gone.mp4"]
    probes = [e for e in reporter.of(ItemDone) if isinstance(e.data, ProbeDone)]
    (done,) = [e for e in reporter.of(ItemDone) if not isinstance(e.data, ProbeDone)]
    assert done.item == "60_kept.mp4" and done.lines[0].startswith("60_kept.mp4: target 60")
    report = done.data
    assert done.counts["encodes"] == report["encodes"] == summary.counts["encodes"]
    assert report["encodes"] == sum(e.counts.get("encodes", 0) for e in probes)
    assert {e.item for e in probes} == {"60_kept.mp4 scene 1", "60_kept.mp4 scene 2"}
    assert all(e.lines[0].startswith(f"60_kept.mp4: scene {e.data.scene}: ") for e in probes)
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")) == [
        "60_kept.json", "60_kept.mp4", "60_kept.source.mp4",
    ]  # fmt: skip


def test_probe_cache_is_reused_by_a_later_run(tmp_path: Path) -> None:
    """The cache in the output folder: the same content to the same target again measures
    nothing new; only each scene's pick is encoded again (encodes are not kept)."""
    clip = make_clip(tmp_path / "clip.mp4", size="96x64", seconds=1.2)
    inputs = _inputs(tmp_path / "in", clip, ["55_clip.mp4"])
    args = ["compress_videos", f"--input-dir={inputs}", f"--output-dir={tmp_path / 'out'}",
            "--jobs=2", "--json"]  # fmt: skip
    runs = []
    for _ in range(2):
        result = run_cli(args, timeout=200)
        assert result.code == 0, result.err
        runs.append(json.loads(result.out)["details"]["reports"][0])
    first, again = runs
    assert first["probes_reused"] == 0 and first["encodes"] >= 2
    for before, now in zip(first["scenes"], again["scenes"], strict=True):
        assert now["probes_reused"] == before["encodes"]
        assert now["encodes"] == 1  # the pick, encoded again: the same bytes, the same VMAF
        assert (now["crf"], now["resolution"]) == (before["crf"], before["resolution"])
        assert now["vmaf"] == pytest.approx(before["vmaf"], abs=0.001)


def test_unreachable_target_reports_closest_and_reason(tmp_path: Path) -> None:
    make_flat(tmp_path / "in" / "10_flat.mp4")
    result = run_cli(
        ["compress_videos", "--input-dir", str(tmp_path / "in"), "--output-dir",
         str(tmp_path / "out"), "--jobs=2", "--json"],
        timeout=200,
    )  # fmt: skip
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    (scene,) = summary["details"]["reports"][0]["scenes"]
    assert scene["reached"] is False
    assert scene["reason"].startswith("too simple"), scene["reason"]
    assert "closest VMAF" in scene["reason"]
    assert CRF_MAX in [p["crf"] for p in scene["probes"]]  # it tried the highest CRF
    assert "neither CRF nor a lower resolution" in scene["reason"]
    assert scene["encodes"] <= 4  # a flat picture is given up on quickly, not every rung
    assert scene["vmaf"] > 20
    assert summary["counts"]["scenes off target"] == 1
    assert any("too simple" in w for w in summary["warnings"])


@pytest.mark.parametrize(
    ("name", "content", "extra", "message"),
    [
        ("x60_clip.mp4", None, [], "must start with the target VMAF"),
        ("60_broken.mp4", b"not a video at all", [], "60_broken.mp4: not a readable video"),
        ("60_clip.mp4", None, ["--vmaf-model=/nope/model.json"], "/nope/model.json does not"),
        ("60_clip.mp4", None, ["--vmaf-model=vmaf_v9"], "VMAF model 'vmaf_v9' cannot be used"),
        ("notes.txt", b"hello", [], "notes.txt: not a video"),
    ],
)
def test_bad_input_is_one_line_and_leaves_nothing(
    clip: Path, tmp_path: Path, name: str, content: bytes | None, extra: list[str], message: str
) -> None:
    inputs = tmp_path / "in"
    _inputs(inputs, clip, ["50_ok.mp4"])
    (inputs / name).write_bytes(clip.read_bytes() if content is None else content)
    out = tmp_path / "out"
    result = run_cli(
        ["compress_videos", f"--input-dir={inputs}", f"--output-dir={out}", *extra], timeout=120
    )
    assert result.code == 2, result.out + result.err
    assert message in result.one_line_error()
    leftovers = (
        [p.name for p in out.iterdir() if not p.name.startswith(".lock")] if out.exists() else []
    )
    assert leftovers == []


def test_ctrl_c_leaves_no_output_and_no_ffmpeg(clip: Path, tmp_path: Path) -> None:
    # Six files at two jobs: one clip takes well under a second here, so with a single input
    # the Ctrl-C raced the end of the run (CI saw it arrive after the last file was written).
    names = [f"70_clip{i}.mp4" for i in range(6)]
    inputs = _inputs(tmp_path / "in", clip, names)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKEN_", "LONGTERM_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "longterm_sync", "compress_videos", f"--input-dir={inputs}",
         f"--output-dir={out}", "--jobs=2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until the search has started
        if b": scene " in line:
            break
    deadline = time.monotonic() + 30
    while not _processes_mentioning(str(inputs), "ffmpeg"):  # an ffmpeg child is at work
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err
    assert err.decode().strip().endswith("interrupted"), err.decode()
    # a file finished before the Ctrl-C stays, whole; nothing half-written is left
    visible = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    done = sorted({n.split(".")[0] for n in visible})
    assert visible == sorted(f"{d}{ext}" for d in done for ext in (".json", ".mp4", ".source.mp4"))
    assert len(done) < len(names)
    assert [p for p in out.rglob("*") if p.name.endswith(PARTIAL_SUFFIX)] == []
    time.sleep(0.5)
    assert not _processes_mentioning(str(tmp_path))


def _processes_mentioning(text: str, program: str = "") -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        cmdline = b" ".join(argv).decode()
        # (not "pytest" in cmdline: every path under tmp_path has it, the check never failed)
        pid = int(entry.name)
        if text in cmdline and pid != os.getpid() and program in Path(argv[0].decode()).name:
            found.append(pid)
    return found


def _curve(crf: float, rung: int, top: float = 100.0) -> float:
    """A smooth, monotone stand-in for x264's CRF->VMAF curve (steeper at high CRF)."""
    return max(0.0, top - 0.035 * crf**2 - 12.0 * rung)


@pytest.mark.parametrize("target", [20, 40, 60, 80, 95])
def test_search_converges_in_few_probes(target: float) -> None:
    search = CrfSearch(target, tolerance=1.0)
    while (step := search.next_probe()) is not None:
        rung, crf = step
        search.add(Probe(rung, crf, _curve(crf, rung)))
    assert search.reached, search.probes
    assert len(search.probes) <= 5, search.probes


def test_search_says_why_a_target_cannot_be_reached() -> None:
    simple = CrfSearch(30, tolerance=1.0, rungs=2)
    while (step := simple.next_probe()) is not None:
        simple.add(Probe(step[0], step[1], 90.0 - step[1] * 0.01))
    assert not simple.reached and simple.reason and simple.reason.startswith("too simple")
    complex_ = CrfSearch(90, tolerance=1.0)
    while (step := complex_.next_probe()) is not None:
        complex_.add(Probe(step[0], step[1], 70.0 - step[1] * 0.2))
    assert complex_.reason and complex_.reason.startswith("too complex")
    assert complex_.best is not None and complex_.best.vmaf == pytest.approx(70 - 0.8)


def test_phone_model_is_loaded_and_scores_higher(clip: Path, tmp_path: Path) -> None:
    """--phone-model: libvmaf's phone transform (higher scores for the same picture)."""

    async def scores() -> tuple[float, float]:
        info = await probe(clip, tmp_path, 10.0)
        scene = Scene(1, 0, 50)
        await check_model(VmafModel(phone=True), tmp_path)
        out = tmp_path / "enc.mp4"
        await encode_scene(clip, info, scene, 0, 40.0, Codec(), out)
        plain = await measure(out, clip, info, scene, VmafModel(), tmp_path / "a.json")
        phone = await measure(out, clip, info, scene, VmafModel(phone=True), tmp_path / "b.json")
        return mean([v for _, v in plain]), mean([v for _, v in phone])

    plain, phone = asyncio.run(scores())
    assert len({plain, phone}) == 2 and phone > plain + 3, (plain, phone)


def test_search_averages_at_most_five_probes_on_noisy_curves() -> None:
    """Many x264-like curves (VMAF = 100 - e^(k(crf - c0)), a per-rung loss, ±0.3 noise)."""
    import math
    import random

    rng = random.Random(1)
    counts = []
    reached = 0
    for _ in range(200):
        c0, k, loss = rng.uniform(0, 30), rng.uniform(0.07, 0.16), rng.uniform(3, 15)
        for target in (20, 40, 60, 80, 95):
            search = CrfSearch(target, tolerance=1.0)
            while (step := search.next_probe()) is not None:
                rung, crf = step
                vmaf = 100 - math.exp(k * (crf - c0)) - loss * rung * (1 + crf / 51)
                search.add(Probe(rung, crf, min(100.0, max(0.0, vmaf + rng.uniform(-0.3, 0.3)))))
            counts.append(len(search.probes))
            reached += search.reached or bool(search.reason and "too" in search.reason)
    assert sum(counts) / len(counts) <= 5.0
    assert reached >= 0.97 * len(counts)


def test_a_still_picture_is_given_up_after_two_probes() -> None:
    """One probe at the far end (lowest detail, CRF 51) shows a still picture unreachable."""
    search = CrfSearch(40, tolerance=1.0)
    while (step := search.next_probe()) is not None:
        search.add(Probe(step[0], step[1], 97.4))
    assert len(search.probes) == 2, search.probes
    assert (len(RUNG_FACTORS) - 1, CRF_MAX) == (search.probes[1].rung, search.probes[1].crf)
    assert search.reason and "neither CRF nor a lower resolution" in search.reason


def test_a_subsampled_pick_is_confirmed_on_every_frame_before_it_is_taken() -> None:
    search = CrfSearch(60, tolerance=1.0)
    step = search.next_probe()
    assert step is not None
    rung, crf = step
    search.add(Probe(rung, crf, 60.4, full=False))
    assert search.unconfirmed() == Probe(rung, crf, 60.4, full=False)
    assert not search.reached
    search.add(Probe(rung, crf, 62.5))  # every frame says: too good
    assert search.unconfirmed() is None and len(search.probes) == 1
    after = search.next_probe()
    assert after is not None and after[0] == rung and after[1] > crf  # on from that point
    search.add(Probe(after[0], after[1], 60.3))
    assert search.reached and search.next_probe() is None


def test_cached_points_cost_no_encodes() -> None:
    search = CrfSearch(60, tolerance=1.0)
    for crf, vmaf in ((30, 85.0), (40, 62.0), (45, 50.0)):
        search.add(Probe(0, crf, vmaf, reused=True))
    step = search.next_probe()
    assert step is not None and 40 < step[1] < 45 and search.encodes == 0
    search.add(Probe(0, step[1], 60.2))
    assert search.reached and search.encodes == 1


def test_a_rung_where_no_crf_lands_hands_over_to_a_finer_rung() -> None:
    """The bench's medium scene 3 at 60: at 1/4 detail x264 jumps from 62.1 to 57.3 VMAF
    between CRF 49.4 and 49.5; a finer rung has a smooth stretch through the target."""

    def vmaf(rung: int, crf: float) -> float:
        if rung == len(RUNG_FACTORS) - 1:
            return 69.4 if crf <= 49.1 else 62.1 if crf <= 49.4 else 57.3 if crf <= 49.5 else 54.0
        base, per_crf = [(85.5, 1.5), (70.0, 2.0), (59.05, 2.5), (57.3, 2.7)][rung]
        return min(97.0, base + (CRF_MAX - crf) * per_crf)

    search = CrfSearch(60, tolerance=1.0)
    search.add(Probe(0, 46.0, 93.3, reused=True))  # what target 40 left in the cache
    search.add(Probe(len(RUNG_FACTORS) - 1, CRF_MAX, 54.0, reused=True))
    while (step := search.next_probe()) is not None:
        search.add(Probe(step[0], step[1], vmaf(*step)))
    assert search.reached, (search.reason, search.probes)
    assert search.best is not None and search.best.rung == len(RUNG_FACTORS) - 2
