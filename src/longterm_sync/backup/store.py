"""The snapshot store: distinct records once, and per run a listing of every output file.

``SnapshotStore`` is blocking (SQLite); the pipeline calls it from one worker thread at a
time. A run is::

    store = SnapshotStore.open(folder)
    snap = store.begin_snapshot("nightly")       # BEGIN IMMEDIATE: one writer at a time
    ids = store.put_records(prepared)             # new records stored, known ones found
    store.set_listing("results_<id>.json", ids)   # the file's records, in order
    store.set_mark(external_id, last_record_date=..., full_pass_at=...)
    store.commit_snapshot(bytes_fetched=..., info={...})   # or abort(); a kill = abort

Nothing written between ``begin_snapshot`` and ``commit_snapshot`` is visible to readers or
survives a crash: earlier snapshots are never touched, so they stay restorable whatever
happens to a run.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import LocalIOError, UsageError
from .codec import Codec, digest, pack_ids, split_chunks, unpack_ids
from .schema import connect

if TYPE_CHECKING:
    from ..media.sides import RecordedSide

STORE_NAME = "store.sqlite3"
KINDS = ("nightly", "full")
_BATCH = 500  # ids per "WHERE id IN (...)" query (SQLite allows 32766 parameters)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class Prepared:
    """A record ready to store: canonical bytes hashed, compressed in the caller's thread."""

    sha256: bytes
    kind: str
    date_us: int | None
    size: int
    data: bytes  # zstd-compressed canonical bytes; b"" for a record known to be stored

    @classmethod
    def make(cls, codec: Codec, kind: str, canonical: bytes, date_us: int | None) -> Prepared:
        return cls(digest(canonical), kind, date_us, len(canonical), codec.compress(canonical))


@dataclass(frozen=True)
class SnapshotInfo:
    id: int
    kind: str
    started_at: datetime
    committed_at: datetime
    records_added: int
    bytes_fetched: int
    bytes_stored: int
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "started_at": _iso(self.started_at),
            "committed_at": _iso(self.committed_at),
            "records_added": self.records_added,
            "bytes_fetched": self.bytes_fetched,
            "bytes_stored": self.bytes_stored,
        }


@dataclass(frozen=True)
class Mark:
    """Where a participant's backup stands: newest record backed up, last full pass."""

    external_id: str
    last_record_date: datetime | None
    full_pass_at: datetime | None


@dataclass(frozen=True)
class VideoRow:
    rel: str
    md5: str
    size: int
    first_snapshot: int
    last_seen_snapshot: int
    gone_since: str | None


@dataclass(frozen=True)
class VersionRow:
    path: str  # relative to the backup's root folder
    rel: str
    md5: str
    size: int
    snapshot_id: int
    kept_at: str


