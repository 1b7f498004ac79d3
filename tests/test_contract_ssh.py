"""SSH contract: what a client of the media account may rely on, on the sandbox and real sshd.

Tests parametrised over ``ssh_target`` run against both the asyncssh sandbox server and the
real OpenSSH sshd (asyncssh as the client, host key verification on); the confinement and
fault-injection tests are about the sandbox only. GNU md5sum output is the reference for the
sandbox's exec, so the ``md5sum`` format is compared with a real run of ``md5sum``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shlex
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
import pytest

from fixtures_sshd import SSHD, SshdInfo, start_sshd
from longterm_sync.errors import ConfigError, UsageError
from longterm_sync.sandbox.ssh import (
    REFUSED,
    SandboxSFTPServer,
    SftpFault,
    SshEndpoint,
    start_ssh_server,
    stop_ssh_server,
)

T = TypeVar("T")


class LoopThread:
    """An event loop in a thread, so a session-long asyncssh server serves sync tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Target:
    """One SSH server under test, seen the way a client sees it."""

    name: str
    options: dict[str, Any]
    media_dir: str  # what a client passes (relative on the sandbox, absolute on sshd)
    media_root: Path  # the same folder on the local disk

    def connect(self, **extra: Any) -> Any:
        return asyncssh.connect(**{**self.options, **extra})

    @classmethod
    def of(cls, endpoint: SshEndpoint) -> Target:
        return cls("sandbox", endpoint.connect_options(), endpoint.media_dir, endpoint.media_root)


@pytest.fixture(scope="module")
def sandbox_ssh(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SshEndpoint, LoopThread]]:
    loop = LoopThread()
    endpoint = loop.run(start_ssh_server(tmp_path_factory.mktemp("sandbox")))
    try:
        yield endpoint, loop
    finally:
        loop.run(stop_ssh_server(endpoint))
        loop.close()


@pytest.fixture(scope="module")
def contract_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdInfo]:
    """A private sshd: these tests write into its media root, which the shared session
    ``openssh_server`` must not see (other tests mirror that whole folder)."""
    if not SSHD.exists():
        pytest.skip(f"{SSHD} is absent: install openssh-server (CI does, so CI never skips)")
    info = start_sshd(tmp_path_factory.mktemp("contract-sshd"))
    try:
        yield info
    finally:
        info.stop()


@pytest.fixture(params=["sandbox", pytest.param("sshd", marks=pytest.mark.sshd)])
def ssh_target(request: pytest.FixtureRequest) -> Target:
    if request.param == "sandbox":
        endpoint, _ = request.getfixturevalue("sandbox_ssh")
        return Target(
            "sandbox", endpoint.connect_options(), endpoint.media_dir, endpoint.media_root
        )
    info: SshdInfo = request.getfixturevalue("contract_sshd")
    return Target("sshd", info.connect_options(), info.media_dir, info.media_root)


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def exec_(target: Target, command: str) -> asyncssh.SSHCompletedProcess:
    async with target.connect() as conn:
        return await conn.run(command, check=False, timeout=30)


# ---------------------------------------------------------------------------------------
# authentication and host keys


def test_key_auth_runs_a_command(ssh_target: Target) -> None:
    (ssh_target.media_root / "auth.txt").write_bytes(b"hello\n")
    result = run(exec_(ssh_target, f"md5sum {ssh_target.media_dir}/auth.txt"))
    assert result.exit_status == 0
    digest = hashlib.md5(b"hello\n").hexdigest()
    assert result.stdout == f"{digest}  {ssh_target.media_dir}/auth.txt\n"


def test_password_is_refused(ssh_target: Target) -> None:
    options = {**ssh_target.options, "client_keys": None, "password": "secret"}
    with pytest.raises(asyncssh.PermissionDenied):
        run(_connect_and_close(options))


def test_keyboard_interactive_is_refused(ssh_target: Target) -> None:
    options = {
        **ssh_target.options,
        "client_keys": None,
        "kbdint_auth": True,
        "password_auth": False,
        "password": "secret",
    }
    with pytest.raises(asyncssh.PermissionDenied):
        run(_connect_and_close(options))


