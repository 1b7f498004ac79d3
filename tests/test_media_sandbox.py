"""The media engine against the asyncssh sandbox, including fault-injecting SFTP servers."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from longterm_sync.errors import (
    AuthError,
    ConfigError,
    ConnectError,
    HostKeyError,
    LocalIOError,
    RemoteError,
)
from longterm_sync.events import Planned, Progress, RecordingReporter
from longterm_sync.media import list_remote_videos, mirror_down, push_up
from longterm_sync.sandbox.ssh import SandboxSFTPServer, SftpFault, SshEndpoint
from longterm_sync.summary import Summary
from media_helpers import (
    LIMITS,
    assert_verified,
    endpoint_profile,
    final_files,
    md5,
    partials,
    publish,
    with_sandbox,
)

MB = 1 << 20


def _videos() -> dict[str, bytes]:
    return {
        "a.mp4": os.urandom(300_000),
        "sub/b.mp4": os.urandom(5 * MB + 17),  # above the threaded-sink threshold
        "sub/deeper/c.mp4": b"",
    }


def test_mirror_down_then_nothing_to_do(tmp_path: Path) -> None:
    videos = _videos()
    dest = tmp_path / "dest"

    async def body(ep: SshEndpoint) -> tuple[Summary, Summary, RecordingReporter]:
        for rel, data in videos.items():
            publish(ep.media_root, rel, data)
        rec = RecordingReporter()
        first = await mirror_down(endpoint_profile(ep), LIMITS, dest, reporter=rec)
        second = await mirror_down(endpoint_profile(ep), LIMITS, dest)
        return first, second, rec

    first, second, rec = with_sandbox(tmp_path, body)
    assert first.counts == {"downloaded": 3}, first.lines()
    assert first.bytes == sum(len(v) for v in videos.values())
    assert first.details["md5"] == {rel: md5(data) for rel, data in sorted(videos.items())}
    got = final_files(dest)
    for rel, data in videos.items():
        assert got[rel] == data
    assert_verified(dest)
    assert partials(dest) == []
    assert second.counts == {"skipped (unchanged)": 3}, second.lines()
    assert second.details["md5"] == first.details["md5"]
    assert Planned(items=3, bytes=first.bytes, job="videos") in rec.events
    assert sum(e.bytes for e in rec.of(Progress)) == first.bytes


def test_changed_on_server_is_fetched_again_and_local_extra_kept_or_deleted(
    tmp_path: Path,
) -> None:
    dest = tmp_path / "dest"

    async def body(ep: SshEndpoint) -> tuple[Summary, Summary, Summary]:
        publish(ep.media_root, "a.mp4", b"one" * 1000)
        publish(ep.media_root, "gone.mp4", b"bye")
        prof = endpoint_profile(ep)
        await mirror_down(prof, LIMITS, dest)
        # Same size, different content: only the md5 step of the ladder can tell.
        publish(ep.media_root, "a.mp4", b"two" * 1000, mtime=2_000_000_000)
        (ep.media_root / "gone.mp4").unlink()
        (ep.media_root / "gone.mp4.md5sum").unlink()
        changed = await mirror_down(prof, LIMITS, dest)
        kept = await mirror_down(prof, LIMITS, dest)
        deleted = await mirror_down(prof, LIMITS, dest, delete=True)
        return changed, kept, deleted

    changed, kept, deleted = with_sandbox(tmp_path, body)
    assert changed.counts == {"downloaded": 1, "kept (gone from the server)": 1}
    assert (dest / "a.mp4").read_bytes() == b"two" * 1000
    assert kept.counts == {"skipped (unchanged)": 1, "kept (gone from the server)": 1}
    assert deleted.counts == {"skipped (unchanged)": 1, "deleted": 1}
    assert not (dest / "gone.mp4").exists() and not (dest / "gone.mp4.md5sum").exists()


def test_corrupted_once_is_retried_and_verified(tmp_path: Path) -> None:
    data = os.urandom(2 * MB)
    fault = SftpFault("corrupt_read", after=MB + 5, match="clip.mp4", times=1)

    async def body(ep: SshEndpoint) -> Summary:
        publish(ep.media_root, "clip.mp4", data)
        return await mirror_down(endpoint_profile(ep), LIMITS, tmp_path / "dest")

    summary = with_sandbox(tmp_path, body, sftp_factory=fault.factory)
    assert fault.hits == 1
    assert summary.counts == {"downloaded": 1} and not summary.failures
    assert (tmp_path / "dest" / "clip.mp4").read_bytes() == data


def test_corrupted_video_on_server_fails_and_keeps_old_copy(tmp_path: Path) -> None:
    """The server's video no longer matches its sidecar: two tries, then a reported failure."""
    dest = tmp_path / "dest"
    old = b"old content"

    async def body(ep: SshEndpoint) -> Summary:
        publish(ep.media_root, "clip.mp4", old)
        await mirror_down(endpoint_profile(ep), LIMITS, dest)
        publish(ep.media_root, "clip.mp4", b"new content, damaged", sidecar=md5(b"x"), mtime=2e9)
        return await mirror_down(endpoint_profile(ep), LIMITS, dest)

    summary = with_sandbox(tmp_path, body)
    assert summary.exit_code == 1
    [failure] = summary.failures
    assert failure.item == "clip.mp4"
    assert "corrupted on transfer: md5 differs" in failure.reason
    assert "\n" not in failure.reason
    assert (dest / "clip.mp4").read_bytes() == old
    assert partials(dest) == []
    assert_verified(dest)


