"""``longterm backup`` against the sandbox: full then nightly runs, latest/ byte-identical to
download-results, incremental fetch, videos never deleted, verify, list, restore, status."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import orjson

from backup_helpers import (
    STUDY,
    backup,
    backup_json,
    fresh_download,
    latest_subset,
    orphan_id,
    participant_ids,
    post,
    result_body,
)
from clitools import run_cli
from fixtures_sandbox import SandboxInfo
from rest_helpers import tree


def test_full_then_nightly_backup_matches_fresh_downloads(
    sandbox_factory: object, tmp_path: Path
) -> None:
    info: SandboxInfo = sandbox_factory(*STUDY)  # type: ignore[operator]
    dest = tmp_path / "backup"
    ids = participant_ids(info)
    first = backup_json(info, dest)
    assert first["ok"], first["failures"]
    assert first["details"]["kind"] == "full" and first["details"]["snapshot"] == 1
    assert first["counts"]["participants"] == len(ids)
    fresh = fresh_download(info, tmp_path / "fresh1")
    assert latest_subset(dest, set(fresh)) == fresh  # byte for byte
    copy1 = tmp_path / "latest1"
    shutil.copytree(dest / "text_files" / "latest", copy1)
    assert (dest / "media_files").is_dir() and any((dest / "media_files").rglob("*.mp4"))
    log1 = (dest / "backup_log.txt").read_text()
    assert log1.count("\n== ") + log1.startswith("== ") == 1

    # a new day for one participant, a late upload inside the lookback, a comment, and a
    # row of the orphan account that no participant filter returns
    ext = ids[0]
    post(info, ext, "watch-results", result_body("2024-03-16T18:00:00", "clip_new.mp4", "new"))
    post(info, ext, "watch-results", result_body("2024-03-14T08:00:00", "clip_late.mp4", "late"))
    post(info, ext, "feedback-comments",
         {"video": "clip_new.mp4", "date": "2024-03-16T18:05:00", "comment": "nowy"})  # fmt: skip
    post(info, orphan_id(info), "watch-results", result_body("2024-03-12T10:00:00", "o.mp4", "o"))

    second = backup_json(info, dest, "--lookback-days", "2")
    assert second["ok"], second["failures"]
    assert second["details"]["kind"] == "nightly"
    assert second["counts"]["full participants"] == 0
    assert second["counts"]["records added"] == 3
    # only the lookback window was asked for, far fewer rows than the study holds
    assert second["counts"]["records fetched"] < second["counts"]["results"] // 2
    assert second["bytes"] < first["bytes"] / 2
    fresh2 = fresh_download(info, tmp_path / "fresh2")
    assert latest_subset(dest, set(fresh2)) == fresh2
    mine = orjson.loads(fresh2[f"results_{ext}.json"])
    assert mine[-1]["result"]["marker"] == "new"
    assert [f["comment"] for f in mine[-1]["result"]["user_feedback"]] == ["nowy"]
    assert (
        orjson.loads((dest / "text_files" / "latest" / "unassigned_results.json").read_bytes())
        == []
    )

    # a row uploaded very late, older than the lookback: a nightly run cannot see it...
    post(info, ext, "watch-results", result_body("2024-03-09T08:00:00", "clip_old.mp4", "old"))
    nightly = backup_json(info, dest, "--lookback-days", "2")
    assert nightly["counts"]["records added"] == 0
    assert latest_subset(dest, set(fresh2)) == fresh2
    # ...the full pass does, and the orphan's row too
    third = backup_json(info, dest, "--full")
    assert third["details"]["kind"] == "full" and third["counts"]["unassigned rows"] == 1
    assert third["counts"]["records added"] == 2
    unassigned = orjson.loads(
        (dest / "text_files" / "latest" / "unassigned_results.json").read_bytes()
    )
    assert [(u["external_id"], u["result"]["marker"]) for u in unassigned] == [("", "o")]
    fresh3 = fresh_download(info, tmp_path / "fresh3")
    assert latest_subset(dest, set(fresh3)) == fresh3

    listed = run_cli(["backup", "list", "--dest_location", str(dest)])
    assert listed.code == 0, listed.err
    assert [line.split()[3] for line in listed.out.splitlines()[1:5]] == [
        "full", "nightly", "nightly", "full"
    ]  # fmt: skip
    verified = run_cli(["backup", "verify", "--dest_location", str(dest), "--json"])
    assert verified.code == 0, verified.out
    assert orjson.loads(verified.out)["counts"]["records"] > 0

    # restore as of the first snapshot: the first run's files exactly
    snaps = orjson.loads(run_cli(["backup", "list", "--dest_location", str(dest), "--json"]).out)
    when = snaps["details"]["snapshots"][0]["committed_at"]
    restored = run_cli(
        ["backup", "restore", "--dest_location", str(dest), "--as-of", when, "--to",
         str(tmp_path / "r1")]
    )  # fmt: skip
    assert restored.code == 0, restored.err
    assert tree(tmp_path / "r1") == tree(copy1)
    again = run_cli(
        ["backup", "restore", "--dest_location", str(dest), "--to", str(tmp_path / "r1")]
    )
    assert again.code == 2 and "not an empty folder" in again.one_line_error()
    too_early = run_cli(
        ["backup", "restore", "--dest_location", str(dest), "--as-of", "2020-01-01",
         "--to", str(tmp_path / "r0")]
    )  # fmt: skip
    assert too_early.code == 2 and "no snapshot" in too_early.one_line_error()

    log = (dest / "backup_log.txt").read_text()
    assert log.count("== ") == 4 and "nightly snapshot 2: ok" in log


def test_videos_are_never_deleted_and_changes_keep_the_old_copy(
    sandbox_factory: object, tmp_path: Path
) -> None:
    info: SandboxInfo = sandbox_factory(*STUDY)  # type: ignore[operator]
    dest = tmp_path / "backup"
    assert backup_json(info, dest)["ok"]
    videos = sorted(p for p in info.media_root.rglob("*.mp4"))
    changed, removed = videos[0], videos[1]
    rel_changed = changed.relative_to(info.media_root).as_posix()
    rel_removed = removed.relative_to(info.media_root).as_posix()
    old_bytes = (dest / "media_files" / rel_changed).read_bytes()
    changed.write_bytes(b"a new cut of the video")
    import hashlib

    Path(f"{changed}.md5sum").write_text(hashlib.md5(b"a new cut of the video").hexdigest() + "\n")
    removed.unlink()
    Path(f"{removed}.md5sum").unlink()

    summary = backup_json(info, dest)
    assert summary["ok"], summary["failures"]
    warnings = " ".join(summary["warnings"])
    assert rel_removed in warnings and "gone from the server" in warnings
    assert rel_changed in warnings and "old copies kept" in warnings
    assert (dest / "media_files" / rel_removed).exists()
    assert (dest / "media_files" / rel_changed).read_bytes() == b"a new cut of the video"
    kept = list((dest / "media_versions").rglob(Path(rel_changed).name))
    assert [p.read_bytes() for p in kept] == [old_bytes]
    verified = run_cli(["backup", "verify", "--dest_location", str(dest)])
    assert verified.code == 0, verified.out + verified.err
    kept[0].write_bytes(b"bit rot")
    broken = run_cli(["backup", "verify", "--dest_location", str(dest)])
    assert broken.code == 1 and "media_versions" in broken.out


def test_an_old_copy_left_unrecorded_by_a_killed_run_is_recorded_and_verified(
    sandbox_factory: object, tmp_path: Path
) -> None:
    """A run killed between moving a changed video's old copy aside and recording it."""
    info: SandboxInfo = sandbox_factory(*STUDY)  # type: ignore[operator]
    dest = tmp_path / "backup"
    assert backup_json(info, dest)["ok"]
    rel = sorted(p for p in (dest / "media_files").rglob("*.mp4"))[0]
    rel_name = rel.relative_to(dest / "media_files").as_posix()
    left = dest / "media_versions" / "2026-01-01T030000" / rel_name
    left.parent.mkdir(parents=True)
    left.write_bytes(b"the old cut a killed run moved aside")
    summary = backup_json(info, dest)
    assert summary["ok"], summary["failures"]
    assert "interrupted run recorded" in " ".join(summary["warnings"])
    assert rel_name in " ".join(summary["warnings"])
    again = backup_json(info, dest)
    assert "interrupted run" not in " ".join(again["warnings"])
    assert run_cli(["backup", "verify", "--dest_location", str(dest)]).code == 0
    left.write_bytes(b"bit rot")
    broken = run_cli(["backup", "verify", "--dest_location", str(dest)])
    assert broken.code == 1 and "2026-01-01T030000" in broken.out


