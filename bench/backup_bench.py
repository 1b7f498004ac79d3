"""Backup benchmark: ``longterm backup`` nightly runs against the original's nightly cost.

Starts the sandbox with a synthetic study (default 50 participants x 60 days, about 110 KB
per result, 20 ms latency on every GET) and measures in one run:

(a) a first, full backup (``longterm backup --full``) into an empty folder;
(b) a nightly backup after the sandbox gained one new day for every participant;
(c) the original's nightly cost on the same data: a full sequential re-download of every
    result, feedback and schedule (bench/rest_bench.py's old-style client);

then ``--nights`` more nights (a day added, a nightly run) for the store's growth, and a
compression table (zstd levels and zlib on the study's result records). Each backup runs as
its own subprocess, so its peak RSS is its own. Targets (issue 10): (b) at least 10x faster
than (c); bytes fetched by (b) at most 2x those of the new day plus the lookback window;
storage added by (b) at most 1.5x the compressed size of the new records; after the nights,
the store at most 1.2x one compressed full copy; peak RSS under 300 MB.

    .venv/bin/python bench/backup_bench.py            # the issue's sizes
    .venv/bin/python bench/backup_bench.py --quick    # 10 x 10, 3 nights
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import sys
import tempfile
import time
import zlib
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # the sandbox launcher lives with the fixtures

import rest_bench  # noqa: E402
from rest_bench import MB, timed_child  # noqa: E402

LOOKBACK_DAYS = 14
TODAY = "2024-03-15"


def backup_run(config: Path, dest: Path, *flags: str) -> tuple[float, float, dict[str, Any]]:
    cmd = [sys.executable, "-m", "longterm_sync", "backup", "--config", str(config)]
    cmd += ["--server", "sandbox", "--dest_location", str(dest), "--json", "-q", *flags]
    wall, rss, out = timed_child(cmd)
    return wall, rss, json.loads(out)


def store_bytes(dest: Path) -> int:
    """The store's size on disk once its WAL is checkpointed into the database file."""
    path = dest / "text_files" / "store.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def lines_by_date(latest: Path) -> dict[str, list[tuple[datetime, bytes]]]:
    """Per participant file of latest/: each item's date and its line."""
    out: dict[str, list[tuple[datetime, bytes]]] = {}
    for path in latest.glob("results_*.json"):
        if path.name.endswith("_all.json"):
            continue
        rows = []
        for line in path.read_bytes().split(b"\n")[1:-2]:
            text = line.rstrip(b",")
            item = json.loads(text)
            rows.append((datetime.fromisoformat(item["date"]), text))
        out[path.name] = rows
    return out


def add_day(info: Any, params: dict[str, Any], day: date) -> float:
    from longterm_sync.sandbox.fill import add_day as post_day
    from longterm_sync.sandbox.synth import Study, StudyParams

    started = time.perf_counter()
    asyncio.run(post_day(info.url, Study(StudyParams(**params)), day))
    return time.perf_counter() - started


def compression_table(records: list[bytes]) -> list[str]:
    import zstandard

    raw = sum(map(len, records))
    lines = [f"compression of {len(records)} result records ({raw / MB:.1f} MB), one by one:"]
    codecs: list[tuple[str, Any]] = [
        (f"zstd -{level}", zstandard.ZstdCompressor(level=level).compress) for level in (1, 3, 9)
    ]
    codecs += [(f"zlib -{level}", lambda b, lv=level: zlib.compress(b, lv)) for level in (6, 9)]
    for name, fn in codecs:
        started = time.perf_counter()
        size = sum(len(fn(r)) for r in records)
        wall = time.perf_counter() - started
        lines.append(f"  {name:8} ratio {raw / size:5.2f}  {raw / MB / wall:7.1f} MB/s")
    return lines


def compressed(parts: list[bytes]) -> int:
    import zstandard

    from longterm_sync.backup.codec import LEVEL

    c = zstandard.ZstdCompressor(level=LEVEL)
    return sum(len(c.compress(p)) for p in parts)