def test_missing_or_bad_sidecar_is_a_reported_failure(tmp_path: Path) -> None:
    dest = tmp_path / "dest"

    async def body(ep: SshEndpoint) -> Summary:
        publish(ep.media_root, "nosidecar.mp4", b"x" * 100, sidecar=None)
        publish(ep.media_root, "garbage.mp4", b"y" * 100, sidecar="not an md5")
        publish(ep.media_root, "fine.mp4", b"z" * 100)
        return await mirror_down(endpoint_profile(ep), LIMITS, dest)

    summary = with_sandbox(tmp_path, body)
    reasons = {f.item: f.reason for f in summary.failures}
    assert "no .md5sum beside it" in reasons["nosidecar.mp4"]
    assert "does not hold an md5" in reasons["garbage.mp4"]
    assert summary.counts["downloaded"] == 1
    assert sorted(final_files(dest)) == ["fine.mp4", "fine.mp4.md5sum"]


def test_interrupted_download_resumes_from_partial(tmp_path: Path) -> None:
    data = os.urandom(6 * MB)
    dest = tmp_path / "dest"
    fault = SftpFault("fail_read", after=3 * MB, match="big.mp4", times=1)

    async def body(ep: SshEndpoint) -> tuple[Summary, Summary]:
        publish(ep.media_root, "big.mp4", data)
        first = await mirror_down(endpoint_profile(ep), LIMITS, dest)
        assert partials(dest) == [".big.mp4.partial"]
        assert not (dest / "big.mp4").exists()
        rec = RecordingReporter()
        second = await mirror_down(endpoint_profile(ep), LIMITS, dest, reporter=rec)
        return first, second

    first, second = with_sandbox(tmp_path, body, sftp_factory=fault.factory)
    assert "injected read failure" in first.failures[0].reason
    assert second.counts == {"downloaded": 1}
    assert second.details["resumed_bytes"] >= 2 * MB
    assert (dest / "big.mp4").read_bytes() == data
    assert partials(dest) == []


def test_truncated_read_is_a_failure_and_leaves_nothing(tmp_path: Path) -> None:
    fault = SftpFault("truncate_read", after=1000, match="t.mp4")
    dest = tmp_path / "dest"

    async def body(ep: SshEndpoint) -> Summary:
        publish(ep.media_root, "t.mp4", os.urandom(5000))
        return await mirror_down(endpoint_profile(ep), LIMITS, dest)

    summary = with_sandbox(tmp_path, body, sftp_factory=fault.factory)
    assert "shrank on the server" in summary.failures[0].reason
    assert final_files(dest) == {}
    assert partials(dest) == []