def test_a_second_run_on_the_same_destination_stops_with_status_5(
    sandbox_factory: object, tmp_path: Path
) -> None:
    from longterm_sync.lock import DestinationLock

    info: SandboxInfo = sandbox_factory(*STUDY)  # type: ignore[operator]
    dest = tmp_path / "backup"
    with DestinationLock(dest):
        busy = backup(info, dest, "--no-videos")
    assert busy.code == 5 and "in use by another longterm run" in busy.one_line_error()
    assert not (dest / "text_files").exists()
    assert backup(info, dest, "--no-videos").code == 0


def test_status_and_script_shim(sandbox_factory: object, tmp_path: Path) -> None:
    info: SandboxInfo = sandbox_factory(*STUDY)  # type: ignore[operator]
    dest = tmp_path / "backup"
    none = run_cli(["backup", "status", "--dest_location", str(dest)])
    assert none.code == 2 and "no backup store" in none.one_line_error()
    done = backup(info, dest, "--no-videos", "-q", script=True)
    assert done.code == 0, done.err
    ok = run_cli(["backup", "status", "--dest_location", str(dest), "--max-age-hours", "30"])
    assert ok.code == 0, ok.out + ok.err
    late = run_cli(["backup", "status", "--dest_location", str(dest), "--max-age-hours", "1e-9"])
    assert late.code == 1
    assert late.out.count("\n") == 1 and "finished" in late.out and "limit" in late.out
    assert datetime.now(UTC).year >= 2024
