"""Pure parts of the media engine: untrusted names, the md5 cache, sidecars, progress."""

from __future__ import annotations

from pathlib import Path

import pytest

from longterm_sync.events import ItemDone, Planned, RecordingReporter
from longterm_sync.media.hostkeys import known_hosts_pattern
from longterm_sync.media.md5cache import Md5Cache, remote_unchanged
from longterm_sync.media.meter import Meter
from longterm_sync.media.names import (
    CACHE_NAME,
    UnsafeNameError,
    check_component,
    check_relpath,
    local_path,
    partial_name,
)
from longterm_sync.media.remote import FileInfo, parse_md5


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("..", "'..'"),
        (".", "'.'"),
        ("a/b", "separator"),
        ("a\\b", "separator"),
        ("nul\x00", "NUL"),
        ("bell\x07", "control"),
        ("", "empty"),
    ],
)
def test_hostile_components_are_refused(name: str, why: str) -> None:
    with pytest.raises(UnsafeNameError, match=why):
        check_component(name)


def test_plain_names_pass_and_paths_are_checked_per_part() -> None:
    check_component("clip A (2).mp4")
    check_component("żółw.mp4")
    assert check_relpath("sub/x.mp4") == "sub/x.mp4"
    with pytest.raises(UnsafeNameError, match="absolute"):
        check_relpath("/etc/passwd")
    with pytest.raises(UnsafeNameError):
        check_relpath("sub/../../x")


def test_local_path_refuses_a_symlinked_folder_leading_outside(tmp_path: Path) -> None:
    root = tmp_path / "dest"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    assert local_path(root, "sub/a.mp4") == root / "sub" / "a.mp4"
    with pytest.raises(UnsafeNameError, match="outside"):
        local_path(root, "link/a.mp4")


def test_partial_names_are_hidden() -> None:
    assert partial_name("a.mp4") == ".a.mp4.partial"


@pytest.mark.parametrize(
    ("text", "md5"),
    [
        (b"d41d8cd98f00b204e9800998ecf8427e\n", "d41d8cd98f00b204e9800998ecf8427e"),
        (b"D41D8CD98F00B204E9800998ECF8427E  a.mp4\n", "d41d8cd98f00b204e9800998ecf8427e"),
        (b"", None),
        (b"not an md5\n", None),
        (b"d41d8cd98f00b204e9800998ecf8427", None),
    ],
)
def test_parse_md5(text: bytes, md5: str | None) -> None:
    assert parse_md5(text) == md5


def test_md5_cache_is_keyed_by_size_and_mtime_and_per_server(tmp_path: Path) -> None:
    info = FileInfo("a.mp4", 10, 100, 100_000_000_123)
    cache = Md5Cache(tmp_path, "media@h:22/media/videos")
    assert cache.local_md5(info) is None
    cache.set_local(info, "a" * 32)
    video, side = FileInfo("a.mp4", 10, 100), FileInfo("a.mp4.md5sum", 33, 100)
    cache.set_remote("a.mp4", video, side, "a" * 32)
    cache.save()
    assert (tmp_path / CACHE_NAME).exists()

    again = Md5Cache(tmp_path, "media@h:22/media/videos")
    assert again.local_md5(info) == "a" * 32
    assert again.local_md5(FileInfo("a.mp4", 10, 100, 100_000_000_124)) is None  # touched
    assert again.local_md5(FileInfo("a.mp4", 11, 100, 100_000_000_123)) is None  # resized
    state = again.remote_state("a.mp4")
    assert remote_unchanged(state, video, side, "a" * 32)
    assert not remote_unchanged(state, FileInfo("a.mp4", 10, 101), side, "a" * 32)
    assert not remote_unchanged(state, video, FileInfo("a.mp4.md5sum", 33, 101), "a" * 32)
    assert not remote_unchanged(state, video, side, "b" * 32)
    other = Md5Cache(tmp_path, "media@other:22/media/videos")
    assert other.remote_state("a.mp4") is None  # what one server confirmed says nothing else


