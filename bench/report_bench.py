"""Report benchmark: ``longterm report`` over a long study, first build and nightly rebuild.

The study is the sandbox's synthetic one (default 100 participants x 90 days, ``--samples``
sensor samples per result), written straight into a folder as a backup's ``latest/`` holds it
(results sorted by date with their comments rebuilt, feedback, schedules, missing-video
reports), so the figures measure the report alone. Measured in one run, each build a
``longterm report`` subprocess (wall time, CPU time of it and its figure workers, peak RSS of
the whole process tree sampled every 50 ms):

(a) first build of the whole study without figures (``--no-figures``): reading, reducing
    and the pages;
(b) figures per second: a first build with figures of the first ``--figure-users``
    participants, with ``[limits] plot_processes = 1`` and then 2 (both cores), and the
    speed-up between them;
(c) nightly rebuild after one new day for every participant, with figures, of a site whose
    cache holds the figure of every earlier viewing (only the new day's are drawn); and the
    same rebuild again with nothing new.

Drawing every figure of the whole study for real (``--draw-all``) takes long on a shared
2-core machine (about 0.25 s per figure per core unloaded); by default the earlier viewings'
cache entries for (c) are placeholders named by their real cache keys: the rebuild reads,
hashes and looks up every viewing exactly as it would with real figures, and draws only what
is new. The full site's size is then the pages plus the figures' mean size (from (b)) times
their number. Targets (issue 15): nightly rebuild under 30 s; the first build uses both cores;
peak RSS under 500 MB.

    .venv/bin/python bench/report_bench.py            # the issue's sizes
    .venv/bin/python bench/report_bench.py --quick    # 20 x 20
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from longterm_sync.analysis.source import iter_items
from longterm_sync.atomic import write_bytes_atomic
from longterm_sync.jsonstream import dump_array
from longterm_sync.report.drawing import plots_drawer
from longterm_sync.report.figures import FigureCache
from longterm_sync.sandbox.synth import Study, StudyParams
from longterm_sync.timeutil import WARSAW, format_server_datetime, parse_datetime

TODAY = date(2024, 3, 15)
MB = 1_000_000


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mb: float
    summary: dict[str, Any]

    @property
    def cores(self) -> float:
        return self.cpu / self.wall if self.wall else 0.0

    def count(self, key: str) -> int:
        return int(self.summary["counts"].get(key, 0))


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def timed_report(args: list[str]) -> Run:
    """One ``longterm report --json`` run: wall, CPU (it and its reaped workers), peak RSS of
    the process tree (summed over the processes alive at each sample)."""
    cmd = [sys.executable, "-m", "longterm_sync", "report", "--json", *args]
    peak = [0]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], sum(_rss_kb(p) for p in _tree(proc.pid)))
                done.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if code != 0:
        raise RuntimeError(f"report failed ({code}): {stderr[-2000:]}{stdout[-2000:]}")
    return Run(wall, usage.ru_utime + usage.ru_stime, peak[0] / 1024, json.loads(stdout))


# -- the study as a folder -------------------------------------------------------------------


def _server_date(naive: str) -> str:
    return format_server_datetime(parse_datetime(naive, WARSAW), WARSAW)


def _files(ext: str, posts: list[Any], folder: Path, missing: list[dict[str, Any]]) -> int:
    results: list[dict[str, Any]] = []
    feedback: list[dict[str, Any]] = []
    for post in posts:
        body = {"external_id": ext, **post.body}
        body["date"] = _server_date(body["date"])
        if post.route == "watch-results" and isinstance(body["result"], dict):
            results.append(body)
        elif post.route == "feedback-comments":
            feedback.append(body)
        elif post.route == "missing-videos":
            missing.append(body)
    results.sort(key=lambda r: parse_datetime(r["date"]))
    feedback.sort(key=lambda r: parse_datetime(r["date"]))
    for r in results:  # as download-results rebuilds it: every comment on that video
        video = r["result"].get("video")
        r["result"] = {**r["result"], "user_feedback": [f for f in feedback if f["video"] == video]}
    write_bytes_atomic(folder / f"results_{ext}.json", dump_array(results))
    if feedback:
        write_bytes_atomic(folder / f"results_feedback_{ext}.json", dump_array(feedback))
    return len(results)


def write_study(study: Study, before: Path, after: Path) -> tuple[int, int]:
    """The study as files in ``before``, and with one more nightly day in ``after``."""
    missing: dict[Path, list[dict[str, Any]]] = {before: [], after: []}
    counts = {before: 0, after: 0}
    new_day = study.params.today + timedelta(days=1)
    for p in study.participants:
        posts = list(study.posts(p))
        schedule = (json.dumps(p.payload, ensure_ascii=False, indent=2) + "\n").encode()
        for folder, extra in ((before, []), (after, list(study.day_posts(p, new_day)))):
            folder.mkdir(parents=True, exist_ok=True)
            counts[folder] += _files(p.external_id, posts + extra, folder, missing[folder])
            write_bytes_atomic(folder / f"schedule_{p.external_id}.json", schedule)
    for folder, rows in missing.items():
        write_bytes_atomic(folder / "missing_videos.json", dump_array(rows))
    return counts[before], counts[after]


def seed_cache(folder: Path, site: Path, placeholder: bytes) -> int:
    """Placeholder cache entries under the real keys of every drawable viewing in ``folder``."""
    drawer = plots_drawer(WARSAW)
    cache = FigureCache(site, drawer, workers=1)
    cache.folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for path in sorted(folder.glob("results_*.json")):
        if "feedback" in path.name:
            continue
        for _line, item in iter_items(path):
            result = item.get("result", {})
            if not (result.get("gyroscope_data") and result.get("accelerometer_data", {}).get("z")):
                continue
            key = cache.key(item)
            (cache.folder / f"{key}.png").write_bytes(placeholder)
            (cache.folder / f"{key}.thumb.png").write_bytes(placeholder)
            n += 1
    return n


def subset(folder: Path, out: Path, users: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if path.name == "missing_videos.json" or any(u in path.name for u in users):
            shutil.copyfile(path, out / path.name)


def size_of(folder: Path, pattern: str = "*") -> int:
    return sum(p.stat().st_size for p in folder.rglob(pattern) if p.is_file())


def config_with(workdir: Path, workers: int) -> Path:
    path = workdir / f"workers{workers}.toml"
    path.write_text(
        f'[servers.bench]\nurl = "http://127.0.0.1:9"\n\n[limits]\nplot_processes = {workers}\n'
    )
    return path


def report_args(config: Path, source: Path, site: Path, days: int, until: date) -> list[str]:
    return [
        "--config", str(config), "--server", "bench", "--from", str(source), "--html", str(site),
        "--days", str(days), "--until", until.isoformat(),
    ]  # fmt: skip


def run(args: argparse.Namespace, workdir: Path) -> Iterator[str]:
    params = StudyParams(
        users=args.users, days=args.days, samples=args.samples, seed=7, today=TODAY, orphans=0
    )
    study = Study(params)
    before, after = workdir / "latest_before", workdir / "latest_after"
    t = time.perf_counter()
    n_before, n_after = write_study(study, before, after)
    yield (
        f"study: {args.users} participants x {args.days} days, {n_before} results "
        f"({size_of(before) / MB:.0f} MB of JSON; {args.samples} samples per sensor), then a "
        f"new day: {n_after - n_before} results (written in {time.perf_counter() - t:.0f} s)"
    )
    days = args.days
    until = TODAY
    one, two = config_with(workdir, 1), config_with(workdir, 2)

    # (a) the whole study, no figures
    site_a = workdir / "site_a"
    a = timed_report([*report_args(two, before, site_a, days, until), "--no-figures"])
    pages = size_of(site_a, "*.html")
    yield (
        f"(a) first build, no figures: {a.wall:.1f} s, {a.count('viewings')} viewings "
        f"({a.count('viewings') / a.wall:.0f}/s), {a.count('pages')} pages of "
        f"{pages / MB:.1f} MB, {a.cpu:.1f} s CPU ({a.cores:.2f} cores busy), peak RSS "
        f"{a.rss_mb:.0f} MB"
    )

    # (b) figures per second, one worker then two
    users = [p.external_id for p in study.participants[: args.figure_users]]
    small = workdir / "latest_small"
    subset(before, small, users)
    rates = []
    for workers, config in ((1, one), (2, two)):
        site_b = workdir / f"site_b{workers}"
        b = timed_report(report_args(config, small, site_b, days, until))
        drawn = b.count("figures drawn")
        rates.append(drawn / b.wall)
        mean_pair = size_of(site_b / "figures") / max(1, drawn)
        yield (
            f"(b) first build with figures, {args.figure_users} participants, "
            f"plot_processes={workers}: {b.wall:.1f} s, {drawn} figures, "
            f"{drawn / b.wall:.2f} figures/s ({drawn / b.cpu:.2f} per CPU second), {b.cpu:.0f} s "
            f"CPU ({b.cores:.2f} cores busy), peak RSS "
            f"{b.rss_mb:.0f} MB; a figure and its thumbnail {mean_pair / 1000:.0f} KB"
        )
    yield f"    two workers draw {rates[1] / rates[0]:.2f}x the figures per second of one"

    # (c) nightly: a warm cache of every earlier viewing, then the new day
    site_c = workdir / "site_c"
    if args.draw_all:
        first = timed_report(report_args(two, before, site_c, days, until))
        seeded = first.count("figures drawn")
        yield (
            f"(c0) first build with every figure: {first.wall:.1f} s, {seeded} figures "
            f"({seeded / first.wall:.2f}/s), {first.cores:.2f} cores busy, peak RSS "
            f"{first.rss_mb:.0f} MB"
        )
    else:
        placeholder = next((workdir / "site_b2" / "figures").glob("*.thumb.png")).read_bytes()
        seeded = seed_cache(before, site_c, placeholder)
        warm = timed_report(report_args(two, before, site_c, days, until))
        yield (
            f"(c0) {seeded} earlier figures seeded as placeholders; a build over them: "
            f"{warm.wall:.1f} s, {warm.count('figures drawn')} drawn, "
            f"{warm.count('figures reused')} reused"
        )
    nightly = timed_report(report_args(two, after, site_c, days, until + timedelta(days=1)))
    again = timed_report(report_args(two, after, site_c, days, until + timedelta(days=1)))
    drawn = nightly.count("figures drawn")
    yield (
        f"(c) nightly rebuild after a new day: {nightly.wall:.1f} s (target < 30), "
        f"{nightly.cpu:.1f} s CPU ({nightly.cores:.2f} cores busy), "
        f"{drawn} figures drawn, {nightly.count('figures reused')} reused, "
        f"{nightly.count('figures removed')} removed, peak RSS {nightly.rss_mb:.0f} MB"
    )
    yield (
        f"    the same rebuild with nothing new: {again.wall:.1f} s, {again.cpu:.1f} s CPU "
        f"({again.count('figures drawn')} drawn); nightly / first build without figures: "
        f"{nightly.wall / a.wall:.2f}x"
    )
    figures = nightly.count("figures drawn") + nightly.count("figures reused")
    pair = size_of(workdir / "site_b2" / "figures") / max(
        1, sum(1 for _ in (workdir / "site_b2" / "figures").glob("*.thumb.png"))
    )
    site_mb = (size_of(site_c, "*.html") + figures * pair) / MB
    yield (
        f"site size: {size_of(site_c, '*.html') / MB:.1f} MB of pages + {figures} figures x "
        f"{pair / 1000:.0f} KB = {site_mb:.0f} MB"
    )
    first_estimate = a.wall + seeded / rates[1]
    yield (
        f"first build with every figure at (b)'s rate: about {first_estimate / 60:.0f} min "
        f"({seeded} figures / {rates[1]:.2f} per s + (a)); nightly is "
        f"{first_estimate / nightly.wall:.0f}x faster"
    )
    peak = max(a.rss_mb, nightly.rss_mb, again.rss_mb)
    yield f"peak RSS of any full-study build: {peak:.0f} MB (target < 500)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 participants x 20 days")
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument("--days", type=int, default=None)
    parser.add_argument("--samples", type=int, default=300, help="per sensor and result")
    parser.add_argument("--figure-users", type=int, default=None, help="for (b)")
    parser.add_argument("--draw-all", action="store_true", help="draw every figure for (c)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    args.users = args.users or (20 if args.quick else 100)
    args.days = args.days or (20 if args.quick else 90)
    args.figure_users = args.figure_users or (2 if args.quick else 3)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="longterm-report-bench-"))
    try:
        for line in run(args, workdir):
            print(line, flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
