"""Small files in batches over one ``tar`` command (media/tarbatch.py), on the real OpenSSH
sshd; and the SFTP path where the account runs no tar (the asyncssh sandbox)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
from pathlib import Path

import pytest

from fixtures_sshd import SshdInfo
from longterm_sync.media import mirror_down, push_up
from longterm_sync.media.sftp import SftpPool
from longterm_sync.sandbox.ssh import SshEndpoint
from media_helpers import (
    LIMITS,
    assert_verified,
    endpoint_profile,
    final_files,
    publish,
    with_sandbox,
)

NAMES = [
    "a.mp4",
    "with space.mp4",
    "sub/é ü 日本.mp4",
    "-dash.mp4",
    "sub/deep/" + "long" * 40 + ".mp4",  # over tar's 100-byte name field: a GNU long name
    "bad.mp4",  # in the middle: its sidecar does not match its bytes
    "z.mp4",
    "sub/zz.mp4",
]
BAD = "bad.mp4"

# One process, so every file goes through this process's batches and its log.
ONE = dataclasses.replace(LIMITS, sftp_processes=1)


def _batches(caplog: pytest.LogCaptureFixture) -> list[tuple[int, int]]:
    return [
        (int(r.args[0]), int(r.args[1]))  # type: ignore[index]
        for r in caplog.records
        if r.msg.startswith("tar batch of %d files")
    ]


def test_batched_download_of_hostile_names_with_one_bad_file_failing_alone(
    openssh_server: SshdInfo, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The files arrive in a few ``tar`` batches, not over SFTP one by one; the one whose
    bytes do not match its sidecar fails alone (after one more try over SFTP) and never
    gets a final name, while the files after it in its batch land verified."""
    root = openssh_server.media_root / "batch-down"
    data = {rel: os.urandom(1000 + 977 * i) for i, rel in enumerate(NAMES)}
    data["empty.mp4"] = b""  # tar sends nothing to read: fetched over SFTP
    try:
        for rel, blob in data.items():
            publish(root, rel, blob, sidecar="0" * 32 if rel == BAD else "auto")
        dest = tmp_path / "dest"
        caplog.set_level(logging.DEBUG, logger="longterm_sync.media")
        prof = endpoint_profile(openssh_server, media_dir=str(root))
        summary = asyncio.run(mirror_down(prof, ONE, dest))
        assert summary.counts.get("downloaded") == len(data) - 1, summary.lines()
        assert summary.counts.get("failed") == 1
        [failure] = summary.failures
        assert failure.item == BAD and "md5 differs" in failure.reason
        got = final_files(dest)
        assert {rel: got[rel] for rel in data if rel != BAD} == {
            rel: blob for rel, blob in data.items() if rel != BAD
        }
        assert BAD not in got
        assert_verified(dest)
        batches = _batches(caplog)
        assert sum(n for n, _ in batches) == len(NAMES), batches  # every non-empty file once
        assert sum(d for _, d in batches) == len(NAMES)  # the bad one too: it came whole
        assert len(batches) < len(NAMES)
        sftp_reads = [r for r in caplog.records if "corrupted on transfer" in r.getMessage()]
        assert len(sftp_reads) == 2  # the batch's copy, then SFTP's: both differ
        assert not list(dest.rglob(".*.partial"))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_batch_leaves_out_what_it_cannot_deliver_and_sftp_fetches_it(
    openssh_server: SshdInfo,
) -> None:
    """A file gone since the listing, another size than asked, a symlink: the batch answers
    None for each (SFTP then decides), and delivers the rest."""
    root = openssh_server.media_root / "batch-gaps"
    try:
        for rel in ("ok1.mp4", "short.mp4", "ok2.mp4", "target.mp4"):
            publish(root, rel, rel.encode() * 100)
        (root / "link.mp4").symlink_to(root / "target.mp4")
        (root / "link.mp4.md5sum").symlink_to(root / "target.mp4.md5sum")

        async def body() -> list[object]:
            async with SftpPool(endpoint_profile(openssh_server), LIMITS) as pool:
                asks = [
                    ("ok1.mp4", 700),
                    ("gone.mp4", 500),
                    ("short.mp4", 901),
                    ("link.mp4", 1000),
                    ("ok2.mp4", 700),
                ]
                return list(
                    await asyncio.gather(
                        *(pool.fetch_small(str(root / rel), size) for rel, size in asks)
                    )
                )

        ok1, gone, short, link, ok2 = asyncio.run(body())
        assert ok1 == (b"ok1.mp4" * 100, (root / "ok1.mp4.md5sum").read_bytes())
        assert ok2 == (b"ok2.mp4" * 100, (root / "ok2.mp4.md5sum").read_bytes())
        assert gone is None and short is None and link is None
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_no_tar_on_the_account_means_sftp(tmp_path: Path) -> None:
    """The sandbox's account runs only md5sum, mkdir -p, mv and find: the first batch is
    refused, remembered, and every file comes over SFTP, verified as before."""
    data = {f"v{i}.mp4": os.urandom(3000 + i) for i in range(5)}

    async def body(ep: SshEndpoint) -> tuple[object, bool | None, object]:
        for rel, blob in data.items():
            publish(ep.media_root, rel, blob)
        async with SftpPool(endpoint_profile(ep), LIMITS) as pool:
            first = await pool.fetch_small(f"{ep.media_dir}/v0.mp4", len(data["v0.mp4"]))
            usable = pool.tar.usable
            # known now: no command is tried again
            again = await pool.fetch_small(f"{ep.media_dir}/v1.mp4", len(data["v1.mp4"]))
        summary = await mirror_down(endpoint_profile(ep), ONE, tmp_path / "dest")
        assert summary.counts == {"downloaded": len(data)}, summary.lines()
        return first, usable, again

    first, usable, again = with_sandbox(tmp_path, body)
    assert first is None and again is None and usable is False
    assert {rel: final_files(tmp_path / "dest")[rel] for rel in data} == data
    assert_verified(tmp_path / "dest")


