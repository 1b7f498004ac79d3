"""The snapshot store's SQLite schema, and how a connection to it is opened.

SQLite because the store must survive being killed at any moment: every snapshot is written
in one transaction (WAL journal, ``synchronous=FULL``), so a run killed halfway leaves the
database exactly as the last committed snapshot left it, and the next open rolls the rest
back. Tables::

    meta            key -> value (schema version, last full pass)
    records         one row per distinct record: sha256 of its canonical bytes, kind,
                    date (microseconds since the epoch, for the incremental merge), size,
                    zstd-compressed bytes, the snapshot that first stored it
    chunks          a run of record ids (packed int64), content-addressed
    snapshots       one row per committed run: kind, times, counts, a JSON ``info``
    listings        (snapshot, file name) -> chunk ids (packed int64) and record count
    participants    per participant: last backed-up record date, last full pass
    videos          every video ever backed up under media_files/ (rel path, md5, size,
                    when first and last seen on the server)
    video_versions  old copies of videos that changed on the server (path, md5, size)
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..errors import LocalIOError, UsageError

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000
"""How long a second opener waits for the writer's lock before SQLite says "busy"."""

DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    sha256 BLOB NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    date_us INTEGER,
    size INTEGER NOT NULL,
    data BLOB NOT NULL,
    first_snapshot INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    sha256 BLOB NOT NULL UNIQUE,
    ids BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    committed_at TEXT,
    records_added INTEGER NOT NULL DEFAULT 0,
    bytes_fetched INTEGER NOT NULL DEFAULT 0,
    bytes_stored INTEGER NOT NULL DEFAULT 0,
    info TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS listings (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots(id),
    name TEXT NOT NULL,
    chunk_ids BLOB NOT NULL,
    records INTEGER NOT NULL,
    PRIMARY KEY (snapshot_id, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS participants (
    external_id TEXT PRIMARY KEY,
    last_record_date TEXT,
    full_pass_at TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS videos (
    rel TEXT PRIMARY KEY,
    md5 TEXT NOT NULL,
    size INTEGER NOT NULL,
    first_snapshot INTEGER NOT NULL,
    last_seen_snapshot INTEGER NOT NULL,
    gone_since TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS video_versions (
    path TEXT PRIMARY KEY,
    rel TEXT NOT NULL,
    md5 TEXT NOT NULL,
    size INTEGER NOT NULL,
    snapshot_id INTEGER NOT NULL,
    kept_at TEXT NOT NULL
) WITHOUT ROWID;
"""


def connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """Open (and on first write, create) the store; autocommit mode, transactions explicit."""
    if readonly and not path.exists():
        raise UsageError(
            f"no backup store at {path}", hint="check --dest_location, or run `longterm backup`"
        )
    try:
        if readonly:
            conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.executescript(DDL)
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise LocalIOError(f"cannot open the backup store {path}: {exc}") from None
    if row is None or int(row[0]) != SCHEMA_VERSION:
        conn.close()
        raise UsageError(
            f"{path} has schema version {row[0] if row else '?'}, this longterm reads "
            f"{SCHEMA_VERSION}",
            hint="use the longterm version that wrote it",
        )
    return conn
