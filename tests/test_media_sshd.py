"""The media engine against the real OpenSSH sshd: round trip, kill mid-transfer, disk full."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures_sshd import SshdInfo
from longterm_sync.errors import ConnectError, HostKeyError
from longterm_sync.events import Event, Progress
from longterm_sync.media import mirror_down, push_up
from media_helpers import LIMITS, assert_verified, endpoint_profile, final_files, partials, publish

pytestmark = pytest.mark.sshd

MB = 1 << 20


def test_round_trip_with_remote_md5sum(openssh_server: SshdInfo, tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "dest"
    prof = endpoint_profile(openssh_server, media_dir=str(openssh_server.media_root / "rt"))
    videos = {"x.mp4": os.urandom(700_000), "s/y.mp4": os.urandom(5 * MB), "s/t/z.mp4": b"z"}
    for rel, data in videos.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)

    async def body() -> None:
        up = await push_up(prof, LIMITS, src)
        assert up.counts["uploaded"] == 3 and not up.failures, up.lines()
        assert not up.warnings  # md5sum over exec was available: no size-only fallback
        again = await push_up(prof, LIMITS, src)
        assert again.counts == {"skipped (unchanged)": 3}
        down = await mirror_down(prof, LIMITS, dest)
        assert down.counts == {"downloaded": 3}
        noop = await mirror_down(prof, LIMITS, dest)
        assert noop.counts == {"skipped (unchanged)": 3}

    asyncio.run(body())
    got = final_files(dest)
    assert {rel: got[rel] for rel in videos} == videos
    assert_verified(dest)
    assert_verified(openssh_server.media_root / "rt")
    # mtimes travel both ways, as rsync -t does: what makes the no-change check cheap.
    for rel in videos:
        assert int((dest / rel).stat().st_mtime) == int((src / rel).stat().st_mtime)


def test_unknown_host_key_on_real_sshd(openssh_server: SshdInfo, tmp_path: Path) -> None:
    prof = endpoint_profile(openssh_server, known_hosts=tmp_path / "empty_known_hosts")
    with pytest.raises(HostKeyError, match="SHA256:") as err:
        asyncio.run(mirror_down(prof, LIMITS, tmp_path / "d"))
    assert "--accept-new-host-key" in str(err.value)


def _no_stray_asyncio_errors(caplog: pytest.LogCaptureFixture) -> None:
    """asyncio logs unretrieved task errors on stderr: that would break the one-line rule.
    (Its warnings about writes to a dead socket are silenced by the CLI's logging setup.)"""
    gc.collect()
    stray = [
        r.getMessage() for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.ERROR
    ]
    assert not stray, stray


class _KillAt:
    """Kills every sshd session once ``at`` bytes of the job have arrived."""

    def __init__(self, info: SshdInfo, at: int) -> None:
        self.info, self.at, self.killed, self.done = info, at, 0, 0

    def emit(self, event: Event) -> None:
        if isinstance(event, Progress):
            self.done += event.bytes
            if not self.killed and self.done >= self.at:
                self.killed = self.info.kill_sessions()


def test_sshd_killed_mid_256mib_transfer_then_resume(
    openssh_factory: Callable[..., SshdInfo], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gc.collect()  # tasks of earlier tests' servers, destroyed now, are not this test's strays
    caplog.clear()
    info = openssh_factory()
    size = 256 * MB
    block = os.urandom(MB)
    digest = hashlib.md5()
    path = info.media_root / "huge.mp4"
    with open(path, "wb") as fh:
        for i in range(size // MB):
            chunk = block[i:] + block[:i]
            fh.write(chunk)
            digest.update(chunk)
    (info.media_root / "huge.mp4.md5sum").write_text(digest.hexdigest() + "\n")
    dest = tmp_path / "dest"
    prof = endpoint_profile(info)
    killer = _KillAt(info, 96 * MB)
    with pytest.raises(ConnectError, match="lost") as err:
        asyncio.run(mirror_down(prof, LIMITS, dest, reporter=killer))
    assert killer.killed >= 1
    assert "\n" not in str(err.value)
    _no_stray_asyncio_errors(caplog)
    assert not (dest / "huge.mp4").exists()  # nothing unverified under the final name
    [partial] = partials(dest)
    have = (dest / partial).stat().st_size
    assert 0 < have < size

    again = asyncio.run(mirror_down(prof, LIMITS, dest))
    assert again.counts == {"downloaded": 1}
    assert again.details["resumed_bytes"] == have
    assert partials(dest) == []
    assert_verified(dest)


DISK_FULL_SCRIPT = textwrap.dedent(
    """
    import asyncio, resource, signal, sys
    from pathlib import Path
    from longterm_sync.config import Limits, ServerProfile
    from longterm_sync.errors import LongtermError
    from longterm_sync.media import mirror_down

    host, port, user, key, known, media, dest = sys.argv[1:]
    profile = ServerProfile(name="t", url="http://127.0.0.1:9", ssh_user=user, ssh_host=host,
                            ssh_port=int(port), key=Path(key), known_hosts=Path(known),
                            media_dir=media)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    try:
        asyncio.run(mirror_down(profile, Limits(), Path(dest)))
    except LongtermError as exc:
        print(exc)
        sys.exit(int(exc.exit_code))
    """
)


def test_local_disk_full_is_one_line_and_leaves_nothing(
    openssh_server: SshdInfo, tmp_path: Path
) -> None:
    """RLIMIT_FSIZE stands in for a full disk (no root mount needed); errno EFBIG."""
    media = openssh_server.media_root / "diskfull"
    publish(media, "big.mp4", os.urandom(3 * MB))
    dest = tmp_path / "dest"
    info = openssh_server
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            DISK_FULL_SCRIPT,
            info.host,
            str(info.port),
            info.user,
            str(info.key),
            str(info.known_hosts),
            str(media),
            str(dest),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 4, proc.stderr
    assert proc.stdout.count("\n") == 1 and "disk full" in proc.stdout
    assert "Traceback" not in proc.stderr
    assert final_files(dest) == {} and partials(dest) == []


def test_account_without_md5sum_falls_back_to_size_and_full_reads_back(
    openssh_factory: Callable[..., SshdInfo], tmp_path: Path
) -> None:
    """An account that cannot run md5sum (here: no PATH to find it in; the shell's
    builtins still work): uploads are verified by size (said in a warning), or by reading
    them back with --verify=full."""
    info = openssh_factory(extra_config="SetEnv PATH=/nonexistent\n")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.mp4").write_bytes(os.urandom(300_000))
    prof = endpoint_profile(info)
    by_size = asyncio.run(push_up(prof, LIMITS, src))
    assert by_size.counts["uploaded"] == 1 and not by_size.failures
    assert any("no md5sum command" in w for w in by_size.warnings)
    (src / "b.mp4").write_bytes(os.urandom(200_000))
    full = asyncio.run(push_up(prof, LIMITS, src, verify="full"))
    assert full.counts["uploaded"] == 1 and not full.failures and not full.warnings
    assert_verified(info.media_root)


def test_upload_replaces_a_server_copy_without_sidecar(
    openssh_server: SshdInfo, tmp_path: Path
) -> None:
    media = openssh_server.media_root / "nosidecar"
    publish(media, "a.mp4", b"old", sidecar=None)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.mp4").write_bytes(b"new")
    summary = asyncio.run(push_up(endpoint_profile(openssh_server, media_dir=str(media)),
                                  LIMITS, src))  # fmt: skip
    assert summary.counts["uploaded"] == 1
    assert (media / "a.mp4").read_bytes() == b"new"
    assert_verified(media)


def test_sshd_killed_while_two_processes_share_the_download(
    openssh_factory: Callable[..., SshdInfo], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Both the parent and its helper process lose their connections: one-line error,
    no final name for an unverified file, and the re-run resumes and completes."""
    info = openssh_factory()
    videos = {f"v{i}.mp4": os.urandom(48 * MB) for i in range(3)}
    for rel, data in videos.items():
        publish(info.media_root, rel, data)
    dest = tmp_path / "dest"
    prof = endpoint_profile(info)
    killer = _KillAt(info, 40 * MB)
    with pytest.raises(ConnectError, match="lost"):
        asyncio.run(mirror_down(prof, LIMITS, dest, reporter=killer))
    assert killer.killed >= 2  # the parent's session and the helper's
    _no_stray_asyncio_errors(caplog)
    for rel in videos:
        assert not (dest / rel).exists() or (dest / rel).read_bytes() == videos[rel]
    again = asyncio.run(mirror_down(prof, LIMITS, dest))
    assert again.details.get("processes") in (None, 2)
    assert not again.failures
    assert {rel: (dest / rel).read_bytes() for rel in videos} == videos
    assert partials(dest) == []
