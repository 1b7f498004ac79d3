"""Helpers shared by the media tests: profiles for both SSH servers, trees of videos."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from longterm_sync.config import Limits, ServerProfile
from longterm_sync.sandbox.ssh import SftpFactory, SshEndpoint, start_ssh_server, stop_ssh_server

T = TypeVar("T")

LIMITS = Limits(connect_timeout=10)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def endpoint_profile(ep: Any, **changes: Any) -> ServerProfile:
    """A profile reaching a sandbox SshEndpoint or an SshdInfo over SSH only."""
    key = getattr(ep, "client_key", None) or ep.key
    values: dict[str, Any] = {
        "name": "test",
        "url": "http://127.0.0.1:9",
        "ssh_user": ep.user,
        "ssh_host": ep.host,
        "ssh_port": ep.port,
        "key": Path(key),
        "known_hosts": Path(ep.known_hosts),
        "media_dir": ep.media_dir,
    }
    values.update(changes)
    return ServerProfile(**values)


def publish(
    media_root: Path,
    rel: str,
    data: bytes,
    *,
    sidecar: str | None = "auto",
    mtime: float | None = None,
) -> None:
    """Put a video (and, unless ``sidecar`` is None, its sidecar) on the server's disk.

    ``mtime`` sets both files' mtime: a file replaced within the same second as the last
    run is indistinguishable by (size, mtime), as with rsync, so tests that replace a file
    give it a later one."""
    path = media_root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    side = path.with_name(path.name + ".md5sum")
    if sidecar is not None:
        text = md5(data) if sidecar == "auto" else sidecar
        side.write_text(text + "\n")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
        if side.exists():
            os.utime(side, (mtime, mtime))


def final_files(root: Path) -> dict[str, bytes]:
    """Every non-hidden file below ``root`` by relative path."""
    out: dict[str, bytes] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


def assert_verified(root: Path) -> None:
    """Nothing unverified under a final name: every video matches the sidecar beside it."""
    files = final_files(root)
    for rel, data in files.items():
        if rel.endswith(".md5sum"):
            continue
        side = files.get(rel + ".md5sum")
        assert side is not None, f"{rel} has no sidecar"
        assert side.decode().split()[0] == md5(data), f"{rel} does not match its sidecar"


def partials(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*.partial") if p.is_file())


def with_sandbox(
    tmp: Path,
    body: Callable[[SshEndpoint], Awaitable[T]],
    *,
    sftp_factory: SftpFactory | None = None,
) -> T:
    """Run ``body(endpoint)`` against a fresh asyncssh sandbox server in one event loop."""

    async def main() -> T:
        ep = await start_ssh_server(tmp / "sandbox-ssh", sftp_factory=sftp_factory)
        try:
            return await body(ep)
        finally:
            await stop_ssh_server(ep)

    return asyncio.run(main())