class HostileSFTPServer(SandboxSFTPServer):
    """Adds entries no honest server returns to every listing of the media root."""

    HOSTILE = (b"../escape.mp4", b"a/b.mp4", b"nul\x00.mp4", b"/etc/passwd", b"..")

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:  # type: ignore[override]
        async for name in super().scandir(path):
            yield name
        if path.rstrip(b"/").endswith(b"videos"):
            attrs = asyncssh.SFTPAttrs(type=asyncssh.FILEXFER_TYPE_REGULAR, size=3, mtime=1)
            for bad in self.HOSTILE:
                yield asyncssh.SFTPName(bad, attrs=attrs)


def test_hostile_names_are_refused_and_reported(tmp_path: Path) -> None:
    dest = tmp_path / "box" / "dest"

    async def body(ep: SshEndpoint) -> Summary:
        publish(ep.media_root, "ok.mp4", b"fine")
        return await mirror_down(endpoint_profile(ep), LIMITS, dest)

    summary = with_sandbox(tmp_path, body, sftp_factory=HostileSFTPServer)
    refused = {f.item for f in summary.failures}
    assert refused == {"../escape.mp4", "a/b.mp4", "nul\x00.mp4", "/etc/passwd"}
    assert all("refused" in f.reason for f in summary.failures)
    assert summary.counts["downloaded"] == 1
    assert sorted(final_files(tmp_path / "box")) == ["dest/ok.mp4", "dest/ok.mp4.md5sum"]


class DenyingSFTPServer(SandboxSFTPServer):
    """Permission denied on one file, as a server with a wrongly owned upload would answer."""

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        if path.endswith(b"secret.mp4"):
            raise asyncssh.SFTPPermissionDenied("Permission denied")
        return super().open(path, pflags, attrs)


def test_permission_denied_on_a_file_fails_that_file_only(tmp_path: Path) -> None:
    async def body(ep: SshEndpoint) -> Summary:
        publish(ep.media_root, "secret.mp4", b"s" * 10)
        publish(ep.media_root, "open.mp4", b"o" * 10)
        return await mirror_down(endpoint_profile(ep), LIMITS, tmp_path / "dest")

    summary = with_sandbox(tmp_path, body, sftp_factory=DenyingSFTPServer)
    [failure] = summary.failures
    assert failure.item == "secret.mp4" and "Permission denied" in failure.reason
    assert summary.counts["downloaded"] == 1


def test_permission_denied_on_the_folder_is_one_line_error(tmp_path: Path) -> None:
    class NoList(SandboxSFTPServer):
        async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:  # type: ignore[override]
            raise asyncssh.SFTPPermissionDenied("Permission denied")
            yield  # pragma: no cover - makes this an async generator

    async def body(ep: SshEndpoint) -> None:
        await mirror_down(endpoint_profile(ep), LIMITS, tmp_path / "dest")

    with pytest.raises(RemoteError, match=r"cannot list media/videos .*Permission denied"):
        with_sandbox(tmp_path, body, sftp_factory=NoList)


def test_push_up_verifies_with_remote_md5sum_and_skips_unchanged(tmp_path: Path) -> None:
    src = tmp_path / "src"
    videos = _videos()
    for rel, data in videos.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)

    async def body(ep: SshEndpoint) -> tuple[Summary, Summary, Summary, set[str]]:
        prof = endpoint_profile(ep)
        dry = await push_up(prof, LIMITS, src, dry_run=True)
        first = await push_up(prof, LIMITS, src)
        second = await push_up(prof, LIMITS, src)
        listed = await list_remote_videos(prof, LIMITS)
        assert final_files(ep.media_root) == {
            **videos,
            **{f"{rel}.md5sum": f"{md5(d)}\n".encode() for rel, d in videos.items()},
        }
        assert partials(ep.media_root) == []
        return dry, first, second, listed

    dry, first, second, listed = with_sandbox(tmp_path, body)
    assert dry.counts["would upload"] == 3
    assert first.counts["uploaded"] == 3 and not first.failures and not first.warnings
    assert second.counts == {"skipped (unchanged)": 3}
    assert listed == set(videos)
    for rel, data in videos.items():  # the spec's local sidecars
        assert (src / f"{rel}.md5sum").read_text() == md5(data) + "\n"


