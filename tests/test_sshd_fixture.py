"""The real-sshd fixture itself: it starts, its profile resolves, and it can be killed/restarted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest

from fixtures_sshd import SFTP_SERVER, SshdInfo
from longterm_sync.config import load_config

pytestmark = pytest.mark.sshd


async def _run(info: SshdInfo, command: str) -> asyncssh.SSHCompletedProcess:
    async with asyncssh.connect(**info.connect_options()) as conn:
        return await conn.run(command, check=False, timeout=10)


def test_login_runs_a_real_shell_as_the_current_user(openssh_server: SshdInfo) -> None:
    result = asyncio.run(_run(openssh_server, "id -un; echo $0"))
    lines = str(result.stdout).split()
    assert result.exit_status == 0
    assert lines[0] == openssh_server.user


def test_media_dir_is_absolute_and_exists(openssh_server: SshdInfo) -> None:
    assert Path(openssh_server.media_dir).is_absolute()
    assert openssh_server.media_root.is_dir()
    assert str(openssh_server.media_root) == openssh_server.media_dir


def test_known_hosts_uses_bracketed_port(openssh_server: SshdInfo) -> None:
    line = openssh_server.known_hosts.read_text()
    assert line.startswith(f"[127.0.0.1]:{openssh_server.port} ssh-ed25519 ")


def test_written_profile_resolves_to_the_fixture(openssh_server: SshdInfo, tmp_path: Path) -> None:
    path = openssh_server.write_config(tmp_path / "config.toml")
    profile = load_config(path).profile("sshd")
    assert profile.ssh_host == "127.0.0.1"
    assert profile.ssh_port == openssh_server.port
    assert profile.ssh_user == openssh_server.user
    assert profile.key == openssh_server.key
    assert profile.known_hosts == openssh_server.known_hosts
    assert profile.media_dir == openssh_server.media_dir


def test_kill_sessions_breaks_a_live_connection_and_restart_serves_again(
    openssh_factory: Callable[..., SshdInfo],
) -> None:
    info = openssh_factory()

    async def scenario() -> tuple[int, int | None, bool]:
        async with asyncssh.connect(**info.connect_options()) as conn:
            sleeper = asyncio.ensure_future(conn.run("sleep 30", timeout=20))
            await asyncio.sleep(0.3)
            killed = info.kill_sessions()
            # The channel closes without an exit status: the command never finished.
            status = (await sleeper).exit_status
            try:
                await conn.run("true")
            except (asyncssh.Error, OSError):
                return killed, status, True
            return killed, status, False

    killed, status, dead = asyncio.run(scenario())
    assert killed >= 1
    assert status is None
    assert dead
    info.kill()
    assert not info.is_running()
    with pytest.raises(OSError):
        asyncio.run(_run(info, "true"))
    info.restart()
    assert asyncio.run(_run(info, "echo back")).stdout == "back\n"


@pytest.mark.skipif(not SFTP_SERVER.exists(), reason=f"{SFTP_SERVER} is absent")
def test_sftp_server_binary_subsystem(openssh_factory: Callable[..., SshdInfo]) -> None:
    info = openssh_factory(sftp_subsystem=str(SFTP_SERVER))
    (info.media_root / "a.bin").write_bytes(b"x" * 1000)

    async def listing() -> list[str]:
        async with (
            asyncssh.connect(**info.connect_options()) as conn,
            conn.start_sftp_client() as sftp,
        ):
            return sorted(await sftp.listdir(info.media_dir))

    assert asyncio.run(listing()) == [".", "..", "a.bin"]


def test_restart_from_inside_a_running_loop(openssh_factory: Callable[..., SshdInfo]) -> None:
    info = openssh_factory()

    async def scenario() -> str:
        info.kill()
        await info.arestart()
        async with asyncssh.connect(**info.connect_options()) as conn:
            return str((await conn.run("echo again", check=True)).stdout)

    assert asyncio.run(scenario()) == "again\n"


def test_commands_do_not_source_the_users_bashrc(openssh_server: SshdInfo) -> None:
    # bash run by sshd sources ~/.bashrc only as a top-level shell (SHLVL 1); a developer's
    # .bashrc (pyenv init, a stale rehash lock) must not slow or hang every exec
    result = asyncio.run(_run(openssh_server, "echo $SHLVL"))
    assert result.exit_status == 0
    assert int(str(result.stdout).strip()) >= 2
