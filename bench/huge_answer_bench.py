"""Peak memory of download-results against a server that sends one huge answer (issue 8).

A local aiohttp server holds one participant whose 31 days of results weigh ``--mb`` MB, all
in one window's answer. download-results runs twice as a subprocess: with the default
``[limits] max_response_mb`` (64: the window is refused as it passes the cap, split in two and
refetched until each part fits) and with the cap out of the way (the whole answer taken, as
before). Printed: each run's peak RSS (``wait4``), time and output size, and the ratio.

    python bench/huge_answer_bench.py [--mb 300] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import threading
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web

from peak import run_measured

TZ = ZoneInfo("Europe/Warsaw")
TOKEN = "2" * 40
EXT = "be" * 32
FIRST = datetime(2024, 3, 1, tzinfo=TZ)
DAYS = 31
PER_DAY = 4  # results a day


def build(mb: int) -> list[dict[str, object]]:
    pad = "x" * int(mb * 1_000_000 / (DAYS * PER_DAY))
    return [
        {
            "date": (FIRST + timedelta(days=d, hours=8 + k)).isoformat(),
            "external_id": EXT,
            "result": {"video": f"v{d}.mp4", "user_feedback": None, "pad": pad},
        }
        for d in range(DAYS)
        for k in range(PER_DAY)
    ]


def serve(items: list[dict[str, object]]) -> str:
    """Start the server in a thread; return its URL."""
    schedule = {
        "external_id": EXT,
        "schedule": [
            {
                "start": (FIRST + timedelta(days=d)).strftime("%Y-%m-%dT00:00:00"),
                "end": (FIRST + timedelta(days=d)).strftime("%Y-%m-%dT23:59:59"),
            }
            for d in range(DAYS)
        ],
    }
    dates = [datetime.fromisoformat(str(i["date"])) for i in items]
    blobs = [orjson.dumps(i) for i in items]

    def bound(text: str | None) -> datetime | None:
        if not text:
            return None
        moment = datetime.fromisoformat(text.replace(" ", "+"))
        return moment if moment.tzinfo else moment.replace(tzinfo=TZ)

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path == "/api/users/":
            body = orjson.dumps([{"external_id": EXT}])
        elif request.path == "/api/users/schedules/":
            body = orjson.dumps([{"id": 1, "schedule": schedule}])
        elif request.path == "/api/watch-results/":
            lo, hi = bound(request.query.get("start_date")), bound(request.query.get("stop_date"))
            chosen = [
                b
                for b, d in zip(blobs, dates, strict=True)
                if (lo is None or d > lo) and (hi is None or d < hi)
            ]
            body = b"[" + b",".join(chosen) + b"]"
        else:
            body = b"[]"
        return web.Response(body=body, content_type="application/json")

    ready = threading.Event()
    url: list[str] = []

    def run() -> None:
        loop = asyncio.new_event_loop()

        async def start() -> None:
            app = web.Application()
            app.router.add_route("GET", "/{tail:.*}", handle)
            runner = web.AppRunner(app, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            assert site._server is not None
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
            url.append(f"http://127.0.0.1:{port}")

        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    ready.wait(30)
    return url[0]


def measure(url: str, folder: Path, cap: int) -> tuple[float, float, int]:
    """(peak RSS MB, seconds, bytes written) of one download-results run."""
    out = folder / f"cap{cap}"
    out.mkdir()
    config = folder / f"cap{cap}.toml"
    config.write_text(f"[limits]\nmax_response_mb = {cap}\nread_timeout = 3600.0\n")
    cmd = [sys.executable, "-m", "longterm_sync", "download-results", f"--server={url}",
           f"--token={TOKEN}", "--config", str(config), "--output-dir", str(out), "-q"]  # fmt: skip
    code, rss, elapsed = run_measured(cmd, cwd=folder, stdout=subprocess.DEVNULL)
    if code != 0:
        raise SystemExit(f"download-results failed with cap {cap}")
    size = (out / f"results_{EXT}.json").stat().st_size
    return rss, elapsed, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=300, help="size of the one answer (MB)")
    parser.add_argument("--quick", action="store_true", help="a 100 MB answer")
    args = parser.parse_args(argv)
    mb = 100 if args.quick else args.mb
    url = serve(build(mb))
    print(f"huge answer: one window of {mb} MB (31 days x {PER_DAY} results), one participant")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        capped = measure(url, folder, 64)
        whole = measure(url, folder, 100_000)
    print(f"{'run':<28}{'peak RSS MB':>12}{'seconds':>10}{'file MB':>10}")
    for name, (rss, secs, size) in (
        ("max_response_mb = 64", capped),
        ("uncapped (whole answer)", whole),
    ):
        print(f"{name:<28}{rss:>12.0f}{secs:>10.1f}{size / 1e6:>10.1f}")
    print(f"peak RSS capped / uncapped: {capped[0] / whole[0]:.2f}")
    if capped[2] != whole[2]:
        print("warning: the two runs wrote files of different sizes")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
