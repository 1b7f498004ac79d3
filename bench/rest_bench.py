"""REST benchmark: ``longterm download-results`` against the old way and against the floor.

Starts the sandbox platform with a synthetic study (default 40 participants x 20 days, about
250 KB per result, 20 ms latency on every GET) and measures, in one run, side by side:

(a) *old*: a sequential baseline that requests the way the original scripts did: one
    request at a time, a new connection each, results then feedback for each participant,
    stdlib ``json``, files indented by 4, the combined lists built in memory;
(b) *floor*: the same requests (c) makes, fired over N parallel connections with the bodies
    read and discarded: what the server and the network allow at best;
(c) *ours*: ``longterm download-results`` itself.

Each runs as its own subprocess, so its peak RSS (``ru_maxrss`` from ``wait4``, started through
bench/peak.py) is its own.
Then a memory run: one participant x 730 days (about 180 MB of JSON) through (c), whose peak
RSS must stay under 300 MB however long the study.

    .venv/bin/python bench/rest_bench.py            # the issue's sizes (a few minutes)
    .venv/bin/python bench/rest_bench.py --quick    # 10 x 10, memory run 1 x 120 days
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the sandbox launcher lives with the test fixtures
sys.path.insert(0, str(ROOT / "bench"))

from peak import run_measured  # noqa: E402

MB = 1_000_000


@dataclass
class Measure:
    name: str
    wall: float
    requests: int
    bytes: int
    rss_mb: float
    extra: dict[str, Any]

    @property
    def rps(self) -> float:
        return self.requests / self.wall if self.wall else 0.0

    @property
    def mbps(self) -> float:
        return self.bytes / MB / self.wall if self.wall else 0.0


# -- (a) the old scripts' way (run as a subprocess: `rest_bench.py old URL TOKEN OUT`) -------


def _old_get(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
    with urllib.request.urlopen(request, timeout=600) as resp:  # a new connection each time
        body = resp.read()
    _old_get.bytes += len(body)  # type: ignore[attr-defined]
    _old_get.requests += 1  # type: ignore[attr-defined]
    return json.loads(body)


def old_worker(url: str, token: str, out: Path) -> dict[str, Any]:
    _old_get.bytes = 0  # type: ignore[attr-defined]
    _old_get.requests = 0  # type: ignore[attr-defined]
    users = _old_get(f"{url}/api/users/", token)
    rows = _old_get(f"{url}/api/users/schedules/", token)
    with_schedule = {r["schedule"].get("external_id") for r in rows if r.get("schedule")}
    ids = [u["external_id"] for u in users if u["external_id"] in with_schedule]
    all_results: list[Any] = []
    all_feedback: list[Any] = []
    for ext in ids:
        query = urllib.parse.urlencode({"external_id": ext})
        results = _old_get(f"{url}/api/watch-results/?{query}", token)
        feedback = _old_get(f"{url}/api/feedback-comments/?{query}", token)
        for result in results:
            video = result["result"].get("video")
            result["result"]["user_feedback"] = [f for f in feedback if f["video"] == video]
        results.sort(key=lambda r: r["date"])
        feedback.sort(key=lambda r: r["date"])
        for name, items in (
            (f"results_{ext}.json", results),
            (f"results_feedback_{ext}.json", feedback),
        ):
            with open(out / name, "w", encoding="utf-8") as fh:
                json.dump(items, fh, indent=4, ensure_ascii=False)
        all_results.extend(results)
        all_feedback.extend(feedback)
    for name, items in (
        ("results_all.json", all_results),
        ("results_feedback_all.json", all_feedback),
    ):
        with open(out / name, "w", encoding="utf-8") as fh:
            json.dump(items, fh, indent=4, ensure_ascii=False)
    return {
        "requests": _old_get.requests,  # type: ignore[attr-defined]
        "bytes": _old_get.bytes,  # type: ignore[attr-defined]
        "results": len(all_results),
    }


# -- (b) the floor (subprocess: `rest_bench.py floor URL TOKEN CONCURRENCY WINDOW_DAYS`) -----


async def floor_worker(url: str, token: str, concurrency: int, window_days: int) -> dict[str, Any]:
    """The requests (c) makes (same window plan), N at a time, bodies discarded."""
    import aiohttp
    from yarl import URL

    from longterm_sync.api import encode_query
    from longterm_sync.timeutil import WARSAW, format_server_datetime
    from longterm_sync.windows import participant_windows

    counts = {"requests": 0, "bytes": 0}
    headers = {"Authorization": f"Token {token}"}
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=True)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def fetch(path: str, params: dict[str, str] | None = None, keep: bool = False) -> Any:
            target = f"{url}{path}" + (f"?{encode_query(params)}" if params else "")
            async with session.get(URL(target, encoded=True)) as resp:
                if keep:
                    body = await resp.read()
                    size = len(body)
                else:
                    size = 0
                    async for chunk in resp.content.iter_chunked(1 << 20):
                        size += len(chunk)
                assert resp.status == 200, (resp.status, target)
            counts["requests"] += 1
            counts["bytes"] += size
            return json.loads(body) if keep else None

        users = await fetch("/api/users/", keep=True)
        rows = await fetch("/api/users/schedules/", keep=True)
        schedules = {
            r["schedule"]["external_id"]: r["schedule"]
            for r in rows
            if r.get("schedule") and r["schedule"].get("external_id")
        }
        now = datetime.now(WARSAW)
        jobs = []
        for user in users:
            ext = user["external_id"]
            if ext not in schedules:
                continue
            for w in participant_windows(
                None, None, days=window_days, schedule=schedules[ext], tz=WARSAW, now=now
            ):
                params = {"external_id": ext}
                if w.start is not None:
                    params["start_date"] = format_server_datetime(w.start)
                if w.stop is not None:
                    params["stop_date"] = format_server_datetime(w.stop)
                jobs.append(fetch("/api/feedback-comments/", params))
                jobs.append(fetch("/api/watch-results/", params))
        await asyncio.gather(*jobs)
    return counts


# -- (d) the disk floor (subprocess: `rest_bench.py disk FOLDER NBYTES`) ---------------------


def disk_worker(folder: Path, nbytes: int) -> dict[str, Any]:
    """Write ``nbytes`` to each of two files as durably as (c) does: (c) writes every byte
    twice (per-participant files and results_all.json), syncing as it goes."""
    from longterm_sync.jsonstream import SYNC_EVERY

    block = os.urandom(MB)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("a.bin", "b.bin"):
        path = folder / name
        with open(path, "wb") as fh:
            done = synced = 0
            while done < nbytes:
                done += fh.write(block[: min(MB, nbytes - done)])
                if done - synced >= SYNC_EVERY:
                    fh.flush()
                    os.fdatasync(fh.fileno())
                    synced = done
            fh.flush()
            os.fsync(fh.fileno())
        path.unlink()
    return {"requests": 0, "bytes": 2 * nbytes}


# -- orchestration --------------------------------------------------------------------------


def timed_child(cmd: list[str], *, cwd: Path | None = None) -> tuple[float, float, str]:
    """Run ``cmd``; wall seconds, its own peak RSS in MB (bench/peak.py), its stdout."""
    with tempfile.TemporaryFile() as out_fh, tempfile.TemporaryFile() as err_fh:
        code, rss, wall = run_measured(cmd, cwd=cwd, stdout=out_fh, stderr=err_fh)
        out_fh.seek(0)
        err_fh.seek(0)
        out, err = out_fh.read().decode(), err_fh.read().decode()
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed ({code}): {err[-2000:]}")
    return wall, rss, out


def measure_old(info: Any, out: Path) -> Measure:
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, __file__, "old", info.url, info.token, str(out)]
    wall, rss, stdout = timed_child(cmd)
    data = json.loads(stdout)
    return Measure("(a) old-style sequential", wall, data["requests"], data["bytes"], rss, data)


def measure_floor(info: Any, concurrency: int, window_days: int) -> Measure:
    cmd = [
        sys.executable,
        __file__,
        "floor",
        info.url,
        info.token,
        str(concurrency),
        str(window_days),
    ]
    wall, rss, stdout = timed_child(cmd)
    data = json.loads(stdout)
    return Measure("(b) floor: parallel, discard", wall, data["requests"], data["bytes"], rss, data)


def measure_disk(folder: Path, nbytes: int) -> Measure:
    cmd = [sys.executable, __file__, "disk", str(folder), str(nbytes)]
    wall, rss, stdout = timed_child(cmd)
    data = json.loads(stdout)
    return Measure("(d) disk floor: write x2, fsync", wall, 0, data["bytes"], rss, data)


def measure_both(info: Any, concurrency: int, window_days: int, folder: Path, nbytes: int) -> float:
    """(b) and (d) at the same time: the floor of a run that downloads and writes durably on
    the same cores (on this VM the kernel's writes cost CPU, as the server does)."""
    floor = [sys.executable, __file__, "floor", info.url, info.token]
    floor += [str(concurrency), str(window_days)]
    disk = [sys.executable, __file__, "disk", str(folder), str(nbytes)]
    started = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL) for cmd in (floor, disk)]
    if any(proc.wait() != 0 for proc in procs):
        raise RuntimeError("the (b)+(d) floor failed")
    return time.perf_counter() - started


