"""Issue 8, point 7: bounded time and memory against a bad server: answers over
max_response_mb are split down to one day, a silent server costs idle_timeout, and a TLS
error is one line, not retried, naming the URL and suggesting http://."""

from __future__ import annotations

from pathlib import Path

import orjson

from clitools import Result, run_cli
from fake_platform import FakeParticipant, FakePlatform

A, B = "aa" * 32, "bb" * 32


def _config(folder: Path, **limits: float) -> Path:
    path = folder / "limits.toml"
    path.write_text("[limits]\n" + "".join(f"{k} = {v!r}\n" for k, v in limits.items()))
    return path


def _run(fake: FakePlatform, out: Path, config: Path | None, *flags: str) -> Result:
    out.mkdir(exist_ok=True)
    extra = ["--config", str(config)] if config else []
    result = run_cli(
        ["download-results", *fake.args(), *extra, "--output-dir", str(out), *flags],
        cwd=out,
        timeout=120,
    )
    assert "Traceback" not in result.err, result.err
    return result


def test_an_answer_over_the_cap_is_fetched_in_smaller_windows(tmp_path: Path) -> None:
    # ten results of 300 kB each: 3 MB for the whole schedule, 1 MB allowed per answer
    people = [FakeParticipant(A, days=10, pad_bytes=300_000), FakeParticipant(B, days=2)]
    with FakePlatform(people) as fake:
        whole = _run(fake, tmp_path / "whole", None)
        asked = len(fake.requests)
        capped = _run(fake, tmp_path / "capped", _config(tmp_path, max_response_mb=1))
        split_requests = len(fake.requests) - asked
    assert whole.code == 0 and capped.code == 0, capped.out + capped.err
    for name in (f"results_{A}.json", "results_all.json", f"results_feedback_{A}.json"):
        assert (tmp_path / "capped" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    assert len(orjson.loads((tmp_path / "capped" / f"results_{A}.json").read_bytes())) == 10
    assert split_requests > asked  # it did split


def test_a_day_over_the_cap_fails_that_participant_only(tmp_path: Path) -> None:
    people = [FakeParticipant(A, days=2, pad_bytes=1_500_000), FakeParticipant(B, days=2)]
    with FakePlatform(people) as fake:
        result = _run(fake, tmp_path / "out", _config(tmp_path, max_response_mb=1))
    assert result.code == 1
    (line,) = [ln for ln in result.out.splitlines() if ln.startswith(f"  participant {A}")]
    assert "max_response_mb" in line and "even for one day" in line
    assert (tmp_path / "out" / f"results_{B}.json").exists()


def test_a_silent_server_costs_the_idle_timeout(tmp_path: Path) -> None:
    people = [FakeParticipant(A, mode="silent"), FakeParticipant(B)]
    config = _config(tmp_path, idle_timeout=1.0, retries=0)
    with FakePlatform(people) as fake:
        result = _run(fake, tmp_path / "out", config)
    assert result.code == 1, result.out + result.err
    (line,) = [ln for ln in result.out.splitlines() if ln.startswith(f"  participant {A}")]
    assert "timed out" in line
    assert (tmp_path / "out" / f"results_{B}.json").exists()


def test_tls_to_a_plain_http_server_is_one_line(tmp_path: Path) -> None:
    with FakePlatform([FakeParticipant(A)]) as fake:
        https = fake.url.replace("http://", "https://")
        result = run_cli(
            ["download-results", f"--server={https}", f"--token={'1' * 40}",
             "--output-dir", str(tmp_path)],
            cwd=tmp_path,
        )  # fmt: skip
    assert result.code == 3, result.err
    line = result.one_line_error()
    assert https in line and f"answers plain HTTP: use --server={fake.url}" in line
