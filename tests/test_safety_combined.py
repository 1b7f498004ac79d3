"""Issue 8, point 6: a participant that fails in this run keeps its place in the combined
files, with the content of its kept per-participant file; the summary says which participants
are stale and since when, and which are missing."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import orjson

from clitools import Result, run_cli
from fake_platform import FakeParticipant, FakePlatform

A, B, C = "a1" * 32, "b2" * 32, "c3" * 32


def _run(fake: FakePlatform, out: Path) -> Result:
    result = run_cli(
        ["download-results", *fake.args(), "--output-dir", str(out), "--json"], cwd=out
    )
    assert "Traceback" not in result.err, result.err
    return result


def _ids(path: Path) -> list[str]:
    return [item["external_id"] for item in orjson.loads(path.read_bytes())]


def test_failed_participants_keep_their_place(tmp_path: Path) -> None:
    a, b, c = FakeParticipant(A), FakeParticipant(B, days=3), FakeParticipant(C, days=2)
    with FakePlatform([a, b]) as fake:
        assert _run(fake, tmp_path).code == 0
        names = ("results_all.json", "results_feedback_all.json")
        before = {n: (tmp_path / n).read_bytes() for n in names}
        kept = tmp_path / f"results_{B}.json"
        os.utime(kept, (1_700_000_000, 1_700_000_000))
        b.mode = "invalid"  # a bad answer this time
        fake.participants.append(c)
        c.mode = "invalid"  # never fetched before: nothing to keep
        second = _run(fake, tmp_path)
    assert second.code == 1
    for name, old in before.items():
        assert (tmp_path / name).read_bytes() == old, name  # A fresh (same data), B kept
    assert _ids(tmp_path / "results_all.json") == [A] * 5 + [B] * 3
    summary = orjson.loads(second.out)
    stale = summary["details"]["stale"]
    assert stale[f"results_{B}.json"] == datetime.fromtimestamp(1_700_000_000).astimezone(
    ).isoformat(timespec="seconds")  # fmt: skip
    assert summary["details"]["missing"] == [C]
    text = "\n".join(summary["warnings"])
    assert f"{B[:12]}" in text and "stale" in text and f"{C[:12]}" in text and "missing" in text
