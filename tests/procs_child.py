"""A child process for tests/test_procs.py: the general helper-process runner
(:mod:`longterm_sync.procs`) running small real jobs, chosen by the job's ``mode``."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from longterm_sync import errors
from longterm_sync.procs import child_main, emit

log = logging.getLogger("longterm_sync.test_child")


async def _serve(job: dict[str, Any]) -> None:
    mode = job["mode"]
    if mode == "echo":
        log.warning("child says hello")
        for n in range(int(job["count"])):
            emit({"n": n})
    elif mode == "raise":  # one of ours, by class name
        raise getattr(errors, job["error"])(job["message"], hint=job.get("hint"))
    elif mode == "bug":
        raise ValueError("not one of ours")
    elif mode == "exit":
        os._exit(int(job["status"]))
    elif mode == "beat":  # write a beat to a file until killed, announced after the first
        beats = Path(job["beats"])
        await asyncio.to_thread(_beat, beats)
        emit({"pid": os.getpid()})
        while True:
            await asyncio.sleep(0.02)
            await asyncio.to_thread(_beat, beats)


def _beat(beats: Path) -> None:
    with beats.open("a") as fh:
        fh.write(".")


def main() -> int:
    return child_main(_serve, what="test child")
