"""Helpers for the backup tests: run the command, post rows as a phone would, compare trees."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp

from clitools import Result, run_cli
from fixtures_sandbox import SANDBOX_STUDY, SandboxInfo
from longterm_sync.backup.files import EXTRA_LISTINGS
from longterm_sync.ids import external_id
from longterm_sync.sandbox.fill import FillClient
from longterm_sync.sandbox.synth import SURNAME
from rest_helpers import download, participant_ids, tree

# The shared study's flags on a private sandbox: these tests post new rows into it.
STUDY = list(SANDBOX_STUDY)


def backup(info: SandboxInfo, dest: Path, *args: str, script: bool = False) -> Result:
    return run_cli(
        [
            *([] if script else ["backup"]),
            "--config",
            info.config,
            "--server",
            "sandbox",
            "--dest_location",
            str(dest),
            *args,
        ],
        script="backup" if script else None,
        timeout=300,
    )


def backup_json(info: SandboxInfo, dest: Path, *args: str) -> dict[str, Any]:
    done = backup(info, dest, "--json", *args)
    assert done.code in (0, 1), done.err
    summary: dict[str, Any] = json.loads(done.out)
    return summary


def orphan_id(info: SandboxInfo) -> str:
    return external_id("Orphan_001", SURNAME, "9990001", info.salt)


def post(info: SandboxInfo, ext: str, route: str, body: dict[str, Any]) -> None:
    async def go() -> None:
        async with aiohttp.ClientSession() as session:
            client = FillClient(session, info.url)
            token = await client.login(ext)
            await client.post(route, body, token, 201)

    asyncio.run(go())


def result_body(date: str, video: str, marker: str) -> dict[str, Any]:
    return {
        "date": date,
        "result": {"video": video, "service": "A", "marker": marker, "user_feedback": None},
    }


def fresh_download(info: SandboxInfo, out: Path) -> dict[str, bytes]:
    """What download-results and download-schedule --mode json write now, by file name."""
    done = download(info, out)
    assert done.code == 0, done.err
    sched = run_cli(
        ["download-schedule", "--mode", "json", "--config", info.config, "--server", "sandbox",
         "--output-dir", str(out)]
    )  # fmt: skip
    assert sched.code == 0, sched.err
    return tree(out)


def latest_subset(dest: Path, names: set[str]) -> dict[str, bytes]:
    """latest/ without the backup's own extra files (missing videos, unassigned rows)."""
    latest = tree(dest / "text_files" / "latest")
    return {name: data for name, data in latest.items() if name not in EXTRA_LISTINGS}


__all__ = ["STUDY", "participant_ids"]
