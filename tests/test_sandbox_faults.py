"""Fault injection of the sandbox: GETs only, bounded, replayable from the seed."""

from __future__ import annotations

import http.client
from collections.abc import Callable

from fixtures_sandbox import SandboxInfo, http_request

FAULTY = ("--users", "1", "--days", "2", "--samples", "20", "--video-mb", "0")


def outcome(info: SandboxInfo) -> str:
    try:
        reply = http_request(info, "GET", "/api/watch-results/", timeout=10)
    except http.client.IncompleteRead as exc:
        # headers promised the whole list; half of it arrived, then the connection died
        assert exc.expected is not None
        total = len(exc.partial) + exc.expected
        assert len(exc.partial) == total // 2, (len(exc.partial), total)
        return "reset:IncompleteRead"
    except ConnectionError as exc:
        return f"reset:{type(exc).__name__}"
    if reply.status == 200:
        reply.json()
        return "ok"
    assert reply.content_type == "text/html", reply.headers
    return str(reply.status)


def test_errors_resets_and_replay(sandbox_factory: Callable[..., SandboxInfo]) -> None:
    flags = (*FAULTY, "--error-rate", "0.25", "--reset-rate", "0.25", "--seed", "3")
    first = sandbox_factory(*flags)
    outcomes = [outcome(first) for _ in range(60)]
    kinds = {o.split(":")[0] for o in outcomes}
    assert kinds == {"ok", "500", "502", "reset"}, outcomes
    assert 10 <= outcomes.count("ok") <= 50
    # POSTs are never faulted
    token = http_request(
        first, "POST", "/api/users/token/login/", json_body={"external_id": "operator"}, token=None
    ).json()["auth_token"]
    for _ in range(20):
        reply = http_request(
            first,
            "POST",
            "/api/missing-videos/",
            json_body={"date": "2024-03-10T08:00:00", "video": "v"},
            token=token,
        )
        assert reply.status == 201
    # the same seed replays the same sequence
    second = sandbox_factory(*flags)
    replay = [outcome(second) for _ in range(60)]
    assert [o.split(":")[0] for o in replay] == [o.split(":")[0] for o in outcomes]


def test_latency_delays_gets(sandbox_factory: Callable[..., SandboxInfo]) -> None:
    import time

    info = sandbox_factory("--latency-ms", "150")
    began = time.monotonic()
    for _ in range(3):
        assert http_request(info, "GET", "/api/users/").status == 200
    assert time.monotonic() - began >= 0.45