def test_push_up_full_verify_and_failing_write(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "w.mp4").write_bytes(os.urandom(3 * MB))
    (src / "ok.mp4").write_bytes(b"fine")
    fault = SftpFault("fail_write", after=MB, match=".w.mp4.partial")

    async def body(ep: SshEndpoint) -> Summary:
        publish(ep.media_root, "w.mp4", b"previous")
        summary = await push_up(endpoint_profile(ep), LIMITS, src, verify="full")
        assert (ep.media_root / "w.mp4").read_bytes() == b"previous"
        assert (ep.media_root / "ok.mp4").read_bytes() == b"fine"
        return summary

    summary = with_sandbox(tmp_path, body, sftp_factory=fault.factory)
    [failure] = summary.failures
    assert failure.item == "w.mp4" and "injected write failure" in failure.reason
    assert summary.counts["uploaded"] == 1


def test_host_key_unknown_accepted_then_changed(tmp_path: Path) -> None:
    known = tmp_path / "kh"

    async def body(ep: SshEndpoint) -> None:
        prof = endpoint_profile(ep, known_hosts=known)
        with pytest.raises(HostKeyError, match=r"unknown host key for \[127.0.0.1\]:\d+: SHA256:"):
            await list_remote_videos(prof, LIMITS)
        assert not known.exists()
        await list_remote_videos(prof, LIMITS, accept_new_host_key=True)
        assert known.read_text().startswith(f"[127.0.0.1]:{ep.port} ssh-ed25519 ")
        await list_remote_videos(prof, LIMITS)  # now trusted, no flag needed
        other = asyncssh.generate_private_key("ssh-ed25519")
        known.write_text(f"[127.0.0.1]:{ep.port} {other.export_public_key().decode()}")
        with pytest.raises(HostKeyError, match="has CHANGED") as err:
            await list_remote_videos(prof, LIMITS, accept_new_host_key=True)
        assert "ssh-keygen -R" in str(err.value) and "\n" not in str(err.value)

    with_sandbox(tmp_path, body)


