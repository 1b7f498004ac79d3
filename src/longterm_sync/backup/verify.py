"""``longterm backup verify``: re-read everything the backup holds and check it against what
was recorded when it was stored.

- SQLite's own ``PRAGMA integrity_check`` (pages, indexes, free lists);
- every record decompressed and re-hashed: its sha256 and size must be the ones stored;
- every listing chunk re-hashed, and every id it names present;
- every listing's chunks present and its record count right;
- every video under ``media_files/`` and every kept old version re-hashed against the md5
  recorded when it was fetched (a missing file is a failure too): the store's record and each
  folder are two storage sides (:mod:`longterm_sync.media.sides`), compared by ``check``.

It only reads (the store is opened read-only), so it can run beside nothing else's writes
and on a copy of the backup. Any difference is a failure in the summary: exit status 1.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from ..config import Limits
from ..media.sides import Comparison, LocalSide, check
from ..summary import Summary
from .codec import Codec, digest, unpack_ids
from .files import MEDIA, TEXT, VERSIONS
from .store import SnapshotStore

__all__ = ["TEXT", "verify_backup"]

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


def _report(folder: str, result: Comparison, summary: Summary) -> int:
    """Failures of one folder against its record, in path order; the number of bad files."""
    recorded = dict(result.mismatches)
    bad = sorted([*result.missing, *recorded])
    for rel in bad:
        item = f"{folder}/{rel}"
        if rel not in recorded:
            summary.fail(item, "missing from the backup")
        elif (m := recorded[rel]).what in ("size", "md5"):
            summary.fail(item, f"{m.what} {m.b}, recorded {m.a}")
        else:
            summary.fail(item, m.describe(result.a_name, result.b_name))
    return len(bad)


def _check_videos(store: SnapshotStore, dest: Path, summary: Summary, checkers: int) -> None:
    """Each folder of videos (``media_files/``, ``media_versions/``) against the store's
    record of it; files the store does not record are not the store's to vouch for."""
    pairs = [
        (MEDIA, store.video_side(), LocalSide(dest / MEDIA)),
        (VERSIONS, store.version_side(VERSIONS), LocalSide(dest / VERSIONS)),
    ]

    async def compare() -> list[Comparison]:
        return [await check(recorded, held, concurrency=checkers) for _, recorded, held in pairs]

    ok = bad = 0
    for (folder, recorded, _), result in zip(pairs, asyncio.run(compare()), strict=True):
        bad += _report(folder, result, summary)
        ok += len(result.same)
        summary.bytes += sum(recorded.files[rel][0] for rel in result.same)
    summary.count("videos", ok + bad)
    if bad:
        summary.count("bad videos", bad)


def verify_backup(dest: Path, *, checkers: int = Limits.checkers) -> Summary:
    """Check the backup in ``dest``; blocking (run it in a thread). ``checkers`` files are
    re-hashed at once."""
    started = time.monotonic()
    summary = Summary(command="backup verify")
    with SnapshotStore.open(dest / TEXT, readonly=True) as store:
        latest = store.latest()
        summary.count("snapshots", len(store.snapshots()))
        _check_db(store, summary)
        records = _check_records(store, summary)
        _check_listings(store, records, summary)
        _check_videos(store, dest, summary, checkers)
        summary.details["latest_snapshot"] = latest.to_dict() if latest else None
    summary.details["dest"] = str(dest)
    summary.elapsed_s = time.monotonic() - started
    return summary