def test_a_new_local_md5_forgets_what_servers_confirmed(tmp_path: Path) -> None:
    cache = Md5Cache(tmp_path, "s")
    info = FileInfo("a.mp4", 10, 100, 1)
    cache.set_local(info, "a" * 32)
    cache.set_remote("a.mp4", FileInfo("a.mp4", 10, 1), FileInfo("x", 33, 1), "a" * 32)
    cache.set_local(FileInfo("a.mp4", 10, 100, 2), "b" * 32)
    assert cache.remote_state("a.mp4") is None


def test_damaged_cache_is_ignored(tmp_path: Path) -> None:
    (tmp_path / CACHE_NAME).write_bytes(b"{not json")
    cache = Md5Cache(tmp_path, "s")
    assert len(cache) == 0
    cache.set_local(FileInfo("a.mp4", 1, 1, 1), "c" * 32)
    cache.save()
    assert len(Md5Cache(tmp_path, "s")) == 1


def test_progress_rate_eta_and_rewind() -> None:
    rec = RecordingReporter()
    p = Meter(rec)
    p.plan(2, 1000)
    p.started -= 2.0  # as if two seconds had passed
    p.advance(600)
    p.advance(-100)  # a retry rewinds
    p.finish("a.mp4")
    assert p.bytes_done == 500 and p.files_done == 1
    assert 200 <= p.rate <= 260
    assert p.eta is not None and 1.5 <= p.eta <= 2.6
    assert "1/2 files" in repr(p)
    assert rec.events[0] == Planned(items=2, bytes=1000, job="videos")
    assert ItemDone(item="a.mp4", job="videos") in rec.events


def test_known_hosts_pattern() -> None:
    assert known_hosts_pattern("example.org", 22) == "example.org"
    assert known_hosts_pattern("127.0.0.1", 2222) == "[127.0.0.1]:2222"


def test_walk_local_skips_hidden_partials_and_symlinks(tmp_path: Path) -> None:
    from longterm_sync.media.local import walk_local

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.mp4").write_bytes(b"a")
    (tmp_path / "sub" / "a.mp4.md5sum").write_text("x\n")
    (tmp_path / ".b.mp4.partial").write_bytes(b"b")
    (tmp_path / CACHE_NAME).write_text("{}")
    (tmp_path / "evil.mp4").symlink_to("/etc/passwd")
    tree = walk_local(tmp_path)
    assert set(tree.files) == {"sub/a.mp4"}
    assert set(tree.sidecars) == {"sub/a.mp4"}
    assert tree.refused == [("evil.mp4", "not a regular file (symlink or special)")]


def test_connections_and_files_in_flight_follow_the_ssh_window() -> None:
    """Issue 11: a 16 MiB window carries 64 small files at once and needs four connections
    of OpenSSH's 2 MiB window to upload as much; asyncssh's 2 MiB keeps the old figures."""
    from longterm_sync.config import Limits

    wide = Limits()
    assert wide.ssh_window == 16 << 20
    assert wide.small_allowance() == 64 and wide.upload_connections() == 4
    narrow = Limits(ssh_window=2 << 20)
    assert narrow.small_allowance() == 4 * narrow.sftp_transfers
    assert narrow.upload_connections() == 1
    assert Limits(ssh_window=2 << 20, sftp_connections=3).upload_connections() == 3


def test_an_upload_keeps_only_what_the_server_window_can_take_in_flight() -> None:
    """Each uploading file keeps two of OpenSSH's 2 MiB windows of writes in flight, not
    ``sftp_max_requests`` (128 x 255 KiB = 32 MiB per file, 823 MB for an upload of 8 x 256
    MiB at 40 ms); a smaller sftp_max_requests still bounds it."""
    from longterm_sync.config import Limits

    block = 261120
    assert Limits().upload_depth(block) == 16  # 16 x 255 KiB: just under 4 MiB
    assert Limits(sftp_max_requests=4).upload_depth(block) == 4
    assert Limits().upload_depth(8 << 20) == 1  # a block above the allowance: one at a time
