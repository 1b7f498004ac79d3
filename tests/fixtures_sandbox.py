"""Fixtures that start the sandbox platform server (``longterm sandbox``) as a subprocess.

``sandbox`` (session scope) is a small synthetic study shared by every test that only reads;
``sandbox_factory`` starts a private one with custom flags (empty platform, faults, poison
rows...) for tests that write or need something special. Both talk real HTTP and SSH on
loopback ports chosen by the server (port 0).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "SANDBOX_STUDY",
    "SANDBOX_TODAY",
    "HttpReply",
    "SandboxInfo",
    "http_request",
    "sandbox",
    "sandbox_factory",
    "start_sandbox",
]

#: The pinned server date of the shared study: merge-rule results do not depend on the clock.
SANDBOX_TODAY = "2024-03-15"
#: Flags of the shared session study (small enough to start in about a second).
SANDBOX_STUDY = (
    "--users", "5", "--days", "8", "--samples", "200", "--video-mb", "1", "--seed", "1",
    "--today", SANDBOX_TODAY,
)  # fmt: skip
READY_TIMEOUT = 90.0


@dataclass
class SandboxInfo:
    """The ready file's fields plus what a test needs to look inside or stop the server."""

    url: str
    token: str = field(repr=False)
    ssh_host: str
    ssh_port: int
    ssh_user: str
    key: str
    known_hosts: str
    media_dir: str
    config: str
    data_dir: Path
    salt: str = field(repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    args: tuple[str, ...] = ()

    @property
    def media_root(self) -> Path:
        """The local folder behind the SSH account's ``media/videos``."""
        return self.data_dir / "home" / self.media_dir

    @property
    def study_dir(self) -> Path:
        """users.csv and the experimenter's schedule files of the synthetic study."""
        return self.data_dir / "study"

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Token {token or self.token}"}

    def stop(self) -> None:
        stop_process(self.process)


@dataclass
class HttpReply:
    """One raw HTTP answer: status, headers (case-insensitive lookup), body bytes."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")


def http_request(
    info: SandboxInfo,
    method: str,
    path: str,
    *,
    json_body: Any = None,
    body: bytes | None = None,
    token: str | None = "",
    headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> HttpReply:
    """A raw request over a fresh connection: no redirects followed, the path sent as is.

    ``token=""`` (default) sends the operator's token, ``None`` sends no Authorization header.
    """
    host, port = info.url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=timeout)
    send_headers: dict[str, str] = {}
    if token is not None:
        send_headers["Authorization"] = f"Token {token or info.token}"
    if json_body is not None:
        body = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
        send_headers["Content-Type"] = "application/json"
    send_headers.update(headers or {})
    try:
        conn.request(method, path, body=body, headers=send_headers)
        resp = conn.getresponse()
        return HttpReply(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


def start_sandbox(
    data_dir: Path, args: Sequence[str] = (), *, timeout: float = READY_TIMEOUT
) -> SandboxInfo:
    """Start ``python -m longterm_sync sandbox`` and wait for its ready file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    ready = data_dir / "ready.json"
    ready.unlink(missing_ok=True)
    log = data_dir / "sandbox.log"
    cmd = [
        sys.executable, "-m", "longterm_sync", "sandbox", "--data-dir", str(data_dir),
        "--ready-file", str(ready), *args,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKEN_", "LONGTERM_"))}
    with open(log, "ab") as log_fh:
        proc = subprocess.Popen(
            cmd, stdout=log_fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None:
            raise RuntimeError(
                f"sandbox exited with {proc.returncode} before it was ready:\n"
                + log.read_text(errors="replace")[-4000:]
            )
        if time.monotonic() > deadline:
            stop_process(proc)
            raise RuntimeError(
                f"sandbox not ready after {timeout} s:\n" + log.read_text(errors="replace")[-4000:]
            )
        time.sleep(0.05)
    data: dict[str, Any] = json.loads(ready.read_text())
    return SandboxInfo(
        url=data["url"],
        token=data["token"],
        ssh_host=data["ssh_host"],
        ssh_port=int(data["ssh_port"]),
        ssh_user=data["ssh_user"],
        key=data["key"],
        known_hosts=data["known_hosts"],
        media_dir=data["media_dir"],
        config=data["config"],
        data_dir=Path(data["data_dir"]),
        salt=data.get("salt", ""),
        process=proc,
        args=tuple(args),
    )


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxInfo]:
    """A shared sandbox with a small synthetic study; tests must not change its data."""
    info = start_sandbox(tmp_path_factory.mktemp("sandbox"), SANDBOX_STUDY)
    try:
        yield info
    finally:
        info.stop()


@pytest.fixture
def sandbox_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., SandboxInfo]]:
    """``sandbox_factory("--error-rate", "0.2")``: a private sandbox, stopped after the test.

    Without flags it is an empty platform (operator account only) with the date pinned to
    SANDBOX_TODAY; pass ``data_dir=`` to restart on existing state.
    """
    started: list[SandboxInfo] = []

    def start(*args: str, data_dir: Path | None = None, today: str = SANDBOX_TODAY) -> SandboxInfo:
        folder = data_dir or tmp_path_factory.mktemp("sandbox-private")
        flags = list(args)
        if "--today" not in flags and today:
            flags += ["--today", today]
        info = start_sandbox(folder, flags)
        started.append(info)
        return info

    try:
        yield start
    finally:
        for info in started:
            info.stop()
