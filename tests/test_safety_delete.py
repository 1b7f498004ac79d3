"""Issue 8, point 5: --delete removes only what is known to be gone from the server; an entry
this run refused (a symlink, a folder that became a symlink, a bad name) keeps its local copy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clitools import run_cli
from fixtures_sshd import SshdInfo, write_sshd_profile
from media_helpers import publish

pytestmark = pytest.mark.sshd


def test_delete_keeps_what_was_refused(openssh_server: SshdInfo, tmp_path: Path) -> None:
    media = openssh_server.media_root / "delete"
    videos = {rel: os.urandom(3000) for rel in ("a.mp4", "c.mp4", "sub/b.mp4", "sub/d.mp4",
                                                 "gone.mp4")}  # fmt: skip
    for rel, data in videos.items():
        publish(media, rel, data)
    config = write_sshd_profile(openssh_server, tmp_path / "config.toml")
    config.write_text(config.read_text().replace(openssh_server.media_dir, str(media)))
    dest = tmp_path / "videos"
    args = ["download-schedule", "--config", str(config), "--server", "sshd", "--mode=video",
            f"--video_path={dest}", "--delete"]  # fmt: skip
    assert run_cli(args).code == 0
    # on the server: c.mp4 becomes a symlink, sub/ a symlink to a folder, gone.mp4 is removed
    (media / "c.mp4").unlink()
    (media / "c.mp4").symlink_to(media / "a.mp4")
    (media / "sub").rename(media / "elsewhere")
    (media / "sub").symlink_to(media / "elsewhere")
    (media / "gone.mp4").unlink()
    (media / "gone.mp4.md5sum").unlink()
    second = run_cli(args)
    assert "Traceback" not in second.err
    for rel in ("a.mp4", "c.mp4", "sub/b.mp4", "sub/d.mp4"):
        assert (dest / rel).read_bytes() == videos[rel], rel
    assert not (dest / "gone.mp4").exists()  # known to be gone: deleted
    assert "refused on the server" in second.out