def test_unknown_client_key_is_refused(ssh_target: Target) -> None:
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    options = {**ssh_target.options, "client_keys": [stranger]}
    with pytest.raises(asyncssh.PermissionDenied):
        run(_connect_and_close(options))


def test_host_key_matches_known_hosts(ssh_target: Target) -> None:
    async def fingerprint() -> str:
        async with ssh_target.connect() as conn:
            key = conn.get_server_host_key()
            assert key is not None
            return str(key.export_public_key("openssh").decode().split()[1])

    line = Path(ssh_target.options["known_hosts"]).read_text().split()
    assert line[0] == f"[127.0.0.1]:{ssh_target.options['port']}"
    assert run(fingerprint()) == line[2]


def test_wrong_known_hosts_entry_is_rejected(ssh_target: Target, tmp_path: Path) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{ssh_target.options['port']} {other[0]} {other[1]}\n")
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        run(_connect_and_close({**ssh_target.options, "known_hosts": str(wrong)}))


def test_host_missing_from_known_hosts_is_rejected(ssh_target: Target, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        run(_connect_and_close({**ssh_target.options, "known_hosts": str(empty)}))


async def _connect_and_close(options: dict[str, Any]) -> None:
    async with asyncssh.connect(**options):
        pass


# ---------------------------------------------------------------------------------------
# SFTP


def test_sftp_lists_media_with_sizes_and_mtimes(ssh_target: Target) -> None:
    folder = ssh_target.media_root / "listing"
    folder.mkdir(exist_ok=True)
    (folder / "a.mp4").write_bytes(b"a" * 1234)
    (folder / "b.mp4.md5").write_bytes(b"b" * 10)
    os.utime(folder / "a.mp4", (1_700_000_000, 1_700_000_000))

    async def listing() -> dict[str, tuple[int, int]]:
        async with ssh_target.connect() as conn, conn.start_sftp_client() as sftp:
            names = await sftp.readdir(f"{ssh_target.media_dir}/listing")
            return {
                n.filename: (n.attrs.size, n.attrs.mtime)
                for n in names
                if n.filename not in (".", "..")
            }

    found = run(listing())
    assert found["a.mp4"] == (1234, 1_700_000_000)
    assert found["b.mp4.md5"][0] == 10
    assert set(found) == {"a.mp4", "b.mp4.md5"}


def test_put_get_round_trip_keeps_md5(ssh_target: Target, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "up.bin"
    source.write_bytes(data)

    async def round_trip() -> None:
        async with ssh_target.connect() as conn, conn.start_sftp_client() as sftp:
            await sftp.put(str(source), f"{ssh_target.media_dir}/roundtrip.bin")
            await sftp.get(f"{ssh_target.media_dir}/roundtrip.bin", str(tmp_path / "down.bin"))

    run(round_trip())
    want = hashlib.md5(data).hexdigest()
    assert hashlib.md5((ssh_target.media_root / "roundtrip.bin").read_bytes()).hexdigest() == want
    assert hashlib.md5((tmp_path / "down.bin").read_bytes()).hexdigest() == want


def test_md5sum_output_equals_gnu_md5sum(ssh_target: Target) -> None:
    names = ["plain.mp4", "with space.mp4", "back\\slash.mp4"]
    for i, name in enumerate(names):
        (ssh_target.media_root / name).write_bytes(bytes([i]) * (1000 + i))
    missing = "missing.mp4"
    args = [f"{ssh_target.media_dir}/{n}" for n in [*names, missing]]
    result = run(exec_(ssh_target, "md5sum " + " ".join(shlex.quote(a) for a in args)))
    # GNU md5sum, run locally from the home with the same relative/absolute operands.
    cwd = ssh_target.media_root.parent.parent if ssh_target.name == "sandbox" else None
    gnu = subprocess.run(["md5sum", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert result.stdout == gnu.stdout
    assert result.stderr == gnu.stderr
    assert result.exit_status == gnu.returncode == 1


def test_mkdir_p_and_mv_inside_media(ssh_target: Target) -> None:
    media = ssh_target.media_dir
    (ssh_target.media_root / "tomove.part").write_bytes(b"payload")
    (ssh_target.media_root / "existing.mp4").write_bytes(b"old")
    commands = [
        f"mkdir -p {media}/p1/p2/p3 {media}/q1",
        f"mkdir -p {media}/p1/p2",  # already there: still fine
        f"mv {media}/tomove.part {media}/p1/p2/p3/final.mp4",
        f"mv -f {media}/p1/p2/p3/final.mp4 {media}/existing.mp4",  # overwrite
    ]
    for command in commands:
        result = run(exec_(ssh_target, command))
        assert (result.exit_status, result.stderr) == (0, ""), command
    assert (ssh_target.media_root / "q1").is_dir()
    assert (ssh_target.media_root / "existing.mp4").read_bytes() == b"payload"
    assert not (ssh_target.media_root / "tomove.part").exists()
    missing = run(exec_(ssh_target, f"mv {media}/nothing {media}/x"))
    assert missing.exit_status == 1
    assert "nothing" in str(missing.stderr)


# ---------------------------------------------------------------------------------------
# sandbox confinement


@pytest.fixture
def sandbox(sandbox_ssh: tuple[SshEndpoint, LoopThread]) -> Target:
    endpoint, _ = sandbox_ssh
    return Target.of(endpoint)


@pytest.mark.parametrize(
    "command",
    [
        "rm -rf /",
        "cat /etc/passwd",
        "md5sum ../../x",
        "md5sum media/videos/../../../x",
        "md5sum /etc/passwd",
        "mv media/videos/victim.mp4 ../victim.mp4",
        "mv media/videos/victim.mp4 /tmp/victim.mp4",
        "sh -c 'md5sum media/videos/victim.mp4'",
        "md5sum media/videos/victim.mp4; rm media/videos/victim.mp4",
        "md5sum media/videos/victim.mp4 && rm media/videos/victim.mp4",
        "md5sum media/videos/victim.mp4 | tee x",
        "md5sum media/videos/victim.mp4 > media/videos/out",
        "md5sum $(cat /etc/passwd)",
        "md5sum `id`",
        "mkdir media/videos/notp",
        "mkdir -p /tmp/escape",
        "mv -t media/videos media/videos/victim.mp4",
        "mv media/videos/victim.mp4",
        "ls media/videos",
        "",
    ],
)
def test_sandbox_refuses(sandbox: Target, command: str) -> None:
    victim = sandbox.media_root / "victim.mp4"
    victim.write_bytes(b"victim")
    result = run(exec_(sandbox, command))
    assert result.exit_status == REFUSED
    assert result.stdout == ""
    assert str(result.stderr).startswith("refused: ")
    assert str(result.stderr).count("\n") == 1
    assert victim.read_bytes() == b"victim"
    assert not (sandbox.media_root / "out").exists()
    assert not (sandbox.media_root / "notp").exists()
    assert not Path("/tmp/escape").exists()


def test_sandbox_refuses_a_shell_session(sandbox: Target) -> None:
    async def shell() -> asyncssh.SSHCompletedProcess:
        async with sandbox.connect() as conn:
            process = await conn.create_process(term_type=None)
            return await process.wait(check=False, timeout=10)

    result = run(shell())
    assert result.exit_status == REFUSED
    assert "interactive shell" in str(result.stderr)


def test_sandbox_refuses_a_symlink_leading_outside(sandbox: Target, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    link = sandbox.media_root / "link.mp4"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(secret)
    result = run(exec_(sandbox, "md5sum media/videos/link.mp4"))
    assert result.exit_status == REFUSED

    async def read_link() -> bytes:
        async with (
            sandbox.connect() as conn,
            conn.start_sftp_client() as sftp,
            sftp.open("media/videos/link.mp4", "rb") as fh,
        ):
            return bytes(await fh.read())

    with pytest.raises(asyncssh.SFTPPermissionDenied):
        run(read_link())


def test_sandbox_sftp_is_chrooted(sandbox: Target) -> None:
    async def probe() -> tuple[list[str], str, list[str], bool]:
        async with sandbox.connect() as conn, conn.start_sftp_client() as sftp:
            top = sorted(await sftp.listdir("/"))
            real = await sftp.realpath("../../..")
            above = sorted(await sftp.listdir("../../.."))
            passwd = await sftp.exists("/etc/passwd")
            return top, real, above, passwd

    top, real, above, passwd = run(probe())
    assert top == [".", "..", "media"]
    assert real == "/"
    assert above == top
    assert passwd is False


def test_sandbox_relative_and_absolute_paths_agree(sandbox: Target) -> None:
    (sandbox.media_root / "same.mp4").write_bytes(b"same")

    async def both() -> tuple[int, int]:
        async with sandbox.connect() as conn, conn.start_sftp_client() as sftp:
            a = await sftp.stat("media/videos/same.mp4")
            b = await sftp.stat("/media/videos/same.mp4")
            return int(a.size or 0), int(b.size or 0)

    assert run(both()) == (4, 4)
    result = run(exec_(sandbox, "md5sum /media/videos/same.mp4"))
    assert result.stdout == f"{hashlib.md5(b'same').hexdigest()}  /media/videos/same.mp4\n"


def test_sandbox_other_user_name_is_refused(sandbox: Target) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        run(_connect_and_close({**sandbox.options, "username": "root"}))


# ---------------------------------------------------------------------------------------
# fault injection (sandbox)


@pytest.fixture
def faulty(sandbox_ssh: tuple[SshEndpoint, LoopThread]) -> Iterator[Callable[[SftpFault], Target]]:
    endpoint, _ = sandbox_ssh

    def install(fault: SftpFault) -> Target:
        endpoint.sftp_factory = fault.factory
        return Target(
            "sandbox", endpoint.connect_options(), endpoint.media_dir, endpoint.media_root
        )

    try:
        yield install
    finally:
        endpoint.sftp_factory = SandboxSFTPServer


def _get(target: Target, remote: str, local: Path, **kwargs: Any) -> None:
    async def go() -> None:
        async with target.connect() as conn, conn.start_sftp_client() as sftp:
            await sftp.get(f"{target.media_dir}/{remote}", str(local), **kwargs)

    run(go())


def _put(target: Target, local: Path, remote: str, **kwargs: Any) -> None:
    async def go() -> None:
        async with target.connect() as conn, conn.start_sftp_client() as sftp:
            await sftp.put(str(local), f"{target.media_dir}/{remote}", **kwargs)

    run(go())


SIZE = 1024 * 1024 + 5


@pytest.fixture
def payload(sandbox_ssh: tuple[SshEndpoint, LoopThread]) -> bytes:
    endpoint, _ = sandbox_ssh
    data = os.urandom(SIZE)
    (endpoint.media_root / "fault.mp4").write_bytes(data)
    return data


def test_fault_fail_read_after_n_bytes(
    faulty: Callable[[SftpFault], Target], payload: bytes, tmp_path: Path
) -> None:
    fault = SftpFault("fail_read", after=300_000)
    target = faulty(fault)
    with pytest.raises(asyncssh.SFTPFailure, match="injected read failure"):
        _get(target, "fault.mp4", tmp_path / "x")
    assert fault.hits == 1


def test_fault_truncate_read_is_only_caught_without_sparse(
    faulty: Callable[[SftpFault], Target], payload: bytes, tmp_path: Path
) -> None:
    target = faulty(SftpFault("truncate_read", after=100_000))
    # asyncssh's default (sparse=True) accepts the short file silently: clients must
    # pass sparse=False or check size and md5 themselves.
    _get(target, "fault.mp4", tmp_path / "sparse")
    assert (tmp_path / "sparse").stat().st_size == 100_000
    with pytest.raises(asyncssh.SFTPFailure, match="Unexpected EOF"):
        _get(target, "fault.mp4", tmp_path / "strict", sparse=False)


def test_fault_corrupt_read_flips_one_byte(
    faulty: Callable[[SftpFault], Target], payload: bytes, tmp_path: Path
) -> None:
    target = faulty(SftpFault("corrupt_read", after=777_777))
    _get(target, "fault.mp4", tmp_path / "c")
    got = (tmp_path / "c").read_bytes()
    assert len(got) == SIZE
    diff = [i for i in range(SIZE) if got[i] != payload[i]]
    assert diff == [777_777]


def test_fault_fail_write_after_n_bytes(
    faulty: Callable[[SftpFault], Target], tmp_path: Path
) -> None:
    target = faulty(SftpFault("fail_write", after=200_000))
    source = tmp_path / "up.bin"
    source.write_bytes(os.urandom(SIZE))
    with pytest.raises(asyncssh.SFTPFailure, match="injected write failure"):
        _put(target, source, "upfail.bin")
    assert (target.media_root / "upfail.bin").stat().st_size <= 200_000


def test_fault_times_and_match_bound_the_damage(
    faulty: Callable[[SftpFault], Target], payload: bytes, tmp_path: Path
) -> None:
    fault = SftpFault("fail_read", after=0, match="*.mp4", times=1)
    target = faulty(fault)
    (target.media_root / "fault.md5").write_text("sidecar")
    _get(target, "fault.md5", tmp_path / "side")  # not matched: served normally
    with pytest.raises(asyncssh.SFTPFailure):
        _get(target, "fault.mp4", tmp_path / "first")
    _get(target, "fault.mp4", tmp_path / "second")  # the retry succeeds
    assert (tmp_path / "second").read_bytes() == payload
    assert fault.hits == 1


# ---------------------------------------------------------------------------------------
# GNU-compatible messages, restarts, shutdown, uvloop


def test_failure_messages_equal_gnu_in_c_locale(ssh_target: Target) -> None:
    (ssh_target.media_root / "gf").write_bytes(b"file")
    m = ssh_target.media_dir
    commands = [
        f"mkdir -p {m}/gf/sub",
        f"mkdir -p {m}/gf",
        f"mv {m}/nothing {m}/x",
        f"mv {m}/gf {m}/nodir/x",
        f"mv {m}/gf {m}/gf",
        f"md5sum {m}",
    ]
    cwd = ssh_target.media_root.parent.parent
    env = {**os.environ, "LC_ALL": "C"}
    for command in commands:
        result = run(exec_(ssh_target, command))
        gnu = subprocess.run(
            shlex.split(command), cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
        assert (result.exit_status, result.stdout, result.stderr) == (
            gnu.returncode,
            gnu.stdout,
            gnu.stderr,
        ), command
    assert (ssh_target.media_root / "gf").read_bytes() == b"file"


def test_sandbox_mv_moves_a_link_not_its_target(sandbox: Target) -> None:
    target = sandbox.media_root / "link-target.mp4"
    target.write_bytes(b"target")
    link = sandbox.media_root / "alink.mp4"
    if link.is_symlink():
        link.unlink()
    link.symlink_to("link-target.mp4")
    result = run(exec_(sandbox, "mv media/videos/alink.mp4 media/videos/moved-link.mp4"))
    assert result.exit_status == 0
    assert (sandbox.media_root / "moved-link.mp4").is_symlink()
    assert target.read_bytes() == b"target"


def test_sandbox_mkdir_never_creates_a_folder_outside_on_the_way(sandbox: Target) -> None:
    home = sandbox.media_root.parent.parent
    result = run(exec_(sandbox, "mkdir -p outside_new/../media/videos/x"))
    assert result.exit_status == REFUSED
    assert not (home / "outside_new").exists()


def test_restart_keeps_keys_and_rewrites_known_hosts(tmp_path: Path) -> None:
    async def start_stop() -> tuple[int, bytes, bytes, str]:
        endpoint = await start_ssh_server(tmp_path)
        try:
            result = await exec_(Target.of(endpoint), "mkdir -p media/videos/r")
            assert result.exit_status == 0
            return (
                endpoint.port,
                endpoint.host_key.read_bytes(),
                endpoint.client_key.read_bytes(),
                endpoint.known_hosts.read_text(),
            )
        finally:
            await stop_ssh_server(endpoint)

    port1, host1, client1, known1 = run(start_stop())
    port2, host2, client2, known2 = run(start_stop())
    assert (host1, client1) == (host2, client2)
    assert known1.startswith(f"[127.0.0.1]:{port1} ssh-ed25519 ")
    assert known2.startswith(f"[127.0.0.1]:{port2} ssh-ed25519 ")
    assert known1.split()[1:] == known2.split()[1:]
    assert (tmp_path / "ssh" / "client_key").stat().st_mode & 0o077 == 0
    assert (tmp_path / "ssh" / "client_key.pub").is_file()


def test_occupied_port_raises_oserror(tmp_path: Path) -> None:
    async def twice() -> None:
        first = await start_ssh_server(tmp_path / "a")
        try:
            await start_ssh_server(tmp_path / "b", port=first.port)
        finally:
            await stop_ssh_server(first)

    with pytest.raises(OSError):
        run(twice())


def test_stop_drops_live_connections(tmp_path: Path) -> None:
    async def scenario() -> bool:
        endpoint = await start_ssh_server(tmp_path)
        async with Target.of(endpoint).connect() as conn:
            await stop_ssh_server(endpoint)
            try:
                await conn.run("md5sum media/videos", timeout=5)
            except (asyncssh.Error, OSError):
                return True
            return False

    assert run(scenario())


def test_sandbox_serves_under_uvloop(tmp_path: Path) -> None:
    uvloop = pytest.importorskip("uvloop")
    data = os.urandom(2 * 1024 * 1024 + 3)
    (tmp_path / "up.bin").write_bytes(data)

    async def scenario() -> str:
        endpoint = await start_ssh_server(tmp_path / "data")
        target = Target.of(endpoint)
        try:
            async with target.connect() as conn, conn.start_sftp_client() as sftp:
                await sftp.put(str(tmp_path / "up.bin"), "media/videos/uv.bin")
                await sftp.get("media/videos/uv.bin", str(tmp_path / "down.bin"))
                result = await conn.run("md5sum media/videos/uv.bin", check=True)
                return str(result.stdout)
        finally:
            await stop_ssh_server(endpoint)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        out = runner.run(scenario())
    assert out == f"{hashlib.md5(data).hexdigest()}  media/videos/uv.bin\n"
    assert (tmp_path / "down.bin").read_bytes() == data


def test_damaged_key_is_a_one_line_config_error(tmp_path: Path) -> None:
    (tmp_path / "ssh").mkdir()
    (tmp_path / "ssh" / "host_key").write_text("not a key\n")
    with pytest.raises(ConfigError, match="host_key is unreadable or not a private key"):
        run(start_ssh_server(tmp_path))


def test_fault_stall_read_cancel_alone_hangs_abort_frees(
    faulty: Callable[[SftpFault], Target], payload: bytes, tmp_path: Path
) -> None:
    """A hung server: cancelling asyncssh's get() does not return (its cleanup waits for the
    server to answer FXP_CLOSE, which a serial server never does); aborting the connection
    does. Pins the library behaviour a transfer timeout has to be built on."""
    target = faulty(SftpFault("stall_read", after=500_000, stall_seconds=5))

    async def scenario() -> tuple[bool, BaseException | None]:
        conn = await target.connect()
        sftp = await conn.start_sftp_client()
        task = asyncio.ensure_future(
            sftp.get(f"{target.media_dir}/fault.mp4", str(tmp_path / "s"), sparse=False)
        )
        await asyncio.sleep(0.5)
        task.cancel()
        await asyncio.sleep(0.5)
        hung = not task.done()
        conn.abort()
        try:
            await asyncio.wait_for(task, 3)
        except (asyncssh.Error, asyncio.CancelledError) as exc:
            return hung, exc
        return hung, None

    hung, error = run(scenario())
    assert hung
    assert isinstance(error, asyncssh.SFTPConnectionLost | asyncio.CancelledError)
    target = faulty(SftpFault("stall_read", after=500_000, stall_seconds=0.2))
    _get(target, "fault.mp4", tmp_path / "slow", sparse=False)
    assert (tmp_path / "slow").read_bytes() == payload


def test_fault_spec_parses_for_a_command_line_flag() -> None:
    fault = SftpFault.parse("fail_read:after=1048576,times=1,match=*.mp4")
    assert (fault.kind, fault.after, fault.times, fault.match) == ("fail_read", 1048576, 1, "*.mp4")
    assert SftpFault.parse("stall_read:stall_seconds=0.5").stall_seconds == 0.5
    assert SftpFault.parse("corrupt_read").after == 0
    for bad in ("explode", "fail_read:after=x", "fail_read:speed=3", "fail_read:after"):
        with pytest.raises(UsageError):
            SftpFault.parse(bad)


def test_rename_semantics_match(ssh_target: Target) -> None:
    """Plain SFTP rename refuses to overwrite; posix-rename@openssh.com overwrites: the
    upload's partial -> final step must use the latter (or remove first)."""
    m = ssh_target.media_dir
    (ssh_target.media_root / "ren-src").write_bytes(b"new")
    (ssh_target.media_root / "ren-dst").write_bytes(b"old")

    async def renames() -> tuple[type[BaseException] | None, bytes]:
        async with ssh_target.connect() as conn, conn.start_sftp_client() as sftp:
            error: type[BaseException] | None = None
            try:
                await sftp.rename(f"{m}/ren-src", f"{m}/ren-dst")
            except asyncssh.SFTPError as exc:
                error = type(exc)
            await sftp.posix_rename(f"{m}/ren-src", f"{m}/ren-dst")
            async with sftp.open(f"{m}/ren-dst", "rb") as fh:
                return error, bytes(await fh.read())

    error, content = run(renames())
    assert error is not None and issubclass(error, asyncssh.SFTPFailure)
    assert content == b"new"
    assert not (ssh_target.media_root / "ren-src").exists()


def test_setstat_mtime_and_stat_agree(ssh_target: Target) -> None:
    (ssh_target.media_root / "times.mp4").write_bytes(b"t")

    async def times() -> tuple[int, int]:
        async with ssh_target.connect() as conn, conn.start_sftp_client() as sftp:
            await sftp.utime(f"{ssh_target.media_dir}/times.mp4", (1_600_000_000, 1_650_000_000))
            attrs = await sftp.stat(f"{ssh_target.media_dir}/times.mp4")
            return int(attrs.mtime or 0), int(attrs.size or 0)

    assert run(times()) == (1_650_000_000, 1)
    assert (ssh_target.media_root / "times.mp4").stat().st_mtime == 1_650_000_000


def test_missing_file_errors_match(ssh_target: Target) -> None:
    async def probe() -> list[type[BaseException]]:
        errors: list[type[BaseException]] = []
        async with ssh_target.connect() as conn, conn.start_sftp_client() as sftp:
            for call in (
                sftp.stat(f"{ssh_target.media_dir}/nope.mp4"),
                sftp.listdir(f"{ssh_target.media_dir}/nodir"),
                sftp.remove(f"{ssh_target.media_dir}/nope.mp4"),
            ):
                try:
                    await call
                except asyncssh.SFTPError as exc:
                    errors.append(type(exc))
        return errors

    assert run(probe()) == [asyncssh.SFTPNoSuchFile] * 3


def test_parallel_transfers_over_several_connections(ssh_target: Target, tmp_path: Path) -> None:
    """What the media pool does: a few connections, several files in flight on each."""
    folder = ssh_target.media_root / "parallel"
    folder.mkdir(exist_ok=True)
    blobs = {f"f{i}.mp4": os.urandom(512 * 1024 + i) for i in range(12)}
    for name, data in blobs.items():
        (folder / name).write_bytes(data)

    async def fetch_all() -> None:
        async def one_connection(names: list[str]) -> None:
            async with (
                ssh_target.connect() as conn,
                conn.start_sftp_client() as sftp,
                asyncio.TaskGroup() as group,
            ):
                for name in names:
                    remote = f"{ssh_target.media_dir}/parallel/{name}"
                    group.create_task(sftp.get(remote, str(tmp_path / name), sparse=False))

        names = sorted(blobs)
        async with asyncio.TaskGroup() as group:
            for k in range(3):
                group.create_task(one_connection(names[k::3]))

    run(fetch_all())
    for name, data in blobs.items():
        assert (tmp_path / name).read_bytes() == data