class SnapshotStore:
    def __init__(self, conn: sqlite3.Connection, path: Path, readonly: bool) -> None:
        self.conn = conn
        self.path = path
        self.readonly = readonly
        self.current: int | None = None
        self.records_added = 0
        self.bytes_stored = 0
        self._codec = Codec()

    @classmethod
    def open(cls, folder: Path, *, readonly: bool = False) -> SnapshotStore:
        """The store in ``folder`` (``<dest>/text_files``); created unless ``readonly``."""
        path = folder / STORE_NAME
        return cls(connect(path, readonly=readonly), path, readonly)

    def close(self) -> None:
        if self.current is not None:
            self.abort()
        self.conn.close()

    def __enter__(self) -> SnapshotStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing one snapshot ----------------------------------------------------------------

    def begin_snapshot(self, kind: str) -> int:
        if kind not in KINDS:
            raise ValueError(f"unknown snapshot kind {kind!r}")
        if self.readonly:
            raise UsageError("the backup store was opened read-only")
        if self.current is not None:
            raise RuntimeError("a snapshot is already open")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise LocalIOError(
                f"the backup store {self.path} is busy: {exc}",
                hint="another backup is writing to the same destination",
            ) from None
        cur = self.conn.execute(
            "INSERT INTO snapshots (kind, started_at) VALUES (?, ?)", (kind, _iso(utc_now()))
        )
        assert cur.lastrowid is not None
        self.current = cur.lastrowid
        self.records_added = 0
        self.bytes_stored = 0
        return self.current

    def _snapshot(self) -> int:
        if self.current is None:
            raise RuntimeError("no snapshot is open (begin_snapshot first)")
        return self.current

    def known(self, shas: Sequence[bytes]) -> dict[bytes, int]:
        """Which of these records are stored already (sha256 -> id)."""
        return dict(self._select_in("SELECT sha256, id FROM records WHERE sha256", shas))

    def _select_in(self, query: str, values: Sequence[Any]) -> Iterator[Any]:
        """Rows of ``query IN (values)``, asked in batches SQLite accepts."""
        for i in range(0, len(values), _BATCH):
            part = list(values[i : i + _BATCH])
            yield from self.conn.execute(f"{query} IN ({','.join('?' * len(part))})", part)

    def put_records(self, records: Sequence[Prepared]) -> list[int]:
        """Store the records not stored yet; the ids of all of them, in order."""
        snap = self._snapshot()
        have = self.known([r.sha256 for r in records])
        ids: list[int] = []
        for r in records:
            rid = have.get(r.sha256)
            if rid is None:
                if not r.data:
                    raise RuntimeError("a record thought stored is missing from the store")
                cur = self.conn.execute(
                    "INSERT INTO records (sha256, kind, date_us, size, data, first_snapshot) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (r.sha256, r.kind, r.date_us, r.size, r.data, snap),
                )
                assert cur.lastrowid is not None
                rid = have[r.sha256] = cur.lastrowid
                self.records_added += 1
                self.bytes_stored += len(r.data)
            ids.append(rid)
        return ids

    def set_listing(self, name: str, record_ids: Sequence[int]) -> None:
        """The records of output file ``name`` in this snapshot, in file order."""
        snap = self._snapshot()
        chunk_ids: list[int] = []
        for chunk in split_chunks(record_ids):
            packed = pack_ids(chunk)
            sha = digest(packed)
            row = self.conn.execute("SELECT id FROM chunks WHERE sha256 = ?", (sha,)).fetchone()
            if row is None:
                cur = self.conn.execute(
                    "INSERT INTO chunks (sha256, ids) VALUES (?, ?)", (sha, packed)
                )
                assert cur.lastrowid is not None
                chunk_ids.append(cur.lastrowid)
                self.bytes_stored += len(packed)
            else:
                chunk_ids.append(row[0])
        blob = pack_ids(chunk_ids)
        self.conn.execute(
            "INSERT OR REPLACE INTO listings (snapshot_id, name, chunk_ids, records) "
            "VALUES (?, ?, ?, ?)",
            (snap, name, blob, len(record_ids)),
        )
        self.bytes_stored += len(blob) + len(name)

    def set_mark(
        self,
        external_id: str,
        *,
        last_record_date: datetime | None,
        full_pass_at: datetime | None,
    ) -> None:
        self._snapshot()
        self.conn.execute(
            "INSERT OR REPLACE INTO participants (external_id, last_record_date, full_pass_at) "
            "VALUES (?, ?, ?)",
            (
                external_id,
                _iso(last_record_date) if last_record_date else None,
                _iso(full_pass_at) if full_pass_at else None,
            ),
        )

    def set_meta(self, key: str, value: str) -> None:
        self._snapshot()
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def put_video(self, rel: str, md5: str, size: int) -> bool:
        """Record a video now under ``media_files/<rel>``; True when it is new or changed."""
        snap = self._snapshot()
        row = self.conn.execute("SELECT md5, size FROM videos WHERE rel = ?", (rel,)).fetchone()
        if row is not None and (row[0], row[1]) == (md5, size):
            self.conn.execute(
                "UPDATE videos SET last_seen_snapshot = ?, gone_since = NULL WHERE rel = ?",
                (snap, rel),
            )
            return False
        self.conn.execute(
            "INSERT OR REPLACE INTO videos (rel, md5, size, first_snapshot, last_seen_snapshot) "
            "VALUES (?, ?, ?, ?, ?)",
            (rel, md5, size, snap, snap),
        )
        return True

    def video_gone(self, rel: str) -> None:
        """The server no longer lists ``rel``; the backup keeps it (and says since when)."""
        self._snapshot()
        self.conn.execute(
            "UPDATE videos SET gone_since = COALESCE(gone_since, ?) WHERE rel = ?",
            (_iso(utc_now()), rel),
        )

    def put_version(self, path: str, rel: str, md5: str, size: int) -> None:
        snap = self._snapshot()
        self.conn.execute(
            "INSERT OR REPLACE INTO video_versions (path, rel, md5, size, snapshot_id, kept_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (path, rel, md5, size, snap, _iso(utc_now())),
        )

    def commit_snapshot(self, *, bytes_fetched: int = 0, info: dict[str, Any] | None = None) -> int:
        snap = self._snapshot()
        self.conn.execute(
            "UPDATE snapshots SET committed_at = ?, records_added = ?, bytes_fetched = ?, "
            "bytes_stored = ?, info = ? WHERE id = ?",
            (
                _iso(utc_now()),
                self.records_added,
                bytes_fetched,
                self.bytes_stored,
                orjson.dumps(info or {}).decode(),
                snap,
            ),
        )
        try:
            self.conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            self.abort()
            raise LocalIOError(f"cannot commit the backup snapshot: {exc}") from None
        self.current = None
        return snap

    def abort(self) -> None:
        """Drop everything since ``begin_snapshot`` (what a crash does, on purpose)."""
        if self.current is not None:
            self.current = None
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")

    # -- reading -------------------------------------------------------------------------------

    def _info(self, row: tuple[Any, ...]) -> SnapshotInfo:
        return SnapshotInfo(
            id=row[0],
            kind=row[1],
            started_at=datetime.fromisoformat(row[2]),
            committed_at=datetime.fromisoformat(row[3]),
            records_added=row[4],
            bytes_fetched=row[5],
            bytes_stored=row[6],
            info=orjson.loads(row[7]),
        )

    _SNAP_COLUMNS = (
        "id, kind, started_at, committed_at, records_added, bytes_fetched, bytes_stored, info"
    )

    def snapshots(self) -> list[SnapshotInfo]:
        """Committed snapshots, oldest first."""
        rows = self.conn.execute(
            f"SELECT {self._SNAP_COLUMNS} FROM snapshots WHERE committed_at IS NOT NULL ORDER BY id"
        )
        return [self._info(row) for row in rows]

    def latest(self) -> SnapshotInfo | None:
        row = self.conn.execute(
            f"SELECT {self._SNAP_COLUMNS} FROM snapshots WHERE committed_at IS NOT NULL "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return self._info(row) if row else None

    def snapshot_at(self, moment: datetime) -> SnapshotInfo | None:
        """The snapshot in force at ``moment``: the last one committed at or before it."""
        found = None
        for snap in self.snapshots():
            if snap.committed_at <= moment:
                found = snap
        return found

    def listing_names(self, snapshot_id: int) -> list[str]:
        rows = self.conn.execute(
            "SELECT name FROM listings WHERE snapshot_id = ? ORDER BY name", (snapshot_id,)
        )
        return [row[0] for row in rows]

    def listing(self, snapshot_id: int, name: str) -> list[int] | None:
        """Record ids of ``name`` in that snapshot, in order; None when it has no such file."""
        row = self.conn.execute(
            "SELECT chunk_ids, records FROM listings WHERE snapshot_id = ? AND name = ?",
            (snapshot_id, name),
        ).fetchone()
        if row is None:
            return None
        ids: list[int] = []
        for chunk_id in unpack_ids(row[0]):
            chunk = self.conn.execute("SELECT ids FROM chunks WHERE id = ?", (chunk_id,)).fetchone()
            if chunk is None:
                raise LocalIOError(f"{self.path}: listing {name} names a missing chunk {chunk_id}")
            ids.extend(unpack_ids(chunk[0]))
        if len(ids) != row[1]:
            raise LocalIOError(f"{self.path}: listing {name} holds {len(ids)} of {row[1]} records")
        return ids

    def record_dates(self, ids: Sequence[int]) -> dict[int, int | None]:
        return dict(self._select_in("SELECT id, date_us FROM records WHERE id", ids))

    def records(self, ids: Sequence[int], codec: Codec | None = None) -> Iterator[bytes]:
        """Canonical bytes of these records, in the order given."""
        codec = codec or self._codec
        for i in range(0, len(ids), _BATCH):
            part = list(ids[i : i + _BATCH])
            found = dict(self._select_in("SELECT id, data FROM records WHERE id", part))
            for rid in part:
                data = found.get(rid)
                if data is None:
                    raise LocalIOError(f"{self.path}: record {rid} is missing")
                yield codec.decompress(data)

    def marks(self) -> dict[str, Mark]:
        rows = self.conn.execute(
            "SELECT external_id, last_record_date, full_pass_at FROM participants"
        )
        return {row[0]: Mark(row[0], _parse(row[1]), _parse(row[2])) for row in rows}

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def videos(self) -> list[VideoRow]:
        rows = self.conn.execute(
            "SELECT rel, md5, size, first_snapshot, last_seen_snapshot, gone_since FROM videos "
            "ORDER BY rel"
        )
        return [VideoRow(*row) for row in rows]

    def versions(self) -> list[VersionRow]:
        rows = self.conn.execute(
            "SELECT path, rel, md5, size, snapshot_id, kept_at FROM video_versions ORDER BY path"
        )
        return [VersionRow(*row) for row in rows]

    def video_side(self, name: str = "recorded") -> RecordedSide:
        """The videos recorded under ``media_files/`` as a storage side (sizes and md5s as
        fetched), to compare the folder with (:func:`longterm_sync.media.sides.check`)."""
        from ..media.sides import RecordedSide  # SSH's imports only when videos are checked

        return RecordedSide(name, {v.rel: (v.size, v.md5) for v in self.videos()})

    def version_side(self, folder: str, name: str = "recorded") -> RecordedSide:
        """The kept old versions as a storage side, by their path below ``folder`` (the
        versions folder, ``media_versions``)."""
        from ..media.sides import RecordedSide

        prefix = f"{folder}/"
        return RecordedSide(
            name, {v.path.removeprefix(prefix): (v.size, v.md5) for v in self.versions()}
        )

    def size_on_disk(self) -> int:
        """Bytes of the database file and its WAL."""
        total = 0
        for suffix in ("", "-wal"):
            p = self.path.with_name(self.path.name + suffix)
            if p.exists():
                total += p.stat().st_size
        return total