def measure_ours(config: Path, out: Path) -> Measure:
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "longterm_sync", "download-results", "--config", str(config)]
    cmd += ["--server", "sandbox", "--output-dir", str(out), "--json", "-q"]
    wall, rss, stdout = timed_child(cmd)
    data = json.loads(stdout)
    d = data["details"]
    extra = {"results": data["counts"].get("results", 0), "windows": d["windows"]}
    return Measure("(c) longterm download-results", wall, d["requests"], data["bytes"], rss, extra)


def write_config(info: Any, folder: Path, concurrency: int, window_days: int) -> Path:
    text = Path(info.config).read_text(encoding="utf-8")
    path = folder / "bench-config.toml"
    path.write_text(
        text + f"\n[limits]\nrest_concurrency = {concurrency}\nwindow_days = {window_days}\n",
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


def table(rows: list[Measure]) -> list[str]:
    head = f"{'':32} {'wall s':>8} {'requests':>9} {'req/s':>8} {'MB':>8} {'MB/s':>8}"
    head += f" {'peak RSS MB':>12}"
    lines = [head]
    for m in rows:
        lines.append(
            f"{m.name:32} {m.wall:8.2f} {m.requests:9d} {m.rps:8.1f} {m.bytes / MB:8.1f} "
            f"{m.mbps:8.1f} {m.rss_mb:12.0f}"
        )
    return lines


def start(folder: Path, *flags: str) -> Any:
    from fixtures_sandbox import start_sandbox

    return start_sandbox(folder, flags, timeout=1800)


def run_rest_bench(
    *,
    users: int,
    days: int,
    samples: int,
    latency_ms: int,
    concurrency: int,
    window_days: int,
    repeats: int,
    memory_days: int,
    workdir: Path,
    skip_old: bool = False,
) -> list[str]:
    """Run every measurement; return the report's lines."""
    lines: list[str] = []
    study = ["--users", str(users), "--days", str(days), "--samples", str(samples)]
    study += ["--video-mb", "0", "--orphans", "0", "--seed", "3"]
    t0 = time.perf_counter()
    info = start(workdir / "sandbox", *study, "--latency-ms", str(latency_ms))
    fill_s = time.perf_counter() - t0
    try:
        config = write_config(info, workdir, concurrency, window_days)
        measure_floor(info, concurrency, window_days)  # warm-up: server caches, page cache
        old = None if skip_old else measure_old(info, workdir / "out-old")
        floors, ours, disks, boths = [], [], [], []
        for _ in range(repeats):
            floors.append(measure_floor(info, concurrency, window_days))
            ours.append(measure_ours(config, workdir / "out-ours"))
            disks.append(measure_disk(workdir / "out-disk", ours[-1].bytes))
            nbytes = ours[-1].bytes
            boths.append(measure_both(info, concurrency, window_days, workdir / "out-disk", nbytes))
        floor = min(floors, key=lambda m: m.wall)
        mine = min(ours, key=lambda m: m.wall)
        disk = min(disks, key=lambda m: m.wall)
    finally:
        info.stop()
    lines.append(
        f"REST benchmark: {users} participants x {days} days, {samples} samples/result, "
        f"latency {latency_ms} ms, {concurrency} connections, windows of {window_days} days "
        f"(study filled in {fill_s:.0f} s; best of {repeats} for (b) and (c); "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end)"
    )
    lines.extend(table([m for m in (old, floor, mine, disk) if m is not None]))
    ratio_cb = mine.wall / floor.wall
    lines.append(f"c/b = {ratio_cb:.2f}  (target <= 1.10)")
    both = min(boths)
    lines.append(
        f"(b) and (d) run at the same time: {both:.2f} s; c/(b+d at once) = "
        f"{mine.wall / both:.2f}  (the floor once the files must reach the disk: (c) writes "
        f"every byte twice and fsyncs it, (b) writes nothing)"
    )
    if old is not None:
        lines.append(f"a/c = {old.wall / mine.wall:.2f}  (target >= 3)")
        if old.extra["results"] != mine.extra["results"]:
            lines.append(
                f"WARNING: (a) saw {old.extra['results']} results, (c) {mine.extra['results']}"
            )
    lines.append(
        "all runs of (b): "
        + ", ".join(f"{m.wall:.2f}" for m in floors)
        + " s; of (c): "
        + ", ".join(f"{m.wall:.2f}" for m in ours)
        + " s; of (d): "
        + ", ".join(f"{m.wall:.2f}" for m in disks)
        + " s"
    )
    if memory_days:
        lines.extend(memory_run(memory_days, samples, concurrency, window_days, workdir))
    return lines


