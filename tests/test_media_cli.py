"""download-schedule's video modes through the real CLI against the real OpenSSH sshd."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clitools import run_cli
from fixtures_sshd import SshdInfo, write_sshd_profile
from media_helpers import md5, publish

pytestmark = pytest.mark.sshd


def test_download_schedule_video_mode_mirrors_and_prints_md5_list(
    openssh_server: SshdInfo, tmp_path: Path
) -> None:
    media = openssh_server.media_root / "cli"
    videos = {"a.mp4": os.urandom(1000), "sub/b.mp4": os.urandom(2000)}
    for rel, data in videos.items():
        publish(media, rel, data)
    publish(media, "broken.mp4", b"bad", sidecar=md5(b"good"))
    config = write_sshd_profile(openssh_server, tmp_path / "config.toml")
    text = config.read_text().replace(openssh_server.media_dir, str(media))
    config.write_text(text)
    dest = tmp_path / "videos"
    args = ["download-schedule", "--config", str(config), "--server", "sshd", "--mode=video",
            f"--video_path={dest}"]  # fmt: skip
    first = run_cli(args)
    assert first.code == 1, first.err  # broken.mp4 fails verification: partial success
    for rel, data in videos.items():
        assert f"{md5(data)}  {dest / rel}" in first.out
        assert (dest / rel).read_bytes() == data
    assert "broken.mp4: corrupted on transfer" in first.out
    assert not (dest / "broken.mp4").exists()
    assert "Traceback" not in first.err

    (media / "broken.mp4").unlink()
    (media / "broken.mp4.md5sum").unlink()
    second = run_cli([*args, "--json"])
    assert second.code == 0, second.err
    assert '"videos skipped (unchanged)": 2' in second.out


def test_download_schedule_video_mode_unknown_host_is_one_line(
    openssh_server: SshdInfo, tmp_path: Path
) -> None:
    # Its own empty media folder: the shared sshd's root holds other tests' leftovers (a
    # video without its sidecar fails the download and the exit status with it).
    media = openssh_server.media_root / "unknown-host"
    media.mkdir()
    config = write_sshd_profile(openssh_server, tmp_path / "config.toml")
    empty = tmp_path / "known_hosts"
    text = config.read_text().replace(str(openssh_server.known_hosts), str(empty))
    config.write_text(text.replace(openssh_server.media_dir, str(media)))
    args = ["download-schedule", "--config", str(config), "--server", "sshd", "--mode=video",
            f"--video_path={tmp_path / 'v'}"]  # fmt: skip
    refused = run_cli(args)
    assert refused.code == 3
    line = refused.one_line_error()
    assert "unknown host key" in line and "SHA256:" in line and "--accept-new-host-key" in line
    accepted = run_cli([*args, "--accept-new-host-key"])
    assert accepted.code == 0, accepted.err
    assert empty.read_text().startswith(f"[{openssh_server.host}]:{openssh_server.port} ")
