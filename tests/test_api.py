"""PlatformClient against the sandbox: routes, filters, chunked id lists, POST never retried."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fixtures_sandbox import SandboxInfo
from longterm_sync import api
from longterm_sync.api import HttpStatusError, PlatformClient
from longterm_sync.config import Limits, ServerProfile
from longterm_sync.errors import AuthError, ConfigError
from rest_helpers import participant_ids

LIMITS = Limits(retries=2, retry_base_delay=0.01)


def profile(info: SandboxInfo, token: str | None = None) -> ServerProfile:
    return ServerProfile(name="sandbox", url=info.url, token=token or info.token)


def run(info: SandboxInfo, job: Any, token: str | None = None) -> Any:
    async def main() -> Any:
        async with PlatformClient(profile(info, token), LIMITS) as client:
            return await job(client), client

    return asyncio.run(main())


def test_users_and_schedules(sandbox: SandboxInfo) -> None:
    ids = participant_ids(sandbox)

    async def job(client: PlatformClient) -> Any:
        return (
            await client.users(),
            await client.schedules(),
            await client.schedules(ids[:2]),
            await client.schedules([]),
        )

    (users, every, two, none), client = run(sandbox, job)
    assert set(ids) <= set(users)
    assert {r["schedule"].get("external_id") for r in every} >= set(ids)
    assert [r["schedule"]["external_id"] for r in two] == ids[:2]
    assert none == []  # an empty filter would mean "everybody" to the server: not sent
    assert client.requests == 3
    assert "3 requests" in repr(client) and sandbox.token not in repr(client)


def test_long_id_lists_are_split(sandbox: SandboxInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "MAX_QUERY_CHARS", 130)  # two ids of 64 hex per request
    ids = participant_ids(sandbox)

    async def job(client: PlatformClient) -> Any:
        return await client.schedules(ids)

    rows, client = run(sandbox, job)
    assert sorted(r["schedule"]["external_id"] for r in rows) == sorted(ids)
    assert client.requests == (len(ids) + 1) // 2


def test_list_route_and_missing_videos(sandbox: SandboxInfo) -> None:
    ext = participant_ids(sandbox)[0]

    async def job(client: PlatformClient) -> Any:
        return (
            await client.list_route(api.WATCH_RESULTS, ext, None, None),
            await client.list_route(api.FEEDBACK_COMMENTS, ext, None, None),
            await client.missing_videos(ext),
        )

    (results, feedback, missing), _ = run(sandbox, job)
    assert results and {r["external_id"] for r in results} == {ext}
    assert all(f["external_id"] == ext for f in feedback)
    assert all(set(m) == {"external_id", "date", "video"} for m in missing)


def test_post_error_is_not_retried(sandbox_factory: Any) -> None:
    info = sandbox_factory()

    async def job(client: PlatformClient) -> Any:
        with pytest.raises(HttpStatusError) as bad:
            await client.post_json(api.UPDATE_SCHEDULE, {"schedule": {"external_id": ""}})
        assert bad.value.status == 400 and "No user identifier" in str(bad.value)
        with pytest.raises(HttpStatusError) as crash:  # a new participant without entries
            await client.update_schedule({"external_id": "crash-once"})
        return crash.value.status

    status, client = run(info, job)
    assert status == 500 and client.requests == 2 and client.retried == 0


def test_wrong_token_and_no_token(sandbox: SandboxInfo) -> None:
    async def job(client: PlatformClient) -> Any:
        return await client.users()

    with pytest.raises(AuthError, match="rejected by sandbox"):
        run(sandbox, job, token="f" * 40)
    with pytest.raises(ConfigError, match="no REST token"):
        asyncio.run(PlatformClient(ServerProfile(name="x", url=sandbox.url), LIMITS).__aenter__())
