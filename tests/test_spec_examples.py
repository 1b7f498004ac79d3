"""Every "Example of use" line of the seed's documentation runs, and exits 0.

The lines below are copied from the original documentation (longterm-backend.md; tests do
not read it). They are translated only as far as a machine without the real server needs:
``dev`` and ``prod`` are profiles of a config.toml pointing to a sandbox, ``~`` is a
temporary home holding the sandbox's SSH key under the documented name, placeholders
(``name,surname,phone``) become a real participant, and the "direct" example's host becomes
the sandbox's ``127.0.0.1:PORT`` plus ``--ssh-port`` (its SSH is not on port 22).
"""

from __future__ import annotations

import csv
import json
import shlex
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from clitools import REPO, Result, run_cli
from fixtures_sandbox import SandboxInfo, start_sandbox
from longterm_sync.timeutil import WARSAW, today_in
from upload_helpers import put_videos, schedule, write_json

# Each "Example of use" line, as the documentation prints it (user_activity's line goes on
# with prose, "This activity requires list of users...", which is not part of the command).
EXAMPLES = [
    "python ./scripts/upload-schedule.py --key ~/.ssh/media@my.custom.server --server=dev "
    "./upload_schedule_v01/videos/ ./upload_schedule_v01",
    "python ./scripts/download-schedule.py --key ~/.ssh/media@my.custom.server --server=dev "
    "--mode=video+json ./videos_from_server",
    "python ./scripts/download-results.py --server=dev",
    "python ./scripts/user_feedback.py --server=dev",
    "python ./scripts/user_activity.py --server=dev -excel_time=users_prod_all_2022_04.xlsx",
    "python ./scripts/download-results.py --key ~/.ssh/media-dev@dev-my.custom.server "
    "--server=dev --user_time=name,surname,phone[,2021-01-01T00:00,2022-01-01T23:59]",
    # the "direct" example of the documentation's closing note
    'python scripts/upload-schedule.py --token="666b38da30021bae590d54e7bfee1d90df53a811" '
    '--server="dev-my.custom.server" --key="/home/user/.ssh/media@dev-my.custom.server" '
    "./dev_server_schedule/videos ./dev_server_schedule/",
]


@dataclass
class Setup:
    info: SandboxInfo
    work: Path
    home: Path
    person: dict[str, str]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("spec-examples")
    study = ["--users", "2", "--days", "3", "--samples", "20", "--video-mb", "1", "--seed", "5"]
    info = start_sandbox(root / "server", study)
    try:
        home = root / "home"
        (home / ".ssh").mkdir(parents=True)
        key = home / ".ssh" / "media@my.custom.server"
        shutil.copyfile(info.key, key)
        key.chmod(0o600)
        shutil.copyfile(info.known_hosts, home / ".ssh" / "known_hosts")
        work = root / "work"
        work.mkdir()
        profile = (
            f'url = "{info.url}"\nssh_host = "{info.ssh_host}"\nssh_port = {info.ssh_port}\n'
            f'media_dir = "{info.media_dir}"\n'
        )
        (work / "config.toml").write_text(
            f'salt = "{info.salt}"\n[servers.dev]\n{profile}token = "{info.token}"\n'
            f"[servers.prod]\n{profile}"
        )
        (work / "config.toml").chmod(0o600)
        (work / ".env").write_text(f"TOKEN_PROD={info.token}\n")  # prod's token, as old .env
        with open(info.study_dir / "users.csv", encoding="utf-8") as fh:
            people = list(csv.DictReader(fh))
        pd.DataFrame(
            {"external_id": [p["external_id"] for p in people], "start_date": "", "stop_date": ""}
        ).to_excel(work / "users_prod_all_2022_04.xlsx", index=False)
        today = today_in(WARSAW)
        for folder, name in (("upload_schedule_v01", "Spec_001"), ("dev_server_schedule", "S2")):
            days = [today + timedelta(days=n) for n in (3, 4)]
            write_json(
                work / folder / f"{name}.json",
                schedule(days, name=name, video=f"spec/{name}.mp4"),
            )
            put_videos(work / folder / "videos", {f"spec/{name}.mp4": name.encode() * 1000})
        yield Setup(info, work, home, people[0])
    finally:
        info.stop()


def translate(line: str, s: Setup) -> list[str]:
    """The documented line as argv for this machine (see the module docstring)."""
    port = s.info.url.rsplit(":", 1)[1]
    line = line.replace("name,surname,phone[,", "{name},{surname},{phone},".format(**s.person))
    line = line.replace("2022-01-01T23:59]", "2022-01-01T23:59")
    line = line.replace("666b38da30021bae590d54e7bfee1d90df53a811", s.info.token)
    line = line.replace(
        '"dev-my.custom.server"', f'"127.0.0.1:{port}" --ssh-port={s.info.ssh_port}'
    )
    line = line.replace(
        "/home/user/.ssh/media@dev-my.custom.server", "~/.ssh/media@my.custom.server"
    )
    argv = [arg.replace("~/", f"{s.home}/", 1) for arg in shlex.split(line)]
    assert argv[0] == "python" and argv[1].removeprefix("./").startswith("scripts/")
    return [sys.executable, str(REPO / argv[1]), *argv[2:]]


def run(argv: list[str], setup: Setup, cwd: Path) -> Result:
    env = {"HOME": str(setup.home)}
    return run_cli(argv[2:], cwd=cwd, env=env, script=Path(argv[1]).stem)


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_example_of_use_exits_0(setup: Setup, index: int) -> None:
    argv = translate(EXAMPLES[index], setup)
    result = run(argv, setup, setup.work)
    assert result.code == 0, (EXAMPLES[index], result.out[-2000:], result.err[-2000:])
    assert "Traceback" not in result.err


def test_download_schedule_example_fills_the_positional_folder(setup: Setup) -> None:
    run(translate(EXAMPLES[1], setup), setup, setup.work)
    videos = setup.work / "videos_from_server"
    mp4 = list(videos.rglob("*.mp4"))
    assert mp4 and all(Path(f"{p}.md5sum").is_file() for p in mp4)
    assert not (setup.work / "video_from_server").exists()  # not the default folder


def test_results_from_a_study_sub_folder(setup: Setup) -> None:
    """The documented workflow: ``cd study/user_001; python ../../scripts/...``: the config
    and the .env of the study's root are found from the sub-folder."""
    folder = setup.work / "study" / "user_001"
    folder.mkdir(parents=True)
    result = run_cli(
        ["--server=prod", "--json"],
        cwd=folder,
        env={"HOME": str(setup.home)},
        script="download-results",
    )
    assert result.code == 0, result.err
    assert json.loads(result.out)["counts"]["participants"] >= 2
    assert (folder / "results_all.json").is_file()
