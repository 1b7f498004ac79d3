"""Fixtures that start a real OpenSSH ``sshd`` on a free loopback port, as the current user.

The sandbox's asyncssh server imitates the platform's media account; this one *is* OpenSSH,
so the transfer engine is also tested against the server production runs (internal-sftp or
``/usr/lib/openssh/sftp-server``, a real shell running GNU ``md5sum``/``mkdir``/``mv``).

Everything lives in a temp folder: host key, client key (the only authorized key), sshd_config,
pid file, log and the media root. Because the account is the current user, whose home is the
real home, ``media_dir`` is the ABSOLUTE path of the temp media root.

``start_sshd`` works outside pytest too (benchmarks); the fixtures wrap it:

* ``openssh_server`` (session scope): one shared sshd. Shared means shared state: a test that
  writes into its media root must use a folder of its own below it and remove it, or use
  ``openssh_factory`` (tests that mirror the whole media root see every leftover);
* ``openssh_factory`` (function scope): ``openssh_factory(**kw)`` starts a fresh one, e.g. to
  kill it mid-transfer; all of them are stopped when the test ends.

Tests skip (with the reason) only when ``/usr/sbin/sshd`` is absent; CI installs it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from longterm_sync.sandbox.ssh import client_options, known_hosts_line

SSHD = Path("/usr/sbin/sshd")
SFTP_SERVER = Path("/usr/lib/openssh/sftp-server")
START_TIMEOUT = 15.0

__all__ = [
    "SFTP_SERVER",
    "SSHD",
    "SshdInfo",
    "openssh_factory",
    "openssh_server",
    "process_children",
    "start_sshd",
    "write_sshd_profile",
]


@dataclass
class SshdInfo:
    """A running sshd and what a client needs; ``stop``/``kill``/``restart`` control it."""

    host: str
    port: int
    user: str
    key: Path
    known_hosts: Path
    media_dir: str
    media_root: Path
    process: subprocess.Popen[bytes]
    sshd_config: Path
    log: Path
    workdir: Path
    sftp_subsystem: str = "internal-sftp"
    _log_handle: Any = field(default=None, repr=False)

    def connect_options(self, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for ``asyncssh.connect``, host key verification on."""
        return client_options(self.host, self.port, self.user, self.key, self.known_hosts, **extra)

    def session_pids(self) -> list[int]:
        """Per-connection sshd processes (and their children) forked by this listener.

        sshd's children call setsid(), so killing the listener's process group would not
        reach them; walk /proc for descendants of our own listener instead.
        """
        children = process_children()
        found: list[int] = []
        todo = list(children.get(self.process.pid, []))
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def kill_sessions(self) -> int:
        """SIGKILL every live connection (an in-flight transfer breaks); return how many."""
        pids = self.session_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def kill(self) -> None:
        """SIGKILL the listener and every connection: the server vanishes mid-anything."""
        self.kill_sessions()
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(timeout=10)
        self._close_log()

    def stop(self) -> None:
        """Stop the listener (SIGTERM) and drop the connections it forked."""
        if self.process.poll() is None:
            pids = self.session_pids()
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._close_log()

    def restart(self) -> None:
        """Stop (if running) and start again on the same port with the same keys."""
        self.stop()
        self.process, self._log_handle = _spawn(self.sshd_config, self.log)
        _wait_ready(self)

    async def arestart(self) -> None:
        """:meth:`restart` from inside a running event loop, without blocking it."""
        await asyncio.to_thread(self.restart)

    def is_running(self) -> bool:
        return self.process.poll() is None

    def _close_log(self) -> None:
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def write_config(self, path: Path, name: str = "sshd") -> Path:
        return write_sshd_profile(self, path, name=name)


def process_children() -> dict[int, list[int]]:
    """Every process's children by parent pid, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def write_sshd_profile(info: SshdInfo, path: Path, *, name: str = "sshd") -> Path:
    """Write a config.toml whose ``[servers.<name>]`` profile reaches this sshd over SSH.

    The REST url is a dummy (nothing listens on port 9): only the SSH settings are used.
    """
    text = (
        f"[servers.{name}]\n"
        f'url = "http://127.0.0.1:9"\n'
        f'token = "sshd-fixture-has-no-rest-token"\n'
        f'ssh_host = "{info.host}"\n'
        f"ssh_port = {info.port}\n"
        f'ssh_user = "{info.user}"\n'
        f'key = "{info.key}"\n'
        f'known_hosts = "{info.known_hosts}"\n'
        f'media_dir = "{info.media_dir}"\n'
    )
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _write_key(path: Path, comment: str) -> asyncssh.SSHKey:
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    path.write_bytes(key.export_private_key())
    path.chmod(0o600)
    path.with_name(path.name + ".pub").write_bytes(key.export_public_key())
    return key


def _sshd_config_text(
    *, host: str, port: int, workdir: Path, user: str, sftp_subsystem: str, extra: str
) -> str:
    # sshd takes only the first SetEnv line: a test's own variables join the fixture's one
    set_env = ["SHLVL=1"]
    kept = []
    for line in extra.splitlines():
        if line.split(None, 1)[:1] == ["SetEnv"]:
            set_env.extend(line.split()[1:])
        else:
            kept.append(line)
    extra = "\n".join(kept) + ("\n" if kept else "")
    return f"""\
