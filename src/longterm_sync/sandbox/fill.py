"""Fill a platform server with a synthetic study through its public routes only.

The same code fills the sandbox and a real (test) platform: the operator uploads each
schedule (personal data removed), then every participant logs in with its external_id and
posts what its phone would post, with its own token, trailing slashes always, naive Warsaw
dates. Orphan accounts are made the way they happen in real studies: a schedule upload that
crashes the server after the account was created.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date
from typing import Any

import aiohttp
import orjson

from ..config import mask_token
from ..errors import AuthError, ConnectError, ProtocolError
from ..ids import external_id
from ..summary import Summary
from .synth import SURNAME, Study, SynthParticipant

log = logging.getLogger("longterm_sync.sandbox.fill")

ROUTES = {
    "update_schedule": "/api/users/update_schedule/",
    "login": "/api/users/token/login/",
    "watch-results": "/api/watch-results/",
    "feedback-comments": "/api/feedback-comments/",
    "missing-videos": "/api/missing-videos/",
}


def expected_status(route: str, body: Any) -> int:
    """What the platform answers a phone's POST: 201, but the 500 page for a result that is
    not an object (it saves the row first, which then poisons every list holding it)."""
    if (
        route == "watch-results"
        and isinstance(body, dict)
        and not isinstance(body.get("result"), dict)
    ):
        return 500
    return 201


class FillClient:
    """The few POSTs a study needs; every unexpected answer is a one-line error."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url.rstrip("/")

    async def post(
        self, route: str, body: Any, token: str | None, expect: int
    ) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Token {token}"
        try:
            async with self.session.post(
                self.url + ROUTES[route],
                data=orjson.dumps(body),
                headers=headers,
                allow_redirects=False,
            ) as resp:
                data = await resp.read()
        except aiohttp.ClientError as exc:
            raise ConnectError(f"cannot POST {ROUTES[route]} to {self.url}: {exc}") from exc
        if resp.status == 401:
            raise AuthError(f"{self.url} refused token {mask_token(token)} on {ROUTES[route]}")
        if resp.status != expect:
            raise ProtocolError(
                f"POST {ROUTES[route]} answered {resp.status}, expected {expect}: "
                f"{data[:200].decode('utf-8', 'replace')}"
            )
        return resp.status, data

    async def upload_schedule(self, payload: dict[str, Any], token: str, expect: int = 200) -> None:
        await self.post("update_schedule", {"schedule": payload}, token, expect)

    async def login(self, ext_id: str) -> str:
        _, data = await self.post("login", {"external_id": ext_id}, None, 200)
        token = orjson.loads(data).get("auth_token")
        if not isinstance(token, str):
            raise ProtocolError(f"login of {ext_id[:12]} answered without auth_token")
        return token


async def fill_platform(
    url: str,
    operator_token: str,
    study: Study,
    *,
    concurrency: int = 4,
) -> Summary:
    """Upload the study's schedules, orphans and every participant's posts."""
    summary = Summary(command="sandbox fill")
    began = time.monotonic()
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        client = FillClient(session, url)
        # Sequential schedule uploads: account ids come out in participant order.
        for p in study.participants:
            await client.upload_schedule(p.payload, operator_token)
            summary.count("schedules")
        for k in range(1, study.params.orphans + 1):
            orphan = external_id(f"Orphan_{k:03d}", SURNAME, f"999{k:04d}", study.params.salt)
            payload = {"external_id": orphan, "language": "PL", "comments": "orphan"}
            await client.upload_schedule(payload, operator_token, expect=500)
            summary.count("orphans")
        semaphore = asyncio.Semaphore(concurrency)

        async def one(p: SynthParticipant) -> None:
            async with semaphore:
                token = await client.login(p.external_id)
                posts = await asyncio.to_thread(lambda: list(study.posts(p)))
                for post in posts:
                    await client.post(
                        post.route, post.body, token, expected_status(post.route, post.body)
                    )
                    summary.count(post.route)
            log.debug("filled participant %s", p.name)

        async with asyncio.TaskGroup() as tg:
            for p in study.participants:
                tg.create_task(one(p))
    summary.elapsed_s = time.monotonic() - began
    return summary


async def add_day(url: str, study: Study, day: date, *, concurrency: int = 4) -> Summary:
    """Every participant's phone posts one more day (``day``) of results and a comment."""
    summary = Summary(command="sandbox add-day")
    began = time.monotonic()
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=300)
    semaphore = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        client = FillClient(session, url)

        async def one(p: SynthParticipant) -> None:
            async with semaphore:
                token = await client.login(p.external_id)
                posts = await asyncio.to_thread(lambda: list(study.day_posts(p, day)))
                for post in posts:
                    await client.post(post.route, post.body, token, 201)
                    summary.count(post.route)

        async with asyncio.TaskGroup() as tg:
            for p in study.participants:
                tg.create_task(one(p))
    summary.elapsed_s = time.monotonic() - began
    return summary


def main(argv: list[str] | None = None) -> int:
    """``python -m longterm_sync.sandbox.fill --url URL``: fill any platform server.

    For a test installation of the real platform as much as for the sandbox: only public
    routes are used. The operator token comes from --token or $FILL_TOKEN (never printed).
    """
    import argparse
    import os
    import sys
    from datetime import date

    from ..errors import LongtermError, UsageError
    from .synth import StudyParams

    parser = argparse.ArgumentParser(
        prog="python -m longterm_sync.sandbox.fill", description=main.__doc__
    )
    parser.add_argument("--url", required=True, help="https://host of the platform")
    parser.add_argument("--token", default=os.environ.get("FILL_TOKEN"), help="operator token")
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--samples", type=int, default=1800)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--today", type=date.fromisoformat, default=None, help="YYYY-MM-DD")
    parser.add_argument("--orphans", type=int, default=0)
    parser.add_argument("--poison", type=int, default=0)
    parser.add_argument("--study-dir", default=None, help="write users.csv/.xlsx and schedules")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    try:
        if not args.token:
            raise UsageError("no operator token", hint="pass --token or set FILL_TOKEN")
        params = StudyParams(
            users=args.users,
            days=args.days,
            samples=args.samples,
            seed=args.seed,
            orphans=args.orphans,
            poison=args.poison,
            **({"today": args.today} if args.today else {}),
        )
        study = Study(params)
        if args.study_dir:
            from pathlib import Path

            study.write_experimenter_files(Path(args.study_dir))
        summary = asyncio.run(
            fill_platform(args.url, args.token, study, concurrency=args.concurrency)
        )
    except LongtermError as exc:
        print(f"fill: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    for line in summary.lines():
        print(line)
    print(f"salt for the external_id hash: {params.salt}")
    return int(summary.exit_code)


if __name__ == "__main__":
    raise SystemExit(main())
