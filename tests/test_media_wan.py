"""Issue 11 on the real OpenSSH sshd: the SSH window setting reaches the wire, and uploads
are verified by batched ``md5sum`` commands in which one bad file fails alone."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
from pathlib import Path

import asyncssh
import pytest

from fixtures_sshd import SshdInfo
from longterm_sync.config import SMALL_FILE
from longterm_sync.media import push_up
from longterm_sync.media.sftp import SftpPool, connect
from media_helpers import LIMITS, assert_verified, endpoint_profile, final_files

pytestmark = pytest.mark.sshd

MB = 1 << 20
ASYNCSSH_DEFAULT_WINDOW = 2 * MB


class _Counting(asyncssh.SSHClientSession[bytes]):
    """Counts what is delivered; starts paused so sshd can only fill our window."""

    def __init__(self) -> None:
        self.got = 0
        self.chan: asyncssh.SSHClientChannel[bytes] | None = None

    def connection_made(self, chan: asyncssh.SSHClientChannel[bytes]) -> None:  # type: ignore[override]
        self.chan = chan
        chan.pause_reading()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self.got += len(data)


@pytest.mark.parametrize("window", [3 * MB + 4096, MB])
def test_ssh_window_setting_is_what_sshd_may_send_unacknowledged(
    openssh_server: SshdInfo, window: int
) -> None:
    """sshd streams zeros into a channel we do not read: what it sends before it must wait
    for us is exactly our window (more than asyncssh's 2 MiB default, or less)."""
    limits = dataclasses.replace(LIMITS, ssh_window=window, ssh_packet_size=65536)

    async def body() -> int:
        conn = await connect(endpoint_profile(openssh_server), limits)
        async with conn:
            chan, session = await conn.create_session(
                _Counting, f"head -c {8 * MB} /dev/zero", encoding=None
            )
            assert chan.get_recv_window() == window
            # wait until sshd has filled the window (nothing is delivered while paused)
            filled = 0
            for _ in range(200):
                await asyncio.sleep(0.05)
                buffered = sum(len(d) for d, _ in chan._recv_buf)  # only to know when to stop
                if buffered == filled and buffered:
                    break
                filled = buffered
            await asyncio.sleep(0.2)
            chan.resume_reading()  # delivers what sshd sent before waiting for us
            delivered = session.got
            chan.close()
            return delivered

    delivered = asyncio.run(body())
    assert delivered == window
    if window > ASYNCSSH_DEFAULT_WINDOW:
        assert delivered > ASYNCSSH_DEFAULT_WINDOW


def test_sftp_pool_connections_use_the_window(openssh_server: SshdInfo) -> None:
    limits = dataclasses.replace(LIMITS, ssh_window=5 * MB, sftp_connections=2)

    async def body() -> list[int]:
        async with SftpPool(endpoint_profile(openssh_server), limits) as pool:
            await pool.opened()
            conns = [slot.conn for slot in pool._slots]
            windows = []
            for conn in conns:
                chan, _ = await conn.create_session(asyncssh.SSHClientSession, "true")
                windows.append(chan.get_recv_window())
                chan.close()
            return windows

    assert asyncio.run(body()) == [5 * MB, 5 * MB]


def test_batched_md5sum_catches_the_one_bad_upload_in_the_middle(
    openssh_server: SshdInfo, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Nine uploads verified by a few ``md5sum`` commands, not nine. The fifth file's bytes
    do not match the md5 the upload expects (its cached md5 is stale: the file was changed
    in place, size and mtime restored), exactly what a corruption on the way looks like to
    the verification: that file alone fails, twice tried, and never gets its final name.
    The files are over SMALL_FILE: smaller ones go in tar batches (test_media_batch.py)."""
    src = tmp_path / "src"
    src.mkdir()
    names = [f"v{i}.mp4" for i in range(9)]
    for name in names:
        (src / name).write_bytes(os.urandom(SMALL_FILE + 150_000))
    base = openssh_server.media_root / "batch"
    first = endpoint_profile(openssh_server, media_dir=str(base / "first"))
    up = asyncio.run(push_up(first, LIMITS, src))  # records every local md5 in the cache
    assert up.counts["uploaded"] == 9 and not up.failures, up.lines()

    bad = src / names[4]
    st = bad.stat()
    data = bytearray(bad.read_bytes())
    data[70_000] ^= 0xFF
    bad.write_bytes(bytes(data))
    os.utime(bad, ns=(st.st_atime_ns, st.st_mtime_ns))

    second = endpoint_profile(openssh_server, media_dir=str(base / "second"))
    caplog.set_level(logging.DEBUG, logger="longterm_sync.media.sftp")
    try:
        summary = asyncio.run(push_up(second, LIMITS, src))
        assert summary.counts.get("uploaded") == 8, summary.lines()
        assert summary.counts.get("failed") == 1
        [failure] = summary.failures
        assert failure.item == names[4]
        assert "did not verify" in failure.reason and "md5sum on the server" in failure.reason
        batches = [r.args for r in caplog.records if r.msg.startswith("md5sum of %d files")]
        sizes = [int(args[0]) for args in batches]  # type: ignore[index]
        assert sum(sizes) == 10  # nine files, and the bad one once more
        assert len(sizes) < 10 and max(sizes) >= 3, sizes
        # the bad file shared its first md5sum command with good ones
        paths = [args[2].paths for args in batches]  # type: ignore[index]
        with_bad = [ps for ps in paths if any(names[4] in p for p in ps)]
        assert len(with_bad) == 2 and len(with_bad[0]) > 1, paths
        got = final_files(base / "second")
        assert sorted(n for n in got if not n.endswith(".md5sum")) == sorted(
            n for n in names if n != names[4]
        )
        assert_verified(base / "second")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_listing_by_find_is_the_sftp_listing(openssh_server: SshdInfo) -> None:
    """One ``find`` command instead of a READDIR round trip per 100 entries: the same tree
    as the SFTP walk, refusals and skipped internal files included."""
    from longterm_sync.media.remote import SftpRemote, Tree

    root = openssh_server.media_root / "listing"
    try:
        for rel in ["a.mp4", "a.mp4.md5sum", "sub/b c.mp4", "sub/deep/d.mp4", "é.mp4"]:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(os.urandom(1000))
        (root / "sub" / ".e.mp4.partial").write_bytes(b"x")  # internal: skipped
        (root / "bad\\name").mkdir()  # refused, with what lies below it
        (root / "bad\\name" / "f.mp4").write_bytes(b"f")
        (root / "link.mp4").symlink_to(root / "a.mp4")  # refused: not a regular file
        (root / "empty").mkdir()

        async def body() -> tuple[Tree | None, Tree, list[str]]:
            async with SftpPool(endpoint_profile(openssh_server), LIMITS) as pool:
                remote = SftpRemote(pool, str(root))
                by_find = await remote._walk_by_find()
                by_sftp = await remote._walk_sftp()
                return by_find, by_sftp, sorted((await remote.walk()).files)

        by_find, by_sftp, files = asyncio.run(body())
        assert by_find is not None
        assert by_find.files == by_sftp.files and by_find.sidecars == by_sftp.sidecars
        assert by_find.dirs == by_sftp.dirs == {"sub", "sub/deep", "empty"}
        assert sorted(by_find.refused) == sorted(by_sftp.refused)
        assert files == ["a.mp4", "sub/b c.mp4", "sub/deep/d.mp4", "é.mp4"]
        assert {name for name, _ in by_find.refused} == {"bad\\name", "link.mp4"}
    finally:
        shutil.rmtree(root, ignore_errors=True)
