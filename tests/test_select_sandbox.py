"""resolve_participants against the sandbox platform over real HTTP."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pandas as pd

from fixtures_sandbox import SandboxInfo
from longterm_sync.api import PlatformClient
from longterm_sync.config import load_config
from longterm_sync.select import (
    Participant,
    Resolved,
    Selection,
    parse_selection,
    resolve_participants,
)


def resolve(info: SandboxInfo, selection: Selection) -> Resolved:
    config = load_config(info.config)
    profile = config.profile("sandbox")

    async def go() -> Any:
        async with PlatformClient(profile, config.limits) as client:
            return await resolve_participants(selection, client)

    result: Resolved = asyncio.run(go())
    return result


def study_ids(info: SandboxInfo) -> list[str]:
    return list(pd.read_csv(info.study_dir / "users.csv", dtype=str)["external_id"])


def test_all_is_users_with_a_schedule(sandbox: SandboxInfo) -> None:
    tz = load_config(sandbox.config).profile("sandbox").tz
    selection = parse_selection(",,,2024-03-10,", salt=sandbox.salt, tz=tz)
    resolved = resolve(sandbox, selection)
    people, warnings = resolved.participants, resolved.warnings
    assert [p.external_id for p in people] == study_ids(sandbox)  # server (creation) order
    assert all(p.start == datetime(2024, 3, 10, tzinfo=tz) and p.stop is None for p in people)
    # the synthetic study has one orphan account; the operator's own account is not reported
    assert len(warnings) == 1 and warnings[0].startswith("1 account(s) have no schedule")
    assert "operator" not in warnings[0]


def test_names_resolve_to_an_existing_participant(sandbox: SandboxInfo) -> None:
    users = pd.read_csv(sandbox.study_dir / "users.csv", dtype=str)
    row = users.iloc[2]
    tz = load_config(sandbox.config).profile("sandbox").tz
    selection = parse_selection(
        f"{row['name']},{row['surname']},{row['phone']}", salt=sandbox.salt, tz=tz
    )
    assert resolve(sandbox, selection) == Resolved([Participant(row["external_id"])], [], [])


def test_wrong_salt_is_an_unknown_participant(sandbox: SandboxInfo) -> None:
    users = pd.read_csv(sandbox.study_dir / "users.csv", dtype=str)
    row = users.iloc[0]
    tz = load_config(sandbox.config).profile("sandbox").tz
    selection = parse_selection(
        f"{row['name']},{row['surname']},{row['phone']}", salt="not-the-salt", tz=tz
    )
    resolved = resolve(sandbox, selection)
    assert resolved.participants == [] and resolved.warnings == []
    assert len(resolved.unknown) == 1 and resolved.unknown[0].external_id != row["external_id"]
