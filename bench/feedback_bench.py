"""user_feedback benchmark: one request for everyone against one request per participant.

Starts the sandbox with a synthetic study (default 40 participants x 20 days, 20 ms latency
on every GET, as the platform measured in issue 9) and times, in one run, side by side:

(a) *one bare request*: the original ``user_feedback.py``'s one GET of
    ``/api/feedback-comments/``, with stdlib ``urllib`` and ``json`` and nothing else (no
    pandas import, no CSV): the floor, and the baseline of the ratios;
(b) *ours, everyone*: ``longterm user_feedback`` with no selection: one request;
(s) our startup alone (``--version``: the interpreter and the command's imports);
(c) *ours, per participant*: the same participants named in a spreadsheet, which fans out
    one request per participant (what every-participant runs did before issue 9).

Each is the best of ``--repeat`` runs in its own subprocess (startup included, as a user
sees it); the ratios are against (a).

    .venv/bin/python bench/feedback_bench.py            # 40 participants x 20 days
    .venv/bin/python bench/feedback_bench.py --quick    # 10 x 5
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the sandbox launcher lives with the test fixtures


def original(url: str, token: str) -> None:
    """(a), run as a child: one request, parsed with json, as the original script did."""
    request = urllib.request.Request(
        f"{url}/api/feedback-comments/", headers={"Authorization": f"Token {token}"}
    )
    with urllib.request.urlopen(request, timeout=600) as resp:
        rows = json.loads(resp.read())
    print(json.dumps({"comments": len(rows)}))


def best_of(cmd: list[str], repeat: int) -> tuple[float, str]:
    walls, out = [], ""
    for _ in range(repeat):
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        walls.append(time.perf_counter() - started)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:5])} failed: {proc.stderr[-2000:]}")
        out = proc.stdout
    return min(walls), out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    users, days = ("10", "5") if args.quick else ("40", "20")
    from fixtures_sandbox import start_sandbox

    with tempfile.TemporaryDirectory(prefix="feedback-bench.") as tmp:
        work = Path(tmp)
        study = ["--users", users, "--days", days, "--samples", "20", "--video-mb", "1"]
        info = start_sandbox(
            work / "sandbox", [*study, "--latency-ms", str(args.latency_ms)], timeout=1800
        )
        try:
            sheet = work / "users.csv"
            with open(info.study_dir / "users.csv", encoding="utf-8") as fh:
                ids = [row["external_id"] for row in csv.DictReader(fh)]
            header = "external_id,start_date,stop_date\n"
            sheet.write_text(header + "".join(f"{i},,\n" for i in ids))
            ours = [sys.executable, "-m", "longterm_sync", "user_feedback"]
            ours += ["--config", info.config, "--server=sandbox", "--json", "-q"]
            bare = [sys.executable, __file__, "original", info.url, info.token]
            rows = [
                ("(a) one bare request", bare, 1),
                ("(s) ours, startup: --version", [*ours[:4], "--version"], -1),
                ("(b) ours, everyone", [*ours, "--output-dir", str(work / "b")], 0),
                (
                    "(c) ours, per participant",
                    [*ours, "--output-dir", str(work / "c"), f"--excel_time={sheet}"],
                    0,
                ),
            ]
            print(
                f"user_feedback: {len(ids)} participants x {days} days, latency "
                f"{args.latency_ms} ms, best of {args.repeat}"
            )
            print(f"{'':30} {'wall s':>8} {'requests':>9} {'x (a)':>7}")
            baseline = 0.0
            for name, cmd, requests in rows:
                wall, out = best_of(cmd, args.repeat)
                if requests == 0:
                    requests = json.loads(out)["details"]["requests"]
                requests = max(requests, 0)
                baseline = baseline or wall
                print(f"{name:30} {wall:8.2f} {requests:9d} {wall / baseline:7.2f}")
        finally:
            info.stop()
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "original":
        original(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main())
