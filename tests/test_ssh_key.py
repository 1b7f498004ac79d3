"""The media account's key as people keep it: too open, or protected by a passphrase.

A key readable by others works but draws a warning (OpenSSH itself refuses it). A
passphrase-protected key works through a running ssh-agent, is asked for on a terminal, and
otherwise stops the run with one line. The sandbox's own key is re-written with a passphrase
(the same key, so the sandbox accepts it).
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from clitools import REPO, Result, run_cli
from fixtures_sandbox import SandboxInfo

PASSPHRASE = "correct horse"


def videos(info: SandboxInfo, key: Path, out: Path, env: dict[str, str] | None = None) -> Result:
    return run_cli(
        ["download-schedule", "--config", info.config, "--server=sandbox", "--mode=video",
         f"--key={key}", str(out)],
        env={"SSH_AUTH_SOCK": "", **(env or {})},
    )  # fmt: skip


def protected_copy(info: SandboxInfo, folder: Path) -> Path:
    path = folder / "media_key"
    key = asyncssh.read_private_key(info.key)
    key.write_private_key(str(path), passphrase=PASSPHRASE)
    path.chmod(0o600)
    key.write_public_key(f"{path}.pub")
    return path


def test_key_readable_by_others_warns_and_works(sandbox: SandboxInfo, tmp_path: Path) -> None:
    key = tmp_path / "open_key"
    key.write_bytes(Path(sandbox.key).read_bytes())
    key.chmod(0o644)
    result = videos(sandbox, key, tmp_path / "v")
    assert result.code == 0, result.err
    warnings = [ln for ln in result.err.splitlines() if "readable by others" in ln]
    assert len(warnings) == 1 and f"chmod 600 {key}" in warnings[0]
    key.chmod(0o600)
    assert "readable" not in videos(sandbox, key, tmp_path / "v").err


def test_protected_key_without_agent_or_terminal_is_one_line(
    sandbox: SandboxInfo, tmp_path: Path
) -> None:
    key = protected_copy(sandbox, tmp_path)
    result = videos(sandbox, key, tmp_path / "v")
    assert result.code == 2
    line = result.one_line_error()
    assert "passphrase-protected and no ssh-agent is running" in line and "ssh-add" in line
    assert not (tmp_path / "v").exists()


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[dict[str, str]]:
    if shutil.which("ssh-agent") is None or shutil.which("ssh-add") is None:
        pytest.skip("OpenSSH's ssh-agent is not installed")
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield {"SSH_AUTH_SOCK": str(sock)}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_protected_key_works_through_ssh_agent(
    sandbox: SandboxInfo, tmp_path: Path, agent: dict[str, str]
) -> None:
    key = protected_copy(sandbox, tmp_path)
    empty = videos(sandbox, key, tmp_path / "none", env=agent)
    assert empty.code == 3 and "ssh-add" in empty.one_line_error()  # the agent lacks it
    added = subprocess.run(
        ["ssh-add", sandbox.key], env={**os.environ, **agent}, capture_output=True, check=False
    )
    assert added.returncode == 0, added.stderr
    result = videos(sandbox, key, tmp_path / "v", env=agent)
    assert result.code == 0, result.err
    assert list((tmp_path / "v").rglob("*.md5sum"))


def run_on_terminal(args: list[str], answer: str) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as its controlling terminal; answer the prompt."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKEN_", "LONGTERM_"))}
    env["SSH_AUTH_SOCK"] = ""
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec the CLI
        os.chdir(REPO)
        os.execve(sys.executable, [sys.executable, "-m", "longterm_sync", *args], env)
    seen = b""
    answered = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            if not answered and b"Passphrase for SSH key" in seen:
                os.write(fd, answer.encode() + b"\n")
                answered = True
    else:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")


@pytest.mark.parametrize(("answer", "code"), [(PASSPHRASE, 0), ("not-it", 2)])
def test_protected_key_asks_on_a_terminal(
    sandbox: SandboxInfo, tmp_path: Path, answer: str, code: int
) -> None:
    key = protected_copy(sandbox, tmp_path)
    args = ["download-schedule", "--config", sandbox.config, "--server=sandbox",
            "--mode=video", f"--key={key}", str(tmp_path / "v"), "-q"]  # fmt: skip
    status, seen = run_on_terminal(args, answer)
    assert status == code, seen
    assert "Passphrase for SSH key" in seen
    assert answer not in seen  # not echoed
    if code:
        assert "wrong passphrase for SSH key" in seen and "Traceback" not in seen
    else:
        assert list((tmp_path / "v").rglob("*.md5sum"))
