"""A small hostile platform server for the safety tests: it says what an attacker's or a
broken server would.

It speaks the REST routes the engine uses (users, schedules, watch-results, feedback-comments)
over real HTTP on a loopback port, in a thread of the test process, and can list ids that are
not safe file names, answer invalid JSON, 500 forever, send huge answers or never answer.
The sandbox cannot do these things on purpose (its data is what a real server holds).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web

TZ = ZoneInfo("Europe/Warsaw")
TOKEN = "1" * 40
FIRST_DAY = datetime(2024, 3, 1, tzinfo=TZ)


@dataclass
class FakeParticipant:
    """One participant's data; ``mode`` says how the list routes answer for it.

    Modes: ``ok``; ``error`` (500 on every GET); ``invalid`` (200 with a body that is not JSON);
    ``silent`` (accepts, never answers); ``pad`` (every result carries ``pad_bytes`` of filler,
    so an answer grows with its window).
    """

    external_id: str
    days: int = 5
    mode: str = "ok"
    pad_bytes: int = 0

    def schedule(self) -> dict[str, Any]:
        entries = [
            {
                "start": (FIRST_DAY + timedelta(days=d)).strftime("%Y-%m-%dT00:00:00"),
                "end": (FIRST_DAY + timedelta(days=d)).strftime("%Y-%m-%dT23:59:59"),
                "service": [{"service_name": "A", "video": f"v{d}.mp4"}],
            }
            for d in range(self.days)
        ]
        return {"external_id": self.external_id, "language": "PL", "schedule": entries}

    def dates(self) -> Iterator[datetime]:
        for d in range(self.days):
            yield FIRST_DAY + timedelta(days=d, hours=12)

    def results(self) -> list[dict[str, Any]]:
        return [
            {
                "date": moment.isoformat(),
                "external_id": self.external_id,
                "result": {
                    "video": f"v{d}.mp4",
                    "user_feedback": None,
                    "pad": "x" * self.pad_bytes,
                },
            }
            for d, moment in enumerate(self.dates())
        ]

    def feedback(self) -> list[dict[str, Any]]:
        return [
            {
                "video": f"v{d}.mp4",
                "external_id": self.external_id,
                "date": (moment + timedelta(minutes=5)).isoformat(),
                "comment": f"comment {d}",
            }
            for d, moment in enumerate(self.dates())
        ]


@dataclass
class FakePlatform:
    """``with FakePlatform([...]) as fake: fake.url``; ``fake.requests`` lists the paths asked."""

    participants: list[FakeParticipant] = field(default_factory=list)
    users_mode: str = "ok"
    requests: list[str] = field(default_factory=list)
    url: str = ""
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None

    _stop: asyncio.Event | None = None

    def _closing(self) -> asyncio.Event:
        if self._stop is None:
            self._stop = asyncio.Event()
        return self._stop

    def by_id(self, ext: str) -> FakeParticipant | None:
        return next((p for p in self.participants if p.external_id == ext), None)

    # -- handlers ------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        if request.headers.get("Authorization") != f"Token {TOKEN}":
            return web.json_response({"detail": "Invalid token."}, status=401)
        path = request.path
        if path == "/api/users/":
            if self.users_mode == "invalid":
                return web.Response(body=b"[{", content_type="application/json")
            return _json([{"external_id": p.external_id} for p in self.participants])
        if path == "/api/users/schedules/":
            wanted = request.query.get("external_id")
            ids = wanted.split(",") if wanted else None
            rows = [
                {"id": n, "schedule": p.schedule()}
                for n, p in enumerate(self.participants)
                if ids is None or p.external_id in ids
            ]
            return _json(rows)
        if path in ("/api/watch-results/", "/api/feedback-comments/"):
            wanted = request.query.get("external_id")
            if wanted is None:  # the whole study in one answer
                everyone = [
                    item
                    for q in self.participants
                    if q.mode == "ok"
                    for item in (q.results() if "watch" in path else q.feedback())
                ]
                return _json(everyone)
            p = self.by_id(wanted)
            if p is None:
                return _json([])
            if p.mode == "error":
                return web.Response(status=500, text="<h1>Server Error (500)</h1>")
            if p.mode == "invalid":
                return web.Response(body=b"[{not json", content_type="application/json")
            if p.mode == "silent":
                await self._closing().wait()
                return web.Response(status=503)
            items = p.results() if "watch" in path else p.feedback()
            start = _bound(request.query.get("start_date"))
            stop = _bound(request.query.get("stop_date"))
            chosen = [
                item
                for item in items
                if (start is None or datetime.fromisoformat(item["date"]) > start)
                and (stop is None or datetime.fromisoformat(item["date"]) < stop)
            ]
            return _json(chosen)
        return web.Response(status=404, text="not found")

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> FakePlatform:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def start() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self.handle)
            self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            server = site._server
            assert server is not None
            port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
            self.url = f"http://127.0.0.1:{port}"

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        loop = self._loop
        if loop is None:
            return
        loop.call_soon_threadsafe(lambda: self._closing().set())
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def args(self) -> list[str]:
        """The CLI flags that point a command at this server."""
        return [f"--server={self.url}", f"--token={TOKEN}"]


def _json(data: Any) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")


def _bound(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace(" ", "+"))
    return moment if moment.tzinfo else moment.replace(tzinfo=TZ)
