"""Analysis commands: the results table of a large file and sensor figures per second.

No server: a synthetic study's results are written to a folder the way download-results
writes them (one compact item per line), then, each command in its own process so that its
peak RSS (``wait4``, started through bench/peak.py) is its own:

- **table**: ``longterm results-table --from DIR`` on one large ``results_all.json``, against
  the baseline of loading the same file whole with the standard library's ``json`` and
  building the frame with pandas (what a script that ``json.load``s the file does).
- **plots**: ``longterm download-plot-gyro-sequence --save`` of one participant's N viewings
  with ``[limits] plot_processes = 1`` (one drawing thread) and ``= 2``; figures per second
  and the ratio.

Usage: ``python bench/analysis_bench.py [--quick] [--mb 200] [--viewings 60]``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from longterm_sync.jsonstream import encode_item  # noqa: E402
from longterm_sync.sandbox.synth import VIDEO_NAMES, Study, StudyParams  # noqa: E402
from longterm_sync.timeutil import WARSAW  # noqa: E402
from peak import run_usage  # noqa: E402

BASELINE = """
import json, sys
import pandas as pd
items = json.load(open(sys.argv[1], encoding="utf-8"))
rows = [{"external_id": i["external_id"], "date": i["date"], "video": i["result"]["video"],
         "z": i["result"]["accelerometer_data"]["z"]} for i in items]
frame = pd.DataFrame(rows)
frame.drop(columns=["z"]).to_csv(sys.argv[2], index=False)
"""


def write_results(path: Path, *, mb: float, samples: int, users: int = 4) -> tuple[int, int]:
    """Items of a synthetic study until the file holds ``mb`` MB; (items, bytes)."""
    study = Study(
        StudyParams(users=users, days=2, samples=samples, seed=7, today=date(2024, 3, 15))
    )
    rng = random.Random(7)
    size = count = 0
    day = datetime.combine(study.first_day, dtime(17), WARSAW)
    with path.open("wb") as fh:
        fh.write(b"[\n")
        while size < mb * 1e6:
            p = study.participants[count % users]
            when = day + timedelta(hours=count)
            video = VIDEO_NAMES[count % len(VIDEO_NAMES)]
            result = study.result(p, rng, when.replace(tzinfo=None), video, "A", count)
            line = encode_item(
                {"external_id": p.external_id, "date": when.isoformat(), "result": result}
            )
            fh.write((b",\n" if count else b"") + line)
            size += len(line) + 2
            count += 1
        fh.write(b"\n]\n")
    return count, path.stat().st_size


def timed_child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Wall seconds, the child's own peak RSS in MB (bench/peak.py), and the CPU seconds
    (user + system) of the child and the processes it waited for (its drawing processes)."""
    with tempfile.TemporaryFile() as err:
        usage = run_usage(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        if usage.code != 0:
            err.seek(0)
            raise RuntimeError(f"{cmd[:4]} failed: {err.read().decode()[-2000:]}")
    return usage.wall, usage.rss_mb, usage.cpu


def config(folder: Path, processes: int) -> Path:
    path = folder / f"bench-{processes}.toml"
    path.write_text(f"[limits]\nplot_processes = {processes}\n")
    return path


def bench_table(work: Path, mb: float, samples: int) -> None:
    src = work / "table"
    src.mkdir()
    t0 = time.perf_counter()
    items, size = write_results(src / "results_all.json", mb=mb, samples=samples)
    print(f"results_all.json: {items} results, {size / 1e6:.0f} MB "
          f"(written in {time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    ours = [
        *(sys.executable, "-m", "longterm_sync", "results-table"),
        *("--config", str(config(work, 1)), "--from", str(src)),
        *("--output-dir", str(work / "out"), "-q"),
    ]
    base = [sys.executable, "-c", BASELINE, str(src / "results_all.json"), str(work / "b.csv")]
    rows = []
    for name, cmd in (
        ("json.load whole + pandas (baseline)", base),
        ("longterm results-table", ours),
    ):
        best = min((timed_child(cmd, env) for _ in range(2)), key=lambda m: m[0])
        rows.append((name, best[0], best[1]))
    print(f"{'':40} {'wall s':>8} {'peak RSS MB':>12}")
    for name, wall, rss in rows:
        print(f"{name:40} {wall:8.2f} {rss:12.0f}")
    (_, bw, br), (_, ow, orss) = rows
    print(f"time ratio ours/baseline = {ow / bw:.2f}; peak RSS ratio = {orss / br:.2f}", flush=True)


def bench_plots(work: Path, viewings: int, samples: int) -> None:
    src = work / "plots"
    src.mkdir()
    study = Study(StudyParams(users=1, days=1, samples=samples, seed=3, today=date(2024, 3, 15)))
    p = study.participants[0]
    rng = random.Random(3)
    start = datetime.combine(study.first_day, dtime(8), WARSAW)
    with (src / f"results_{p.external_id}.json").open("wb") as fh:
        fh.write(b"[\n")
        for i in range(viewings):
            when = (start + timedelta(hours=i)).replace(tzinfo=None)
            result = study.result(p, rng, when, VIDEO_NAMES[i % 6], "A", 1 + 7 * i)  # accel kept
            line = encode_item({"external_id": p.external_id,
                                "date": when.isoformat() + "+01:00", "result": result})  # fmt: skip
            fh.write((b",\n" if i else b"") + line)
        fh.write(b"\n]\n")
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src"), "DISPLAY": "", "MPLBACKEND": ""}
    print(f"{viewings} viewings x {samples} samples per sensor", flush=True)
    print(f"{'':40} {'wall s':>8} {'figures/s':>10} {'CPU s':>7} {'peak RSS MB':>12}")
    walls = {}
    for processes in (1, 2):
        out = work / f"figs-{processes}"
        cmd = [sys.executable, "-m", "longterm_sync", "download-plot-gyro-sequence",
               "--config", str(config(work, processes)), "--from", str(src),
               f"--external_id_time={p.external_id}", "--save", str(out), "-q"]  # fmt: skip
        wall, rss, cpu = timed_child(cmd, env)
        made = len(list(out.glob("*_2024-*.png")))
        assert made == viewings, (made, viewings)
        walls[processes] = wall
        label = "1 drawing thread" if processes == 1 else f"{processes} drawing processes"
        # the drawing processes are the fork server's children: their CPU is not in wait4's
        cpu_text = f"{cpu:7.1f}" if processes == 1 else f"{'n/a':>7}"
        print(f"{label:40} {wall:8.2f} {viewings / wall:10.1f} {cpu_text} {rss:12.0f}", flush=True)
    print(f"speed-up 2 processes / 1 thread = {walls[1] / walls[2]:.2f}x (wall includes start-up)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--mb", type=float, default=200.0)
    parser.add_argument("--viewings", type=int, default=60)
    parser.add_argument("--samples", type=int, default=3000, help="per sensor and viewing")
    parser.add_argument("--skip-table", action="store_true", help="only the figures")
    args = parser.parse_args(argv)
    mb, viewings = (20.0, 12) if args.quick else (args.mb, args.viewings)
    work = Path(tempfile.mkdtemp(prefix="analysis-bench-"))
    try:
        if not args.skip_table:
            print("-- table --", flush=True)
            bench_table(work, mb, args.samples)
        print("-- plots --", flush=True)
        bench_plots(work, viewings, args.samples)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
