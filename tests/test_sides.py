"""Storage sides: the server's media folder and local folders behind one protocol, and
``check`` comparing any two, against the sandbox's SFTP server and real local folders."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from longterm_sync.errors import FileFailed
from longterm_sync.media import mirror_down
from longterm_sync.media.remote import FileInfo
from longterm_sync.media.sftp import SftpPool
from longterm_sync.media.sides import Comparison, LocalSide, SftpSide, check
from longterm_sync.sandbox.ssh import SshEndpoint
from media_helpers import LIMITS, endpoint_profile, md5, publish, with_sandbox


def _videos() -> dict[str, bytes]:
    return {"a/one.mp4": os.urandom(300_000), "a/two.mp4": os.urandom(1000), "three.mp4": b"3"}


def test_server_and_mirror_compare_equal_then_differ(tmp_path: Path) -> None:
    videos = _videos()
    dest = tmp_path / "mirror"

    async def body(ep: SshEndpoint) -> tuple[Comparison, Comparison, FileInfo | None]:
        for rel, data in videos.items():
            publish(ep.media_root, rel, data)
        profile = endpoint_profile(ep)
        await mirror_down(profile, LIMITS, dest)
        async with SftpPool(profile, LIMITS) as pool:
            server = SftpSide(pool, profile.media_dir)
            mirror = LocalSide(dest)
            same = await check(server, mirror)
            (dest / "a" / "two.mp4").write_bytes(b"x" * 1000)  # same size, other bytes
            (dest / "three.mp4").unlink()
            (dest / "local-only.mp4").write_bytes(b"mine")
            differ = await check(server, mirror)
            info = await server.stat("a/one.mp4")
            return same, differ, info

    same, differ, info = with_sandbox(tmp_path, body)
    assert same.ok and same.same == sorted(videos) and not same.extra
    assert not differ.ok
    assert differ.missing == ["three.mp4"]
    assert list(differ.different) == ["a/two.mp4"]
    assert md5(b"x" * 1000) in differ.different["a/two.mp4"]
    assert differ.extra == ["local-only.mp4"]
    assert differ.same == ["a/one.mp4"]
    assert info is not None and info.size == 300_000


def test_local_put_is_verified_and_two_local_sides_compare(tmp_path: Path) -> None:
    source = tmp_path / "src.mp4"
    source.write_bytes(os.urandom(5000))
    a, b = LocalSide(tmp_path / "a"), LocalSide(tmp_path / "b")
    asyncio.run(a.put("x/v.mp4", source, md5(source.read_bytes())))
    asyncio.run(b.put("x/v.mp4", source, md5(source.read_bytes())))
    assert asyncio.run(check(a, b)).same == ["x/v.mp4"]
    with pytest.raises(FileFailed, match="expected"):
        asyncio.run(b.put("x/w.mp4", source, "0" * 32))
    assert not (tmp_path / "b" / "x" / "w.mp4").exists()
    assert [p.name for p in (tmp_path / "b" / "x").iterdir()] == ["v.mp4"]  # no temp left
    stat = asyncio.run(a.stat("x/v.mp4"))
    assert stat is not None and stat.size == 5000
    assert asyncio.run(a.md5("missing.mp4")) is None


def test_server_put_is_verified_on_the_server(tmp_path: Path) -> None:
    source = tmp_path / "up.mp4"
    source.write_bytes(os.urandom(70_000))
    digest = md5(source.read_bytes())

    async def body(ep: SshEndpoint) -> tuple[str | None, Path]:
        profile = endpoint_profile(ep)
        async with SftpPool(profile, LIMITS) as pool:
            server = SftpSide(pool, profile.media_dir)
            await server.put("new/up.mp4", source, digest)
            return await server.md5("new/up.mp4"), ep.media_root

    got, root = with_sandbox(tmp_path, body)
    assert got == digest
    assert (root / "new" / "up.mp4").read_bytes() == source.read_bytes()


def test_an_unreadable_local_file_fails_that_file_only(tmp_path: Path) -> None:
    """A local file that cannot be read (here a folder where a video is recorded) is one
    difference with the reason, not an error that stops the comparison."""
    from longterm_sync.media.sides import RecordedSide

    (tmp_path / "held" / "v.mp4").mkdir(parents=True)
    (tmp_path / "held" / "w.mp4").write_bytes(b"w")
    side = LocalSide(tmp_path / "held")
    with pytest.raises(FileFailed, match="cannot read"):
        asyncio.run(side.md5("v.mp4"))

    class Walked(LocalSide):  # lists the folder as a file, the way a racing walk could
        async def walk(self):  # type: ignore[no-untyped-def]
            tree = await super().walk()
            tree.files["v.mp4"] = FileInfo("v.mp4", 1, 0)
            return tree

    record = RecordedSide("record", {"v.mp4": (1, "0" * 32), "w.mp4": (1, md5(b"w"))})
    result = asyncio.run(check(record, Walked(tmp_path / "held")))
    assert result.same == ["w.mp4"]
    assert "cannot read" in result.different["v.mp4"]


def test_mirror_runs_between_any_two_sides(tmp_path: Path) -> None:
    """``mirror`` goes through the side protocol only: here from one local folder to
    another (no server, no helper process). A video is copied verified, a re-run copies
    nothing (and writes the sidecars), a changed video's old copy goes to the versions
    side, and a video without a sidecar is not copied (the mirror's rule)."""
    from longterm_sync.media.sync import mirror

    origin, copy, versions = tmp_path / "origin", tmp_path / "copy", tmp_path / "versions"
    videos = {"a/one.mp4": os.urandom(3000), "two.mp4": b"two"}
    for rel, data in videos.items():
        (origin / rel).parent.mkdir(parents=True, exist_ok=True)
        (origin / rel).write_bytes(data)
        (origin / f"{rel}.md5sum").write_text(f"{md5(data)}  {Path(rel).name}\n")
    (origin / "unvouched.mp4").write_bytes(b"bytes")

    def run() -> dict[str, int]:
        summary = asyncio.run(
            mirror(LocalSide(origin), LocalSide(copy), LIMITS, versions=LocalSide(versions))
        )
        return dict(summary.counts)

    first = run()
    assert first["downloaded"] == 2 and first["failed"] == 1
    assert not (copy / "unvouched.mp4").exists()
    again = run()
    assert "downloaded" not in again and again["skipped (unchanged)"] == 2
    for rel, data in videos.items():
        assert (copy / rel).read_bytes() == data
        assert (copy / f"{rel}.md5sum").read_text().split()[0] == md5(data)
    (origin / "two.mp4").write_bytes(b"TWO")
    (origin / "two.mp4.md5sum").write_text(md5(b"TWO") + "\n")
    changed = run()
    assert changed["downloaded"] == 1 and changed["old versions kept"] == 1
    assert (copy / "two.mp4").read_bytes() == b"TWO"
    assert (versions / "two.mp4").read_bytes() == b"two"