# written by tests/fixtures_sshd.py
ListenAddress {host}:{port}
HostKey {workdir / "host_key"}
PidFile {workdir / "sshd.pid"}
AuthorizedKeysFile {workdir / "authorized_keys"}
AllowUsers {user}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
HostbasedAuthentication no
UsePAM no
StrictModes no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitTunnel no
PrintMotd no
PrintLastLog no
UseDNS no
MaxStartups 64:30:128
MaxSessions 64
MaxAuthTries 6
LogLevel VERBOSE
Subsystem sftp {sftp_subsystem}
# bash sources ~/.bashrc for commands run by sshd when SHLVL says it is a top-level shell;
# a developer's .bashrc (pyenv init, a stale rehash lock) then slows or hangs every exec
SetEnv {" ".join(set_env)}
{extra}"""


def _spawn(config: Path, log: Path) -> tuple[subprocess.Popen[bytes], Any]:
    handle = open(log, "ab")  # noqa: SIM115 - closed by SshdInfo.stop/kill
    process = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=handle,
        stderr=handle,
        start_new_session=True,
    )
    return process, handle


async def _login_works(info: SshdInfo) -> None:
    async with asyncssh.connect(**info.connect_options(login_timeout=5)) as conn:
        result = await conn.run("true", check=True, timeout=5)
        assert result.exit_status == 0


def _run_in_thread(coro: Coroutine[Any, Any, None]) -> None:
    """asyncio.run in a thread of its own: works even when the caller is inside a running
    loop (a test restarting sshd in the middle of an async scenario)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


def _wait_ready(info: SshdInfo) -> None:
    """Return once a real key login runs a command; raise with sshd's log otherwise."""
    deadline = time.monotonic() + START_TIMEOUT
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if info.process.poll() is not None:
            break
        try:
            _run_in_thread(_login_works(info))
            return
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            last = exc
            time.sleep(0.05)
    log = info.log.read_text(errors="replace")[-2000:] if info.log.exists() else ""
    info.stop()
    raise RuntimeError(f"sshd did not become ready ({last!r}); log tail:\n{log}")


def _ensure_privsep_dir() -> None:
    """sshd refuses to start as root without /run/sshd (the packaged service creates it)."""
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)


def start_sshd(
    workdir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    sftp_subsystem: str = "internal-sftp",
    extra_config: str = "",
) -> SshdInfo:
    """Start ``sshd -D -e`` with everything under ``workdir``; wait until a login works.

    ``sftp_subsystem``: ``internal-sftp`` or ``str(SFTP_SERVER)``. ``extra_config`` lines are
    appended to sshd_config (e.g. ``Ciphers ...``). Port 0 picks a free port (retried if
    another process grabs it first).
    """
    if not SSHD.exists():
        raise FileNotFoundError(f"{SSHD} is absent (apt-get install openssh-server)")
    _ensure_privsep_dir()
    workdir = workdir.absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    user = pwd.getpwuid(os.geteuid()).pw_name
    host_key = _write_key(workdir / "host_key", "sshd-fixture-host")
    client = _write_key(workdir / "client_key", f"{user}@sshd-fixture")
    (workdir / "authorized_keys").write_bytes(client.export_public_key())
    (workdir / "authorized_keys").chmod(0o600)
    media_root = workdir / "home" / "media" / "videos"
    media_root.mkdir(parents=True, exist_ok=True)
    config = workdir / "sshd_config"
    log = workdir / "sshd.log"
    attempts = 5 if port == 0 else 1
    for attempt in range(attempts):
        chosen = port or _free_port(host)
        config.write_text(
            _sshd_config_text(
                host=host,
                port=chosen,
                workdir=workdir,
                user=user,
                sftp_subsystem=sftp_subsystem,
                extra=extra_config,
            )
        )
        (workdir / "known_hosts").write_text(known_hosts_line(host, chosen, host_key))
        process, handle = _spawn(config, log)
        info = SshdInfo(
            host=host,
            port=chosen,
            user=user,
            key=workdir / "client_key",
            known_hosts=workdir / "known_hosts",
            media_dir=str(media_root),
            media_root=media_root,
            process=process,
            sshd_config=config,
            log=log,
            workdir=workdir,
            sftp_subsystem=sftp_subsystem,
            _log_handle=handle,
        )
        try:
            _wait_ready(info)
            return info
        except RuntimeError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _skip_without_sshd() -> None:
    if not SSHD.exists():
        pytest.skip(f"{SSHD} is absent: install openssh-server (CI does, so CI never skips)")


@pytest.fixture(scope="session")
def openssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdInfo]:
    """One real sshd shared by the whole session (tests must not stop it)."""
    _skip_without_sshd()
    info = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield info
    finally:
        info.stop()


@pytest.fixture
def openssh_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., SshdInfo]]:
    """``openssh_factory(**start_sshd_kwargs)`` -> a fresh sshd, stopped after the test."""
    _skip_without_sshd()
    started: list[SshdInfo] = []

    def factory(**kwargs: Any) -> SshdInfo:
        info = start_sshd(tmp_path_factory.mktemp("sshd"), **kwargs)
        started.append(info)
        return info

    try:
        yield factory
    finally:
        for info in started:
            info.stop()
