"""upload-schedule's video side: the real OpenSSH sshd, SSH faults, and what they hold back.

REST always goes to a sandbox; videos go to the sandbox's asyncssh server or, in the sshd
tests, to a real OpenSSH ``sshd`` (a config profile mixes the two).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clitools import run_cli
from fixtures_sandbox import SandboxInfo, start_sandbox
from upload_helpers import get_json, put_videos, relative_days, schedule, write_json

TODAY_S = "2026-12-01"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxInfo]:
    """One participant plus one orphan account, server date pinned."""
    info = start_sandbox(
        tmp_path_factory.mktemp("upload-media"),
        ["--today", TODAY_S, "--users", "1", "--days", "2", "--samples", "5", "--orphans", "1"],
    )
    try:
        yield info
    finally:
        info.stop()


def stored_ids(info: SandboxInfo) -> set[str]:
    return {row["schedule"].get("external_id") for row in get_json(info, "/api/users/schedules/")}


def doc(eid: str, *videos: str) -> dict[str, Any]:
    from datetime import date

    today = date.fromisoformat(TODAY_S)
    data = schedule(relative_days(today, [3, 4]), external_id=eid, video=videos[0])
    if len(videos) > 1:
        data["schedule"][1]["service"][0]["video"] = videos[1]
    return data


def cli(config: Path | str, server: str, work: Path, *extra: str) -> Any:
    return run_cli(
        [
            "upload-schedule",
            f"--config={config}",
            f"--server={server}",
            f"--today={TODAY_S}",
            *extra,
        ],
        cwd=work,
    )


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def mixed_config(path: Path, platform: SandboxInfo, sshd: Any) -> Path:
    """REST of the sandbox, SSH of the real sshd."""
    path.write_text(
        "[servers.mixed]\n"
        f'url = "{platform.url}"\n'
        f'token = "{platform.token}"\n'
        f'salt = "{platform.salt}"\n'
        f'ssh_host = "{sshd.host}"\n'
        f"ssh_port = {sshd.port}\n"
        f'ssh_user = "{sshd.user}"\n'
        f'key = "{sshd.key}"\n'
        f'known_hosts = "{sshd.known_hosts}"\n'
        f'media_dir = "{sshd.media_dir}"\n',
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


@pytest.mark.sshd
def test_real_sshd_end_to_end_and_unchanged_rerun(
    platform: SandboxInfo, openssh_server: Any, tmp_path: Path
) -> None:
    config = mixed_config(tmp_path / "config.toml", platform, openssh_server)
    media = Path(openssh_server.media_root)
    (media / "archive").mkdir(parents=True, exist_ok=True)
    (media / "archive" / "old.mp4").write_bytes(b"old video")  # referenced, only on the server
    work = tmp_path / "study"
    clips = {"sshd/big.mp4": os.urandom(3_000_000), "sshd/deep/small.mp4": os.urandom(5000)}
    put_videos(work / "videos", clips)
    write_json(work / "s1.json", doc("SSHD1", "sshd/big.mp4", "archive/old.mp4"))

    first = cli(config, "mixed", work)
    assert first.code == 0, first.out + first.err
    for name, data in clips.items():
        assert (media / name).read_bytes() == data
        assert (media / f"{name}.md5sum").read_text() == md5(data) + "\n"
        assert (work / "videos" / f"{name}.md5sum").read_text() == md5(data) + "\n"
    assert not [p for p in media.rglob("*") if ".partial" in p.name]
    assert "SSHD1" in stored_ids(platform)
    assert "2 videos uploaded" in first.out

    again = cli(config, "mixed", work, "--json")
    assert again.code == 0, again.err
    counts = json.loads(again.out)["counts"]
    assert counts.get("videos skipped (unchanged)") == 2, counts
    assert "videos uploaded" not in counts and counts["schedules already up to date"] == 1


@pytest.mark.sshd
def test_video_changed_locally_is_sent_again(
    platform: SandboxInfo, openssh_server: Any, tmp_path: Path
) -> None:
    config = mixed_config(tmp_path / "config.toml", platform, openssh_server)
    media = Path(openssh_server.media_root)
    work = tmp_path / "study"
    put_videos(work / "videos", {"edit/v.mp4": b"first cut"})
    write_json(work / "s.json", doc("SSHD2", "edit/v.mp4"))
    assert cli(config, "mixed", work).code == 0
    put_videos(work / "videos", {"edit/v.mp4": b"final cut, same day"})
    result = cli(config, "mixed", work)
    assert result.code == 0, result.out + result.err
    assert (media / "edit" / "v.mp4").read_bytes() == b"final cut, same day"
    assert (media / "edit" / "v.mp4.md5sum").read_text() == md5(b"final cut, same day") + "\n"
    assert (work / "videos" / "edit" / "v.mp4.md5sum").read_text() == md5(
        b"final cut, same day"
    ) + "\n"


def test_orphan_account_is_refused_and_nothing_changes(
    platform: SandboxInfo, tmp_path: Path
) -> None:
    accounts = [u["external_id"] for u in get_json(platform, "/api/users/")]
    orphans = [a for a in accounts if a not in stored_ids(platform) and a != "operator"]
    assert len(orphans) == 1
    before = (get_json(platform, "/api/users/"), get_json(platform, "/api/users/schedules/"))
    work = tmp_path / "study"
    put_videos(work / "videos", {"o/clip.mp4": b"o"})
    write_json(work / "orphan.json", doc(orphans[0], "o/clip.mp4"))
    result = cli(platform.config, "sandbox", work)
    assert result.code == 1, result.out + result.err
    assert f"orphan.json: not sent: account {orphans[0]} exists without a schedule" in result.out
    assert (
        get_json(platform, "/api/users/"),
        get_json(platform, "/api/users/schedules/"),
    ) == before


def test_failed_video_holds_back_only_its_schedule(platform: SandboxInfo, tmp_path: Path) -> None:
    # A folder on the server where the video should go: that one upload cannot succeed.
    (platform.media_root / "held" / "clip.mp4").mkdir(parents=True)
    work = tmp_path / "study"
    put_videos(work / "videos", {"held/clip.mp4": b"x" * 100, "fine/clip.mp4": b"y" * 100})
    write_json(work / "held.json", doc("HELD", "held/clip.mp4"))
    write_json(work / "fine.json", doc("FINE", "fine/clip.mp4"))
    result = cli(platform.config, "sandbox", work)
    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.err
    assert "held/clip.mp4:" in result.out
    assert "held.json: not sent: video(s) failed to upload: held/clip.mp4" in result.out
    ids = stored_ids(platform)
    assert "FINE" in ids and "HELD" not in ids
    assert "HELD" not in [u["external_id"] for u in get_json(platform, "/api/users/")]


def test_unknown_host_key_is_one_line_and_sends_nothing(
    platform: SandboxInfo, tmp_path: Path
) -> None:
    text = Path(platform.config).read_text(encoding="utf-8")
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    config = tmp_path / "config.toml"
    config.write_text(
        text.replace(f'known_hosts = "{platform.known_hosts}"', f'known_hosts = "{empty}"'),
        encoding="utf-8",
    )
    config.chmod(0o600)
    work = tmp_path / "study"
    put_videos(work / "videos", {"hk/clip.mp4": b"h"})
    write_json(work / "hk.json", doc("HOSTKEY", "hk/clip.mp4"))
    result = cli(config, "sandbox", work)
    assert result.code == 3, result.out + result.err
    line = result.one_line_error()
    assert "SHA256:" in line and "--accept-new-host-key" in line
    assert "HOSTKEY" not in [u["external_id"] for u in get_json(platform, "/api/users/")]
    accepted = cli(config, "sandbox", work, "--accept-new-host-key")
    assert accepted.code == 0, accepted.out + accepted.err
    assert "HOSTKEY" in stored_ids(platform)
