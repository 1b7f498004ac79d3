"""Building a hand-made study on a fresh sandbox through the public API (as phones do).

Used by the user_feedback / user_activity / selection tests: the operator uploads a
schedule per participant, each participant logs in and posts its results and comments with
its own token. ``orphan`` makes an account the way a crashed upload does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from fixtures_sandbox import SandboxInfo
from longterm_sync.sandbox.fill import FillClient, expected_status


@dataclass
class Person:
    external_id: str
    results: list[dict[str, Any]] = field(default_factory=list)  # {"date", "result"}
    comments: list[dict[str, Any]] = field(default_factory=list)  # {"video", "date", "comment"}


def schedule_for(ext: str) -> dict[str, Any]:
    return {
        "external_id": ext,
        "language": "pol",
        "comments": "hand-made test participant",
        "schedule": [
            {
                "start": "2024-03-01T00:00:00",
                "end": "2024-03-01T23:59:59",
                "service": [{"service_name": "A", "video": "clip_A.mp4"}],
                "reply_form": [],
            }
        ],
    }


async def _build(info: SandboxInfo, people: Sequence[Person], orphans: Sequence[str]) -> None:
    async with aiohttp.ClientSession() as session:
        client = FillClient(session, info.url)
        for person in people:
            await client.upload_schedule(schedule_for(person.external_id), info.token)
            token = await client.login(person.external_id)
            for item in person.results:
                await client.post(
                    "watch-results", item, token, expected_status("watch-results", item)
                )
            for item in person.comments:
                await client.post("feedback-comments", item, token, 201)
        for ext in orphans:
            # a new participant without an entry list: the server creates the account, then
            # crashes (500) and leaves it without a schedule
            await client.upload_schedule({"external_id": ext}, info.token, expect=500)


def build_study(info: SandboxInfo, people: Sequence[Person], orphans: Sequence[str] = ()) -> None:
    asyncio.run(_build(info, people, orphans))


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def accelerometer(z: Sequence[float], start: datetime, hz: float = 20.0) -> dict[str, Any]:
    stamps = [iso(start + timedelta(seconds=i / hz)) for i in range(len(z))]
    n = len(z)
    return {"x": [0.01] * n, "y": [-0.3] * n, "z": list(z), "timestamp": stamps}


def watch_result(
    ended: datetime,
    *,
    watched_s: float,
    duration_s: float = 60.0,
    z: Sequence[float] | None = (-0.3,) * 1200,
    q2: Any = True,
    video: str = "clip_A.mp4",
) -> dict[str, Any]:
    """A result as a phone posts it: ``date`` is when the viewing (and its form) ended."""
    started = ended - timedelta(seconds=watched_s)
    result: dict[str, Any] = {
        "video": video,
        "service": "A",
        "timezone": "Europe/Warsaw",
        "timezone_offset": -60,
        "video_duration": int(duration_s * 1000),
        "playback_started": iso(started),
        "playback_ended": iso(ended),
        "query_started": iso(ended + timedelta(seconds=1)),
        "reply_form": {
            "started": iso(ended + timedelta(seconds=1)),
            "ended": iso(ended + timedelta(seconds=9)),
            "content": [
                {"type": "MOS", "optional_id": "q1", "answer": {"content": 4}},
                {"type": "MOS", "optional_id": "q2", "answer": {"content": q2}},
            ],
        },
        "playback_data": {
            "timestamp": [iso(started), iso(ended)],
            "position_ms": [0, int(duration_s * 1000)],
        },
        "accelerometer_data": (
            accelerometer(z, started)
            if z is not None
            else {"x": [], "y": [], "z": [], "timestamp": []}
        ),
        "user_feedback": None,
    }
    return {"date": iso(ended + timedelta(seconds=10)), "result": result}
