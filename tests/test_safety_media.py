"""Issue 8, points 3 and 4 for videos, against the real OpenSSH sshd: two mirrors into one
folder never corrupt a video, and a helper process dies with its parent."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clitools import run_cli
from fixtures_sshd import SshdInfo, process_children, write_sshd_profile
from media_helpers import md5, publish

pytestmark = pytest.mark.sshd


def _config(info: SshdInfo, media: Path, folder: Path, **limits: int) -> Path:
    config = write_sshd_profile(info, folder / "config.toml")
    text = config.read_text().replace(info.media_dir, str(media))
    text += "\n[limits]\n" + "".join(f"{k} = {v}\n" for k, v in limits.items())
    config.write_text(text)
    return config


def _mirror_args(config: Path, dest: Path, *extra: str) -> list[str]:
    return ["download-schedule", "--config", str(config), "--server", "sshd", "--mode=video",
            f"--video_path={dest}", *extra]  # fmt: skip


def _popen(args: list[str]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKEN_", "LONGTERM_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "longterm_sync", *args],
        env=env,
        # a shell's background job inherits SIGINT ignored; a user's Ctrl-C is not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _check_videos(dest: Path, videos: dict[str, bytes]) -> None:
    for rel, data in videos.items():
        assert md5((dest / rel).read_bytes()) == md5(data), rel
        assert (dest / f"{rel}.md5sum").read_text().split()[0] == md5(data)


def test_two_mirrors_into_one_folder_x20(openssh_server: SshdInfo, tmp_path: Path) -> None:
    media = openssh_server.media_root / "concurrent"
    videos = {f"s{i % 2}/v{i}.mp4": os.urandom(48_000 + i) for i in range(6)}
    for rel, data in videos.items():
        publish(media, rel, data)
    config = _config(openssh_server, media, tmp_path)
    for pair in range(10):  # two tries at once (two folders), two mirrors into each
        tries = [(tmp_path / f"d{pair}-{k}", ("--wait",) if k else ()) for k in range(2)]
        procs = [(dest, wait, _popen(_mirror_args(config, dest, *wait))) for dest, wait in tries]
        procs += [(dest, wait, _popen(_mirror_args(config, dest, *wait))) for dest, wait in tries]
        outcome: dict[Path, list[tuple[int, str]]] = {}
        for dest, _, proc in procs:
            _, err = proc.communicate(timeout=120)
            assert "Traceback" not in err, err
            outcome.setdefault(dest, []).append((proc.returncode, err))
        for dest, wait in tries:
            codes = sorted(code for code, _ in outcome[dest])
            if wait:
                assert codes == [0, 0], outcome[dest]
            else:
                assert codes in ([0, 0], [0, 5]), outcome[dest]
                busy = [err for code, err in outcome[dest] if code == 5]
                assert all("in use by another longterm run (pid " in err for err in busy)
            _check_videos(dest, videos)


def _children(pid: int) -> list[int]:
    return process_children().get(pid, [])


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for path in root.rglob("*"):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        out[str(path)] = (st.st_size, st.st_mtime_ns)
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_helper_process_dies_with_its_parent(openssh_server: SshdInfo, tmp_path: Path) -> None:
    media = openssh_server.media_root / "deathsig"
    for i in range(12):
        publish(media, f"big{i:02d}.mp4", os.urandom(6 << 20))
    config = _config(
        openssh_server, media, tmp_path,
        sftp_processes=2, sftp_transfers=1, sftp_max_requests=2, sftp_block_size=16384,
    )  # fmt: skip
    dest = tmp_path / "videos"
    proc = _popen(_mirror_args(config, dest))
    deadline = time.monotonic() + 60
    helpers: list[int] = []
    while not helpers and time.monotonic() < deadline and proc.poll() is None:
        helpers = _children(proc.pid)
        time.sleep(0.05)
    assert helpers, "no helper process started"
    time.sleep(0.8)  # both processes are writing now
    assert proc.poll() is None, "the mirror finished before it could be killed"
    proc.kill()
    proc.wait()
    time.sleep(0.3)
    before = _snapshot(dest)
    time.sleep(1.0)
    assert _snapshot(dest) == before
    assert not any(_alive(pid) for pid in helpers)
    proc.communicate()
    # the next run resumes and finishes; every file checks out
    again = run_cli(_mirror_args(config, dest))
    assert again.code == 0, again.err
    for i in range(12):
        name = f"big{i:02d}.mp4"
        assert md5((dest / name).read_bytes()) == md5((media / name).read_bytes())


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_mirror_is_quiet(
    sig: int, status: int, openssh_server: SshdInfo, tmp_path: Path
) -> None:
    media = openssh_server.media_root / f"interrupt{sig}"
    for i in range(12):
        publish(media, f"v{i:02d}.mp4", os.urandom(6 << 20))
    config = _config(
        openssh_server, media, tmp_path,
        sftp_processes=2, sftp_transfers=2, sftp_max_requests=2, sftp_block_size=16384,
    )  # fmt: skip
    dest = tmp_path / "videos"
    proc = _popen(_mirror_args(config, dest))
    deadline = time.monotonic() + 60
    while not _children(proc.pid) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    for word in ("Traceback", "never retrieved", "Exception"):
        assert word not in err, err
    allowed = (".longterm-md5cache.json",)  # video partials stay for resume
    leftovers = [p.name for p in dest.rglob(".*") if not p.name.endswith(".mp4.partial")]
    assert [n for n in leftovers if n not in allowed] == []


def test_disk_full_mid_mirror_is_one_line(openssh_server: SshdInfo, tmp_path: Path) -> None:
    media = openssh_server.media_root / "diskfull"
    for i in range(6):
        publish(media, f"v{i}.mp4", os.urandom(3 << 20))
    config = _config(openssh_server, media, tmp_path, sftp_transfers=3)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKEN_", "LONGTERM_"))}

    def small_disk() -> None:  # no file may grow past 1 MiB: writes fail as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    proc = subprocess.run(
        [sys.executable, "-m", "longterm_sync", *_mirror_args(config, tmp_path / "videos")],
        env=env, capture_output=True, text=True, timeout=120, preexec_fn=small_disk,
        check=False,
    )  # fmt: skip
    for word in ("Traceback", "never retrieved", "Exception"):
        assert word not in proc.stderr, proc.stderr
    assert proc.returncode in (1, 4), proc.stdout + proc.stderr
    assert not list((tmp_path / "videos").rglob("v*.mp4"))