def run(args: argparse.Namespace, workdir: Path) -> list[str]:
    from fixtures_sandbox import start_sandbox

    params = {
        "users": args.users, "days": args.days, "samples": args.samples, "video_mb": 0.05,
        "seed": 5, "today": date.fromisoformat(TODAY), "orphans": 1, "poison": 0,
    }  # fmt: skip
    study = ["--users", str(args.users), "--days", str(args.days), "--samples", str(args.samples)]
    study += ["--video-mb", "0.05", "--seed", "5", "--today", TODAY]
    t0 = time.perf_counter()
    info = start_sandbox(workdir / "sandbox", [*study, "--latency-ms", str(args.latency_ms)],
                         timeout=3600)  # fmt: skip
    fill_s = time.perf_counter() - t0
    config = rest_bench.write_config(info, workdir, args.concurrency, 31)
    dest = workdir / "backup"
    lines: list[str] = []
    try:
        a_wall, a_rss, a = backup_run(config, dest, "--full")
        a_store = store_bytes(dest)
        before = lines_by_date(dest / "text_files" / "latest")
        cutoffs = {
            name: max(d for d, _ in rows).replace(microsecond=0) - timedelta(days=LOOKBACK_DAYS)
            for name, rows in before.items()
            if rows
        }
        old_keys = {text for rows in before.values() for _, text in rows}
        day = date.fromisoformat(TODAY) + timedelta(days=1)
        add_day(info, params, day)
        b_wall, b_rss, b = backup_run(config, dest)
        b_store = store_bytes(dest)
        after = lines_by_date(dest / "text_files" / "latest")
        window = sum(
            len(text)
            for name, rows in after.items()
            for d, text in rows
            if name not in cutoffs or d > cutoffs[name]
        )
        new_lines = [text for rows in after.values() for _, text in rows if text not in old_keys]
        new_compressed = compressed(new_lines)
        old = rest_bench.measure_old(info, workdir / "out-old")
        nights = []
        for n in range(args.nights):
            add_day(info, params, day + timedelta(days=n + 1))
            wall, rss, s = backup_run(config, dest)
            nights.append((wall, rss, s))
        final_store = store_bytes(dest)
        latest = dest / "text_files" / "latest"
        every = [text for rows in lines_by_date(latest).values() for _, text in rows]
        feedback_and_schedules = [
            p.read_bytes() for p in latest.glob("*.json") if p.name.startswith("schedule_")
        ]
        one_copy = compressed(every + feedback_and_schedules)
        import zstandard

        from longterm_sync.backup.codec import LEVEL

        whole = sum(
            len(zstandard.ZstdCompressor(level=LEVEL).compress(p.read_bytes()))
            for p in latest.glob("*.json")
            if not p.name.endswith("_all.json")
        )
        comp = compression_table(every[: args.sample_records])
    finally:
        info.stop()
    lines.append(
        f"backup benchmark: {args.users} participants x {args.days} days, {args.samples} "
        f"samples/result, latency {args.latency_ms} ms, rest_concurrency {args.concurrency} "
        f"(study filled in {fill_s:.0f} s)"
    )
    head = f"{'':40} {'wall s':>8} {'MB fetched':>11} {'records +':>10} {'MB stored':>10}"
    lines.append(head + f" {'peak RSS MB':>12}")

    def row(name: str, wall: float, fetched: int, added: Any, stored: Any, rss: float) -> str:
        return (f"{name:40} {wall:8.2f} {fetched / MB:11.1f} {added!s:>10} {stored!s:>10} "
                f"{rss:12.0f}")  # fmt: skip

    added_a, added_b = a["counts"]["records added"], b["counts"]["records added"]
    lines.append(row("(a) first backup (full)", a_wall, a["bytes"], added_a, f"{a_store / MB:.1f}",
                     a_rss))  # fmt: skip
    grew_mb = f"{(b_store - a_store) / MB:.2f}"
    lines.append(row("(b) nightly after a new day", b_wall, b["bytes"], added_b, grew_mb, b_rss))
    lines.append(row("(c) original: sequential re-download", old.wall, old.bytes, "-", "-",
                     old.rss_mb))  # fmt: skip
    for n, (wall, rss, s) in enumerate(nights, 1):
        stored = f"{s['details']['bytes_stored'] / MB:.2f}"
        lines.append(row(f"    night {n + 1}", wall, s["bytes"], s["counts"]["records added"],
                         stored, rss))  # fmt: skip
    speed = old.wall / b_wall
    lines.append(f"c/b time = {speed:.1f}x  (target >= 10: {'met' if speed >= 10 else 'NOT met'})")
    ratio = b["bytes"] / window if window else float("inf")
    lines.append(
        f"(b) fetched {b['bytes'] / MB:.1f} MB; the new day plus the {LOOKBACK_DAYS}-day "
        f"lookback hold {window / MB:.1f} MB of results: {ratio:.2f}x "
        f"(target <= 2: {'met' if ratio <= 2 else 'NOT met'})"
    )
    grown = (b_store - a_store) / new_compressed if new_compressed else float("inf")
    lines.append(
        f"(b) grew the store by {(b_store - a_store) / MB:.2f} MB (snapshot's own count "
        f"{b['details']['bytes_stored'] / MB:.2f} MB); the {len(new_lines)} new results "
        f"compressed one by one are {new_compressed / MB:.2f} MB: {grown:.2f}x "
        f"(target <= 1.5: {'met' if grown <= 1.5 else 'NOT met'})"
    )
    nights_n = 1 + len(nights)
    per_record = final_store / one_copy
    per_file = final_store / whole
    lines.append(
        f"after {nights_n} nightly runs the store is {final_store / MB:.1f} MB; one compressed "
        f"copy of the current data is {one_copy / MB:.1f} MB record by record "
        f"({per_record:.2f}x, target <= 1.2: {'met' if per_record <= 1.2 else 'NOT met'}), "
        f"{whole / MB:.1f} MB file by file ({per_file:.2f}x)"
    )
    peak = max([a_rss, b_rss] + [r for _, r, _ in nights])
    lines.append(f"peak RSS of any backup run: {peak:.0f} MB (target < 300: "
                 f"{'met' if peak < 300 else 'NOT met'})")  # fmt: skip
    lines.extend(comp)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 x 10 study, 3 nights")
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument("--days", type=int, default=None)
    parser.add_argument("--samples", type=int, default=800, help="per result (800: ~110 KB)")
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=8, help="[limits] rest_concurrency")
    parser.add_argument("--nights", type=int, default=None, help="nights after (b)")
    parser.add_argument("--sample-records", type=int, default=300)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    args.users = args.users or (10 if args.quick else 50)
    args.days = args.days or (10 if args.quick else 60)
    args.nights = args.nights if args.nights is not None else (2 if args.quick else 9)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="longterm-backup-bench-"))
    try:
        lines = run(args, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
