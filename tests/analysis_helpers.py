"""Shared by the analysis tests: the shared sandbox's study as the generator made it, and the
CLI runs against it."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from clitools import Result, run_cli
from fixtures_sandbox import SANDBOX_TODAY, SandboxInfo
from longterm_sync.sandbox.synth import Study, StudyParams
from longterm_sync.timeutil import WARSAW


def shared_study() -> Study:
    """The study of fixtures_sandbox.SANDBOX_STUDY (same flags)."""
    return Study(
        StudyParams(
            users=5,
            days=8,
            samples=200,
            video_mb=1,
            seed=1,
            today=date.fromisoformat(SANDBOX_TODAY),
        )
    )


def local_ms(naive: str) -> str:
    return datetime.fromisoformat(naive).replace(tzinfo=WARSAW).isoformat(timespec="milliseconds")


def posted_results(study: Study) -> list[tuple[Any, dict[str, Any]]]:
    """(participant, watch-results body) for every result the generator posted."""
    return [
        (p, post.body)
        for p in study.participants
        for post in study.posts(p)
        if post.route == "watch-results" and isinstance(post.body["result"], dict)
    ]


def cli(info: SandboxInfo, command: str, out: Path, *flags: str) -> Result:
    return run_cli(
        [command, "--config", info.config, "--server", "sandbox", "--output-dir", str(out), *flags]
    )
