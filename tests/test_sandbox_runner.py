"""`longterm sandbox` as a program: ready file, config profile, restarts, bad input."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import stat
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from clitools import run_cli
from fixtures_sandbox import SandboxInfo
from longterm_sync.config import load_config


def get_json(info: SandboxInfo, route: str) -> object:
    req = urllib.request.Request(info.url + route, headers=info.headers())
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_ready_file_and_config_profile(sandbox: SandboxInfo) -> None:
    ready = json.loads((sandbox.data_dir / "ready.json").read_text())
    for key in ("url", "token", "ssh_host", "ssh_port", "ssh_user", "key", "known_hosts"):
        assert ready[key], key
    assert ready["media_dir"] == "media/videos"
    assert len(ready["token"]) == 40 and int(ready["token"], 16) >= 0
    config = Path(ready["config"])
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    profile = load_config(config).profile("sandbox")
    assert profile.url == ready["url"] and profile.token == ready["token"]
    assert profile.ssh_port == ready["ssh_port"] and profile.key == Path(ready["key"])
    assert profile.salt == sandbox.salt != ""
    # the printed words never hold the full token
    log = (sandbox.data_dir / "sandbox.log").read_text()
    assert ready["token"] not in log and ready["token"][:4] + "..." in log


def test_synthetic_study_files(sandbox: SandboxInfo) -> None:
    users = (sandbox.study_dir / "users.csv").read_text().splitlines()
    assert users[0] == "name,surname,phone,external_id,start_date,stop_date"
    assert users[1].startswith("Long_001,Stress_test,1234567,")
    assert len(users) == 6
    schedules = sorted((sandbox.study_dir / "schedules").glob("*.json"))
    assert len(schedules) == 5
    first = json.loads(schedules[0].read_text())
    assert first["name"] == "Long_001" and first["schedule"][0]["start"] == "2024-03-08T00:00:00"
    assert first["schedule"][-1]["start"] == "2024-03-18T00:00:00"
    videos = sorted(p for p in sandbox.media_root.rglob("*.mp4"))
    assert len(videos) == 6 and any(
        len(v.relative_to(sandbox.media_root).parts) > 1 for v in videos
    )
    for video in videos:
        sidecar = video.with_name(video.name + ".md5sum").read_text()
        assert sidecar == hashlib.md5(video.read_bytes()).hexdigest() + "\n"
        assert video.stat().st_size == 1_000_000


def test_restart_keeps_state_and_does_not_refill(
    sandbox_factory: Callable[..., SandboxInfo], tmp_path: Path
) -> None:
    first = sandbox_factory("--users", "2", "--days", "2", "--samples", "10", data_dir=tmp_path)
    results = get_json(first, "/api/watch-results/")
    users = get_json(first, "/api/users/")
    first.stop()
    again = sandbox_factory("--users", "2", "--days", "2", "--samples", "10", data_dir=tmp_path)
    assert again.token == first.token
    assert get_json(again, "/api/watch-results/") == results
    assert get_json(again, "/api/users/") == users


def test_sigterm_exits_zero(sandbox_factory: Callable[..., SandboxInfo]) -> None:
    info = sandbox_factory()
    info.stop()
    assert info.process is not None and info.process.returncode == 0


@pytest.mark.parametrize("flag", ["--port", "--ssh-port"])
def test_occupied_port_is_one_line_exit_2(tmp_path: Path, flag: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(["sandbox", "--data-dir", str(tmp_path), flag, str(port)])
    assert result.code == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.one_line_error()


def test_sigint_exits_zero(sandbox_factory: Callable[..., SandboxInfo]) -> None:
    info = sandbox_factory()
    assert info.process is not None
    info.process.send_signal(signal.SIGINT)
    assert info.process.wait(timeout=20) == 0


def test_bad_rates_and_unwritable_dir(tmp_path: Path) -> None:
    result = run_cli(["sandbox", "--data-dir", str(tmp_path), "--error-rate", "0.7"])
    assert result.code == 2 and "--error-rate" in result.one_line_error()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # works as root too, unlike chmod
    result = run_cli(["sandbox", "--data-dir", str(blocker / "sub")])
    assert result.code == 2 and "not writable" in result.one_line_error()


def test_in_process_api(tmp_path: Path) -> None:
    import asyncio

    import aiohttp

    from longterm_sync.sandbox import Sandbox, SandboxOptions

    async def main() -> tuple[int, list[dict[str, str]], str]:
        options = SandboxOptions(
            data_dir=tmp_path, users=1, days=1, samples=5, video_mb=0, ssh=False
        )
        async with Sandbox(options) as info, aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Token {info.token}"}
            async with session.get(info.url + "/api/users/", headers=headers) as resp:
                return resp.status, await resp.json(), info.url

    status, users, url = asyncio.run(main())
    assert status == 200 and users[0]["external_id"] == "operator"
    assert len(users) == 3  # operator, one participant, one orphan
    with socket.socket() as probe:  # the port was released on exit
        port = int(url.rsplit(":", 1)[1])
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_signal_during_fill_stops_and_refill_is_refused(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    ready = tmp_path / "ready.json"
    cmd = [sys.executable, "-m", "longterm_sync", "sandbox", "--data-dir", str(tmp_path),
           "--users", "40", "--days", "30", "--ready-file", str(ready)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "study" / "users.csv").exists():  # the fill has begun
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        began = time.monotonic()
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - began < 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not ready.exists()
    result = run_cli(["sandbox", "--data-dir", str(tmp_path), "--users", "40"])
    assert result.code == 2
    assert "filling was interrupted" in result.one_line_error()


def test_one_sandbox_per_data_dir(sandbox: SandboxInfo) -> None:
    result = run_cli(["sandbox", "--data-dir", str(sandbox.data_dir)])
    assert result.code == 2
    assert "is in use by another sandbox (pid " in result.one_line_error()
    assert get_json(sandbox, "/api/users/")  # the first one is untouched