def memory_run(
    days: int, samples: int, concurrency: int, window_days: int, workdir: Path
) -> list[str]:
    study = ["--users", "1", "--days", str(days), "--samples", str(samples)]
    study += ["--video-mb", "0", "--orphans", "0", "--seed", "4"]
    info = start(workdir / "sandbox-memory", *study)
    try:
        config = write_config(info, workdir, concurrency, window_days)
        mine = measure_ours(config, workdir / "out-memory")
    finally:
        info.stop()
    files = (workdir / "out-memory").glob("results_*.json")
    size = max((p.stat().st_size for p in files if "feedback" not in p.name), default=0)
    verdict = "ok" if mine.rss_mb <= 300 else "OVER"
    return [
        f"memory: 1 participant x {days} days, {mine.bytes / MB:.0f} MB of JSON received, "
        f"{size / MB:.0f} MB results file, {mine.extra['windows']} windows: "
        f"(c) peak RSS {mine.rss_mb:.0f} MB in {mine.wall:.1f} s (target <= 300 MB: {verdict})"
    ]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["old"]:
        print(json.dumps(old_worker(argv[1], argv[2], Path(argv[3]))))
        return 0
    if argv[:1] == ["disk"]:
        print(json.dumps(disk_worker(Path(argv[1]), int(argv[2]))))
        return 0
    if argv[:1] == ["floor"]:
        from longterm_sync.cli.common import run_async

        print(json.dumps(run_async(floor_worker(argv[1], argv[2], int(argv[3]), int(argv[4])))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="10 x 10 study, 1 x 120 days memory run"
    )
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument("--days", type=int, default=None)
    parser.add_argument("--samples", type=int, default=1800, help="per result (1800: ~250 KB)")
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=8, help="[limits] rest_concurrency")
    parser.add_argument("--window-days", type=int, default=31)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--memory-days", type=int, default=None, help="0 skips the memory run")
    parser.add_argument("--skip-old", action="store_true", help="do not run (a)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    users = args.users or (10 if args.quick else 40)
    days = args.days or (10 if args.quick else 20)
    memory_days = args.memory_days if args.memory_days is not None else (120 if args.quick else 730)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="longterm-rest-bench-"))
    try:
        lines = run_rest_bench(
            users=users,
            days=days,
            samples=args.samples,
            latency_ms=args.latency_ms,
            concurrency=args.concurrency,
            window_days=args.window_days,
            repeats=args.repeats,
            memory_days=memory_days,
            workdir=workdir,
            skip_old=args.skip_old,
        )
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