def test_key_problems_and_unreachable_host(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong_key"
    wrong.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    garbage = tmp_path / "garbage_key"
    garbage.write_text("this is not a key\n")

    async def body(ep: SshEndpoint) -> None:
        with pytest.raises(ConfigError, match="does not exist"):
            await list_remote_videos(endpoint_profile(ep, key=tmp_path / "nokey"), LIMITS)
        with pytest.raises(ConfigError, match="is not a private key"):
            await list_remote_videos(endpoint_profile(ep, key=garbage), LIMITS)
        with pytest.raises(AuthError, match=r"was refused by media@127\.0\.0\.1"):
            await list_remote_videos(endpoint_profile(ep, key=wrong), LIMITS)
        ep.close()
        await ep.wait_closed()
        with pytest.raises(ConnectError, match="connection refused"):
            await list_remote_videos(endpoint_profile(ep), LIMITS)

    with_sandbox(tmp_path, body)


def test_missing_media_folder_and_unwritable_destination(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")

    async def body(ep: SshEndpoint) -> None:
        publish(ep.media_root, "a.mp4", b"a")
        with pytest.raises(LocalIOError):
            await mirror_down(endpoint_profile(ep), LIMITS, blocker / "dest")
        with pytest.raises(RemoteError, match="does not exist"):
            await mirror_down(endpoint_profile(ep, media_dir="media/nope"), LIMITS, tmp_path / "d")

    with_sandbox(tmp_path, body)


def test_pool_repr_and_limits(tmp_path: Path) -> None:
    from longterm_sync.config import Limits
    from longterm_sync.media.sftp import SftpPool

    async def body(ep: SshEndpoint) -> list[str]:
        limits = Limits(sftp_connections=2, sftp_transfers=1)
        seen: list[str] = []
        async with SftpPool(endpoint_profile(ep), limits) as pool:
            seen.append(repr(pool))  # the second connection opens in the background
            await pool.opened()
            seen.append(repr(pool))
            async with pool.transfer(), pool.transfer():
                waiter = asyncio.ensure_future(pool.transfer().__aenter__())
                await asyncio.sleep(0.05)
                seen.append(repr(pool))
                assert not waiter.done()
            await waiter
        return seen

    seen = with_sandbox(tmp_path, body)
    assert seen[0].endswith("1 connections, 0 active, 0 queued)")
    assert seen[1].endswith("2 connections, 0 active, 0 queued)")
    assert seen[2].endswith("2 connections, 2 active, 1 queued)")


def test_interrupted_upload_resumes_and_is_verified_by_md5sum(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    data = os.urandom(6 * MB)
    (src / "big.mp4").write_bytes(data)
    fault = SftpFault("fail_write", after=2 * MB, match=".big.mp4.partial", times=1)

    # Small requests, so that the writes before the failing one land.
    limits = dataclasses.replace(LIMITS, sftp_block_size=256 * 1024)

    async def body(ep: SshEndpoint) -> tuple[Summary, Summary]:
        prof = endpoint_profile(ep)
        first = await push_up(prof, limits, src)
        assert not (ep.media_root / "big.mp4").exists()
        second = await push_up(prof, limits, src)
        assert (ep.media_root / "big.mp4").read_bytes() == data
        assert partials(ep.media_root) == []
        return first, second

    first, second = with_sandbox(tmp_path, body, sftp_factory=fault.factory)
    assert "injected write failure" in first.failures[0].reason
    assert second.counts["uploaded"] == 1 and not second.failures
    assert second.details["resumed_bytes"] >= MB


def test_download_shared_with_a_worker_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from longterm_sync.media import sync

    monkeypatch.setattr(sync, "SPLIT_MIN_BYTES", 0)
    videos = {f"s{i % 2}/v{i}.mp4": os.urandom(100_000 * (i + 1)) for i in range(6)}
    dest = tmp_path / "dest"

    async def body(ep: SshEndpoint) -> Summary:
        for rel, data in videos.items():
            publish(ep.media_root, rel, data)
        publish(ep.media_root, "bad.mp4", b"x" * 700_000, sidecar=md5(b"y"))
        rec = RecordingReporter()
        limits = dataclasses.replace(LIMITS, sftp_processes=2)
        summary = await mirror_down(endpoint_profile(ep), limits, dest, reporter=rec)
        assert sum(e.bytes for e in rec.of(Progress)) >= summary.bytes
        return summary

    summary = with_sandbox(tmp_path, body)
    assert summary.details["processes"] == 2
    assert summary.counts == {"downloaded": 6, "failed": 1}, summary.lines()
    [failure] = summary.failures
    assert failure.item == "bad.mp4" and "corrupted on transfer" in failure.reason
    assert summary.details["md5"] == {rel: md5(d) for rel, d in sorted(videos.items())}
    assert {rel: final_files(dest)[rel] for rel in videos} == videos
    assert_verified(dest)
    assert partials(dest) == []


def test_split_work_balances_and_keeps_small_jobs_home() -> None:
    from longterm_sync.media.sync import split_work

    assert split_work([("a", 10), ("b", 10)], 2) == [["a", "b"]]  # too small to split
    big = [(f"f{i}", 256 << 20) for i in range(8)]
    shares = split_work(big, 2)
    assert sorted(len(s) for s in shares) == [4, 4]
    assert split_work(big, 1) == [[rel for rel, _ in big]]