def _upload_batches(caplog: pytest.LogCaptureFixture) -> list[int]:
    return [
        int(r.args[0])  # type: ignore[index]
        for r in caplog.records
        if r.msg.startswith("tar upload of %d files")
    ]


def test_batched_upload_with_one_bad_file_failing_alone(
    openssh_server: SshdInfo, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Small uploads go in per-folder tar batches, verified by the server's md5sum in the
    same command. The file whose bytes no longer match the md5 the upload expects (changed
    in place, size and mtime restored: a stale cache entry, as a corruption on the way looks
    to the verification) fails alone, after one more try over SFTP, and never gets its
    final name nor a sidecar; the rest land verified, and no hidden batch folder is left."""
    src = tmp_path / "src"
    data = {rel: os.urandom(2000 + 977 * i) for i, rel in enumerate(NAMES)}
    for rel, blob in data.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(blob)
    base = openssh_server.media_root / "batch-up"
    try:
        first = endpoint_profile(openssh_server, media_dir=str(base / "first"))
        up = asyncio.run(push_up(first, LIMITS, src))  # records every local md5
        assert up.counts["uploaded"] == len(data) and not up.failures, up.lines()

        bad = src / BAD
        st = bad.stat()
        blob = bytearray(bad.read_bytes())
        blob[1000] ^= 0xFF
        bad.write_bytes(bytes(blob))
        os.utime(bad, ns=(st.st_atime_ns, st.st_mtime_ns))

        caplog.set_level(logging.DEBUG, logger="longterm_sync.media")
        second = endpoint_profile(openssh_server, media_dir=str(base / "second"))
        summary = asyncio.run(push_up(second, LIMITS, src))
        assert summary.counts.get("uploaded") == len(data) - 1, summary.lines()
        [failure] = summary.failures
        assert failure.item == BAD and "did not verify" in failure.reason
        sizes = _upload_batches(caplog)
        assert sum(sizes) == len(data) and len(sizes) < len(data), sizes
        got = final_files(base / "second")
        assert {rel: got[rel] for rel in data if rel != BAD} == {
            rel: blob for rel, blob in data.items() if rel != BAD
        }
        assert BAD not in got and BAD + ".md5sum" not in got
        assert_verified(base / "second")
        hidden = [p.name for p in (base / "second").rglob(".*")]
        assert not hidden, hidden
        for rel in data:
            if rel != BAD:  # mtimes travel, as over SFTP
                mine = int((src / rel).stat().st_mtime)
                assert int((base / "second" / rel).stat().st_mtime) == mine
                assert int((base / "second" / (rel + ".md5sum")).stat().st_mtime) == mine
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_batched_upload_never_moves_a_file_into_a_folder_of_its_name(
    openssh_server: SshdInfo, tmp_path: Path
) -> None:
    """A folder on the server where a video should go: that file fails alone (``mv -T``),
    nothing lands inside the folder, the others of its batch are in place."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        (src / name).write_bytes(os.urandom(5000))
    root = openssh_server.media_root / "batch-dir"
    try:
        (root / "b.mp4").mkdir(parents=True)
        (root / "b.mp4" / "keep").write_bytes(b"k")
        prof = endpoint_profile(openssh_server, media_dir=str(root))
        summary = asyncio.run(push_up(prof, LIMITS, src))
        assert summary.counts.get("uploaded") == 2, summary.lines()
        [failure] = summary.failures
        assert failure.item == "b.mp4"
        assert sorted(p.name for p in (root / "b.mp4").iterdir()) == ["keep"]
        assert (root / "a.mp4").read_bytes() == (src / "a.mp4").read_bytes()
        assert (root / "c.mp4").read_bytes() == (src / "c.mp4").read_bytes()
        assert not [p.name for p in root.glob(".*")]
    finally:
        shutil.rmtree(root, ignore_errors=True)
