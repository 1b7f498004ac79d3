"""The snapshot store alone: dedupe, listings, snapshots in time, rollback, restore, verify."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from longterm_sync.backup.codec import CHUNK_RECORDS, Codec
from longterm_sync.backup.files import feedback_name, results_name, schedule_name
from longterm_sync.backup.restore import LATEST, replace_latest, write_snapshot
from longterm_sync.backup.store import Prepared, SnapshotStore
from longterm_sync.backup.verify import verify_backup
from longterm_sync.errors import UsageError

EXT = "a" * 64


def _result(day: int, video: str, size: int = 2000) -> bytes:
    samples = ",".join(str(day * 7 + k % 13) for k in range(size // 3))
    return (
        f'{{"external_id":"{EXT}","date":"2024-03-{day:02d}T17:00:00+01:00",'
        f'"result":{{"video":"{video}","samples":[{samples}],"user_feedback":null}}}}'
    ).encode()


def _feedback(day: int, video: str, comment: str) -> bytes:
    return (
        f'{{"external_id":"{EXT}","video":"{video}",'
        f'"date":"2024-03-{day:02d}T17:30:00+01:00","comment":"{comment}"}}'
    ).encode()


def _prepared(codec: Codec, kind: str, items: list[bytes]) -> list[Prepared]:
    return [Prepared.make(codec, kind, item, n) for n, item in enumerate(items)]


def _snapshot(store: SnapshotStore, results: list[bytes], feedback: list[bytes]) -> int:
    codec = Codec()
    store.begin_snapshot("nightly")
    res_ids = store.put_records(_prepared(codec, "result", results))
    fb_ids = store.put_records(_prepared(codec, "feedback", feedback))
    sched = orjson.dumps({"external_id": EXT, "language": "PL", "schedule": []})
    (sched_id,) = store.put_records([Prepared.make(codec, "schedule", sched, None)])
    store.set_listing(results_name(EXT), res_ids)
    store.set_listing(feedback_name(EXT), fb_ids)
    store.set_listing(schedule_name(EXT), [sched_id])
    return store.commit_snapshot(bytes_fetched=sum(map(len, results)), info={"participants": [EXT]})


def test_records_are_stored_once_and_a_growing_file_adds_little(tmp_path: Path) -> None:
    results = [_result(d % 28 + 1, f"v{d}.mp4") for d in range(3 * CHUNK_RECORDS)]
    with SnapshotStore.open(tmp_path) as store:
        _snapshot(store, results, [])
        first = store.latest()
        assert first is not None and first.records_added == len(results) + 1
        _snapshot(store, [*results, _result(28, "new.mp4", 3000)], [])
        second = store.latest()
        assert second is not None and second.id == first.id + 1
        assert second.records_added == 1  # only the new result; the schedule is the same
        # the new day costs its compressed record plus one short chunk, not a new list
        assert second.bytes_stored < 1500 + 8 * CHUNK_RECORDS + 400
        assert store.listing(second.id, results_name(EXT)) == [
            *store.listing(first.id, results_name(EXT)),  # type: ignore[misc]
            len(results) + 2,
        ]
        assert len(store.snapshots()) == 2
        assert store.snapshot_at(first.committed_at) == first
        assert store.snapshot_at(first.committed_at - timedelta(seconds=1)) is None
        assert store.snapshot_at(datetime.now(UTC)) == second


def test_abort_and_a_second_writer(tmp_path: Path) -> None:
    codec = Codec()
    with SnapshotStore.open(tmp_path) as store:
        _snapshot(store, [_result(1, "a.mp4")], [])
        store.begin_snapshot("full")
        store.put_records(_prepared(codec, "result", [_result(2, "b.mp4")]))
        store.set_mark(EXT, last_record_date=datetime.now(UTC), full_pass_at=None)
        store.abort()
        assert [s.id for s in store.snapshots()] == [1]
        assert store.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 2
        assert store.marks() == {}
        with pytest.raises(ValueError):
            store.begin_snapshot("weekly")


def test_readonly_open_of_nothing_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no backup store"):
        SnapshotStore.open(tmp_path / "nowhere", readonly=True)


def test_restore_rebuilds_user_feedback_and_the_all_files(tmp_path: Path) -> None:
    results = [_result(1, "a.mp4", 300), _result(2, "b.mp4", 300), _result(3, "a.mp4", 300)]
    feedback = [_feedback(1, "a.mp4", "dark"), _feedback(3, "a.mp4", "ok")]
    with SnapshotStore.open(tmp_path / "store") as store:
        _snapshot(store, results, feedback)
        snap = store.latest()
        assert snap is not None
        written = write_snapshot(store, snap, tmp_path / "out")
    out = tmp_path / "out"
    assert sorted(written.files) == sorted(
        [
            results_name(EXT),
            feedback_name(EXT),
            schedule_name(EXT),
            "results_all.json",
            "results_feedback_all.json",
        ]
    )
    lines = (out / results_name(EXT)).read_bytes().split(b"\n")
    assert lines[0] == b"[" and lines[-2] == b"]" and len(lines) == 6
    items = orjson.loads((out / results_name(EXT)).read_bytes())
    assert [len(i["result"]["user_feedback"]) for i in items] == [2, 0, 2]
    assert items[0]["result"]["user_feedback"][1]["comment"] == "ok"
    assert (out / "results_all.json").read_bytes() == (out / results_name(EXT)).read_bytes()
    assert orjson.loads((out / feedback_name(EXT)).read_bytes())[0]["comment"] == "dark"
    assert (out / schedule_name(EXT)).read_bytes().startswith(b'{\n  "external_id"')


def test_latest_is_switched_by_one_rename(tmp_path: Path) -> None:
    text = tmp_path / "text_files"
    with SnapshotStore.open(text) as store:
        _snapshot(store, [_result(1, "a.mp4", 300)], [])
        first = store.latest()
        assert first is not None
        replace_latest(store, first, text)
        assert (text / LATEST).is_symlink()
        before = (text / LATEST / results_name(EXT)).read_bytes()
        _snapshot(store, [_result(1, "a.mp4", 300), _result(2, "b.mp4", 300)], [])
        second = store.latest()
        assert second is not None
        (text / f".latest-{second.id}.partial").mkdir()  # left by a killed run
        replace_latest(store, second, text)
    after = (text / LATEST / results_name(EXT)).read_bytes()
    assert after != before and after.count(b"\n") == 4
    assert sorted(p.name for p in text.glob(".latest-*")) == [f".latest-{second.id}"]


def _backup_with_video(tmp_path: Path) -> Path:
    dest = tmp_path / "dest"
    video = dest / "media_files" / "sub" / "v.mp4"
    video.parent.mkdir(parents=True)
    video.write_bytes(b"video bytes")
    with SnapshotStore.open(dest / "text_files") as store:
        _snapshot(store, [_result(1, "a.mp4"), _result(2, "b.mp4")], [])
        store.begin_snapshot("nightly")
        store.put_video("sub/v.mp4", "b6f2b3f9c3f3d8a4c1b8f5f3d1a3c2f1", 11)
        store.commit_snapshot()
    return dest


def test_verify_passes_then_finds_a_damaged_record_and_video(tmp_path: Path) -> None:
    dest = _backup_with_video(tmp_path)
    import hashlib

    md5 = hashlib.md5(b"video bytes").hexdigest()
    with sqlite3.connect(dest / "text_files" / "store.sqlite3") as conn:
        conn.execute("UPDATE videos SET md5 = ?", (md5,))
    ok = verify_backup(dest)
    assert ok.ok, ok.failures
    assert ok.counts["records"] == 3 and ok.counts["videos"] == 1
    codec = Codec()
    with sqlite3.connect(dest / "text_files" / "store.sqlite3") as conn:
        conn.execute("UPDATE records SET data = ? WHERE id = 1", (codec.compress(b"tampered"),))
    (dest / "media_files" / "sub" / "v.mp4").write_bytes(b"video bytez")
    bad = verify_backup(dest)
    assert not bad.ok
    reasons = {f.item: f.reason for f in bad.failures}
    assert "sha256" in reasons["record 1"]
    assert "md5" in reasons["media_files/sub/v.mp4"]


def test_the_store_is_two_sides_that_verify_compares_with_its_folders(tmp_path: Path) -> None:
    """The store's record of ``media_files/`` and of ``media_versions/`` are storage sides:
    ``check`` against the folders finds a changed, a resized and a missing file (each named
    once, with verify's wording), passes the rest, and ignores files the store never
    recorded. A record is read-only."""
    import asyncio
    import hashlib

    from longterm_sync.media.sides import LocalSide, check

    dest = tmp_path / "dest"
    files = {
        "media_files/a.mp4": b"first video",
        "media_files/sub/b.mp4": b"second video",
        "media_files/c.mp4": b"third",
        "media_versions/2026-01-01T030000/a.mp4": b"old first",
        "media_versions/2026-01-01T030000/gone.mp4": b"old gone",
    }
    for name, data in files.items():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_bytes(data)
    (dest / "media_files" / "unrecorded.mp4").write_bytes(b"not the store's")
    with SnapshotStore.open(dest / "text_files") as store:
        store.begin_snapshot("full")
        for name, data in files.items():
            md5, size = hashlib.md5(data).hexdigest(), len(data)
            if name.startswith("media_files/"):
                store.put_video(name.removeprefix("media_files/"), md5, size)
            else:
                store.put_version(name, name.rsplit("/", 1)[1], md5, size)
        store.commit_snapshot()
    assert verify_backup(dest).counts["videos"] == 5 and verify_backup(dest).ok

    (dest / "media_files" / "a.mp4").write_bytes(b"first videX")  # same size, other bytes
    (dest / "media_files" / "c.mp4").write_bytes(b"3rd")
    (dest / "media_versions" / "2026-01-01T030000" / "gone.mp4").unlink()
    with SnapshotStore.open(dest / "text_files", readonly=True) as store:
        recorded = store.video_side()
        versions = store.version_side("media_versions")
        with pytest.raises(UsageError, match="record"):
            asyncio.run(recorded.put("x.mp4", dest / "media_files" / "a.mp4", "0" * 32))
    media = asyncio.run(check(recorded, LocalSide(dest / "media_files")))
    assert media.same == ["sub/b.mp4"] and media.extra == ["unrecorded.mp4"]
    assert sorted(media.mismatches) == ["a.mp4", "c.mp4"]
    assert media.mismatches["c.mp4"].what == "size" and media.mismatches["a.mp4"].what == "md5"
    kept = asyncio.run(check(versions, LocalSide(dest / "media_versions")))
    assert kept.missing == ["2026-01-01T030000/gone.mp4"]
    assert kept.same == ["2026-01-01T030000/a.mp4"]

    report = verify_backup(dest)
    assert not report.ok
    assert report.counts["videos"] == 5 and report.counts["bad videos"] == 3
    assert [(f.item, f.reason) for f in report.failures] == [
        (
            "media_files/a.mp4",
            f"md5 {hashlib.md5(b'first videX').hexdigest()}, "
            f"recorded {hashlib.md5(b'first video').hexdigest()}",
        ),
        ("media_files/c.mp4", "size 3, recorded 5"),
        ("media_versions/2026-01-01T030000/gone.mp4", "missing from the backup"),
    ]
