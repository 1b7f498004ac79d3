"""``longterm backup verify``: re-read everything the backup holds and check it against what
was recorded when it was stored.

- SQLite's own ``PRAGMA integrity_check`` (pages, indexes, free lists);
- every record decompressed and re-hashed: its sha256 and size must be the ones stored;
- every listing chunk re-hashed, and every id it names present;
- every listing's chunks present and its record count right;
- every video under ``media_files/`` and every kept old version re-hashed against the md5
  recorded when it was fetched (a missing file is a failure too).

It only reads (the store is opened read-only), so it can run beside nothing else's writes
and on a copy of the backup. Any difference is a failure in the summary: exit status 1.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..media.local import md5_file
from ..summary import Summary
from .codec import Codec, digest, unpack_ids
from .store import SnapshotStore

MEDIA = "media_files"
TEXT = "text_files"
MAX_LISTED = 20
_BATCH = 200


def _check_db(store: SnapshotStore, summary: Summary) -> None:
    rows = [row[0] for row in store.conn.execute("PRAGMA integrity_check")]
    if rows != ["ok"]:
        for row in rows[:MAX_LISTED]:
            summary.fail("store", f"integrity_check: {row}")
    summary.count("integrity_check ok" if rows == ["ok"] else "integrity_check failed")


def _check_records(store: SnapshotStore, summary: Summary) -> set[int]:
    codec = Codec()
    ids: set[int] = set()
    last = 0
    bad = 0
    while True:
        rows = store.conn.execute(
            "SELECT id, sha256, size, data FROM records WHERE id > ? ORDER BY id LIMIT ?",
            (last, _BATCH),
        ).fetchall()
        if not rows:
            break
        for rid, sha, size, data in rows:
            last = rid
            ids.add(rid)
            try:
                raw = codec.decompress(data)
            except Exception as exc:  # zstd raises its own error type
                bad += 1
                summary.fail(f"record {rid}", f"cannot be decompressed: {exc}")
                continue
            if len(raw) != size or digest(raw) != sha:
                bad += 1
                summary.fail(f"record {rid}", "content differs from its recorded sha256")
            summary.bytes += len(raw)
    summary.count("records", len(ids))
    if bad:
        summary.count("bad records", bad)
    return ids


def _check_listings(store: SnapshotStore, records: set[int], summary: Summary) -> None:
    chunks: dict[int, int] = {}
    for cid, sha, packed in store.conn.execute("SELECT id, sha256, ids FROM chunks"):
        if digest(packed) != sha:
            summary.fail(f"chunk {cid}", "content differs from its recorded sha256")
            continue
        ids = unpack_ids(packed)
        missing = [i for i in ids if i not in records]
        if missing:
            summary.fail(f"chunk {cid}", f"names {len(missing)} missing record(s)")
        chunks[cid] = len(ids)
    summary.count("chunks", len(chunks))
    listings = 0
    for snap, name, packed, count in store.conn.execute(
        "SELECT l.snapshot_id, l.name, l.chunk_ids, l.records FROM listings l "
        "JOIN snapshots s ON s.id = l.snapshot_id WHERE s.committed_at IS NOT NULL"
    ):
        listings += 1
        cids = unpack_ids(packed)
        if any(c not in chunks for c in cids):
            summary.fail(f"snapshot {snap} {name}", "names a missing or damaged chunk")
        elif sum(chunks[c] for c in cids) != count:
            summary.fail(f"snapshot {snap} {name}", "record count differs from its chunks")
    summary.count("listings", listings)


def _check_file(root: Path, rel_path: str, md5: str, size: int, summary: Summary) -> bool:
    path = root.joinpath(*rel_path.split("/"))
    try:
        st = path.stat()
    except OSError:
        summary.fail(rel_path, "missing from the backup")
        return False
    if st.st_size != size:
        summary.fail(rel_path, f"size {st.st_size}, recorded {size}")
        return False
    actual = md5_file(path)
    if actual != md5:
        summary.fail(rel_path, f"md5 {actual}, recorded {md5}")
        return False
    summary.bytes += size
    return True


def _check_videos(store: SnapshotStore, dest: Path, summary: Summary) -> None:
    ok = bad = 0
    for video in store.videos():
        good = _check_file(dest, f"{MEDIA}/{video.rel}", video.md5, video.size, summary)
        ok, bad = ok + good, bad + (not good)
    for version in store.versions():
        good = _check_file(dest, version.path, version.md5, version.size, summary)
        ok, bad = ok + good, bad + (not good)
    summary.count("videos", ok + bad)
    if bad:
        summary.count("bad videos", bad)


def verify_backup(dest: Path) -> Summary:
    """Check the backup in ``dest``; blocking (run it in a thread)."""
    started = time.monotonic()
    summary = Summary(command="backup verify")
    with SnapshotStore.open(dest / TEXT, readonly=True) as store:
        latest = store.latest()
        summary.count("snapshots", len(store.snapshots()))
        _check_db(store, summary)
        records = _check_records(store, summary)
        _check_listings(store, records, summary)
        _check_videos(store, dest, summary)
        summary.details["latest_snapshot"] = latest.to_dict() if latest else None
    summary.details["dest"] = str(dest)
    summary.elapsed_s = time.monotonic() - started
    return summary
