"""user_feedback and user_activity under injected 500s, 502s and resets: same bytes as a
clean run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clitools import Result, run_cli
from fixtures_sandbox import SANDBOX_TODAY, SandboxInfo

STUDY = ("--users", "4", "--days", "6", "--samples", "100", "--seed", "11", "--video-mb", "0")


def config(info: SandboxInfo, folder: Path) -> str:
    path = folder / f"config-{info.url.rsplit(':', 1)[1]}.toml"
    limits = "\n[limits]\nwindow_days = 2\nretries = 15\nretry_base_delay = 0.01\n"
    path.write_text(Path(info.config).read_text() + limits)
    path.chmod(0o600)
    return str(path)


def both(info: SandboxInfo, cfg: str, out: Path) -> list[Result]:
    common = ["--config", cfg, "--server", "sandbox", "--output-dir", str(out), "--json"]
    return [
        run_cli(["user_feedback", *common, "--user_time=,,,2024-03-01,2024-03-16"]),
        run_cli(["user_activity", *common, f"--until={SANDBOX_TODAY}", "--report_days=7"]),
    ]


def test_faults_change_nothing(sandbox_factory: Any, tmp_path: Path) -> None:
    clean = sandbox_factory(*STUDY)
    expected = tmp_path / "clean"
    for result in both(clean, config(clean, tmp_path), expected):
        assert result.code == 0, result.err
    clean.stop()
    faulty = sandbox_factory("--error-rate", "0.3", "--reset-rate", "0.2", data_dir=clean.data_dir)
    got = tmp_path / "faulty"
    retried = 0
    for result in both(faulty, config(faulty, tmp_path), got):
        assert result.code == 0, result.out
        retried += json.loads(result.out)["details"]["retried"]
    assert retried > 0, "faults were injected, so some GETs must have been retried"
    for name in ("user_feedback.csv", "user_activity.csv"):
        assert (got / name).read_bytes() == (expected / name).read_bytes(), name
    assert len((expected / "user_feedback.csv").read_text().splitlines()) > 2
    assert "ok" in (expected / "user_activity.csv").read_text()
