"""The sandbox platform's storage: accounts, schedules and the phone's uploads in SQLite.

The rules that decide what the real platform stores (the schedule merge, orphan accounts,
poison rows, the first-feedback-only bug) live here, next to the data they change, so that
the HTTP layer only translates requests and answers. Every method runs in the store's own
thread (one connection, one writer): the event loop never waits on the disk.

Row payloads are kept as the JSON text that will be served, so a list of 100+ MB is built
by concatenating stored texts instead of parsing and re-dumping every row.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson

from ..timeutil import WARSAW, format_server_datetime

T = TypeVar("T")

OPERATOR = "operator"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MERGE_HORIZON_DAYS = 2  # uploaded entries starting before today + 2 days are dropped
READERS = 4  # like gunicorn workers: big lists are served side by side, writes one at a time

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    token TEXT NOT NULL UNIQUE,
    schedule TEXT NOT NULL DEFAULT '{}',
    ext_id TEXT            -- schedule.external_id, NULL when the schedule has none
);
CREATE TABLE IF NOT EXISTS watch_results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner INTEGER NOT NULL REFERENCES accounts(id),
    date_us INTEGER NOT NULL,
    video TEXT,
    result BLOB NOT NULL,  -- JSON object text without user_feedback (spliced when served)
    poison INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS feedback_comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner INTEGER NOT NULL REFERENCES accounts(id),
    date_us INTEGER NOT NULL,
    video TEXT NOT NULL,
    comment TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS missing_videos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner INTEGER NOT NULL REFERENCES accounts(id),
    date_us INTEGER NOT NULL,
    video TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner INTEGER NOT NULL REFERENCES accounts(id),
    user_id INTEGER NOT NULL,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS accounts_ext ON accounts(ext_id);
CREATE INDEX IF NOT EXISTS results_owner ON watch_results(owner);
CREATE INDEX IF NOT EXISTS feedback_owner ON feedback_comments(owner, video);
"""


class ServerCrash(Exception):
    """The real platform answers 500 (an unhandled exception in its view)."""


class BadRequest(Exception):
    """The real platform answers 400 with this JSON body."""

    def __init__(self, body: Any) -> None:
        super().__init__(body)
        self.body = body


def to_us(value: datetime) -> int:
    """Microseconds since the epoch: exact, comparable, zone-free."""
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> str:
    return format_server_datetime(EPOCH + timedelta(microseconds=value), WARSAW)


def dumps(value: Any) -> bytes:
    """JSON as Django REST Framework sends it: UTF-8, non-ASCII unescaped, compact."""
    return orjson.dumps(value)


def parse_entry_start(entry: Any) -> datetime:
    """The platform parses every entry's start; a date-only or missing one crashes it."""
    if not isinstance(entry, dict):
        raise ServerCrash("schedule entry is not an object")
    start = entry.get("start")
    if not isinstance(start, str) or len(start.strip()) <= 10:
        raise ServerCrash(f"bad start {start!r}")
    try:
        return datetime.fromisoformat(start)
    except ValueError as exc:
        raise ServerCrash(f"bad start {start!r}") from exc


@dataclass
class ResultsPlan:
    """A watch-results list: per item its id, JSON around the stored text, and lengths."""

    ids: list[int] = field(default_factory=list)
    heads: list[bytes] = field(default_factory=list)
    tails: list[bytes] = field(default_factory=list)
    trims: list[int] = field(default_factory=list)  # bytes cut from the stored text's end
    sizes: list[int] = field(default_factory=list)  # bytes of the item in the body
    length: int = 2  # the enclosing brackets

    def add(self, rid: int, head: bytes, size: int, tail: bytes, *, trim: int) -> None:
        item = len(head) + size - trim + len(tail)
        self.ids.append(rid)
        self.heads.append(head)
        self.tails.append(tail)
        self.trims.append(trim)
        self.sizes.append(item)
        self.length += item

    def batches(self, max_bytes: int) -> Iterator[tuple[int, int]]:
        """[first, last) item ranges of about ``max_bytes`` each."""
        first, total = 0, 0
        for i, size in enumerate(self.sizes):
            if total and total + size > max_bytes:
                yield first, i
                first, total = i, 0
            total += size
        if first < len(self.sizes):
            yield first, len(self.sizes)

    def pieces(self, first: int, texts: Sequence[bytes]) -> Iterator[bytes | memoryview]:
        """The body bytes of items ``first``.. given their stored texts (no copies)."""
        for i, text in enumerate(texts, start=first):
            trim = self.trims[i]
            yield self.heads[i]
            yield memoryview(text)[: len(text) - trim]
            yield self.tails[i]


class Store:
    """SQLite storage with the platform's rules; use the async methods from the event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-db-write")
        self._readers = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="sandbox-db")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._secret = b""

    def __repr__(self) -> str:
        return f"Store({self.path}, {len(self._connections)} connections)"

    # -- plumbing -------------------------------------------------------------------------

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` in the single writer thread (anything that may change the database)."""
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn, *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a read-only ``fn`` in one of the reader threads (WAL: reads never wait)."""
        return await asyncio.get_running_loop().run_in_executor(self._readers, fn, *args)

    async def open(self) -> None:
        await self.call(self._open)

    async def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection (SQLite connections are not shared between threads)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._connect()
            db.execute("PRAGMA query_only=ON")
        return db

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=30000")
        self._local.db = db
        with self._lock:
            self._connections.append(db)
        return db

    def _open(self) -> None:
        db = self._connect()
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        secret = self.get_meta("secret")
        if secret is None:
            secret = secrets.token_hex(32)
            self.set_meta("secret", secret)
        self._secret = secret.encode("ascii")
        self.account(OPERATOR, create=True)

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- accounts -------------------------------------------------------------------------

    def token_for(self, username: str) -> str:
        """40 hex digits, the same at every login, derived from the data dir's secret."""
        return hmac.new(self._secret, username.encode("utf-8"), hashlib.sha1).hexdigest()

    def account(self, username: str, *, create: bool = False) -> tuple[int, bool] | None:
        """(id, created) of the account ``username``; created on demand when ``create``."""
        row = self.db.execute("SELECT id FROM accounts WHERE username = ?", (username,)).fetchone()
        if row is not None:
            return int(row[0]), False
        if not create:
            return None
        cur = self.db.execute(
            "INSERT INTO accounts(username, token) VALUES (?, ?)",
            (username, self.token_for(username)),
        )
        assert cur.lastrowid is not None
        return int(cur.lastrowid), True

    def account_by_token(self, token: str) -> int | None:
        row = self.db.execute("SELECT id FROM accounts WHERE token = ?", (token,)).fetchone()
        return None if row is None else int(row[0])

    def account_exists(self, account_id: int) -> bool:
        row = self.db.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone()
        return row is not None

    def login(self, username: str) -> str | None:
        found = self.account(username)
        return None if found is None else self.token_for(username)

    def users(self) -> bytes:
        rows = self.db.execute("SELECT username FROM accounts ORDER BY id").fetchall()
        return dumps([{"external_id": r[0]} for r in rows])

    def schedules(self, external_ids: Sequence[str] | None) -> bytes:
        if external_ids is None:
            rows = self.db.execute("SELECT id, schedule FROM accounts ORDER BY id").fetchall()
        else:
            marks = ",".join("?" * len(external_ids))
            rows = self.db.execute(
                f"SELECT id, schedule FROM accounts WHERE ext_id IN ({marks}) ORDER BY id",
                list(external_ids),
            ).fetchall()
        parts = [b'{"id":%d,"schedule":%s}' % (r[0], r[1].encode("utf-8")) for r in rows]
        return b"[" + b",".join(parts) + b"]"

    def my_schedule(self, account_id: int) -> bytes:
        row = self.db.execute(
            "SELECT schedule FROM accounts WHERE id = ?", (account_id,)
        ).fetchone()
        return b'{"schedule":' + str(row[0]).encode("utf-8") + b"}"

    def _save_schedule(self, account_id: int, schedule: dict[str, Any]) -> None:
        ext = schedule.get("external_id")
        self.db.execute(
            "UPDATE accounts SET schedule = ?, ext_id = ? WHERE id = ?",
            (
                dumps(schedule).decode("utf-8"),
                None if ext is None else str(ext),
                account_id,
            ),
        )

    def update_schedule(self, body: Any, today: date) -> bytes:
        """POST /api/users/update_schedule/, crash points and all (docs/PROTOCOL.md, merge rule)."""
        if not isinstance(body, dict) or "schedule" not in body:
            raise ServerCrash("no schedule key")
        uploaded = body["schedule"]
        if not isinstance(uploaded, dict):
            raise ServerCrash("schedule is not an object")
        ext = uploaded.get("external_id")
        if not ext:
            raise BadRequest(["No user identifier specified"])
        # The account exists before anything else is looked at: a crash below leaves it.
        found = self.account(str(ext), create=True)
        assert found is not None
        account_id, created = found
        entries = uploaded.get("schedule")
        if not isinstance(entries, list):
            raise ServerCrash("schedule.schedule is not a list")
        starts = [parse_entry_start(entry) for entry in entries]
        if created:
            self._save_schedule(account_id, uploaded)
            return dumps(entries)
        row = self.db.execute(
            "SELECT schedule FROM accounts WHERE id = ?", (account_id,)
        ).fetchone()
        stored: dict[str, Any] = orjson.loads(row[0])
        merged = stored.get("schedule")
        if not isinstance(merged, list):
            merged = []
            stored["schedule"] = merged
        where = {e.get("start"): i for i, e in enumerate(merged) if isinstance(e, dict)}
        horizon = today + timedelta(days=MERGE_HORIZON_DAYS)
        for entry, start in zip(entries, starts, strict=True):
            if start.date() < horizon:
                continue
            key = entry["start"]
            if key in where:
                merged[where[key]] = entry
            else:
                where[key] = len(merged)
                merged.append(entry)
        self._save_schedule(account_id, stored)
        return dumps(merged)

    # -- the phone's uploads --------------------------------------------------------------

    def add_result(self, owner: int, date_us: int, result: Any) -> bytes:
        poison = not isinstance(result, dict)
        video: str | None = None
        if poison:
            text = dumps(result)
        else:
            video = result.get("video") if isinstance(result.get("video"), str) else None
            text = dumps({k: v for k, v in result.items() if k != "user_feedback"})
        cur = self.db.execute(
            "INSERT INTO watch_results(owner, date_us, video, result, poison) VALUES (?,?,?,?,?)",
            (owner, date_us, video, text, int(poison)),
        )
        return self.list_results(None, None, None, row_id=cur.lastrowid)

    def add_feedback(self, owner: int, date_us: int, video: str, comment: str) -> bytes:
        cur = self.db.execute(
            "INSERT INTO feedback_comments(owner, date_us, video, comment) VALUES (?,?,?,?)",
            (owner, date_us, video, comment),
        )
        return self._one(self.list_feedback(None, None, None, row_id=cur.lastrowid))

    def add_missing(self, owner: int, date_us: int, video: str) -> bytes:
        cur = self.db.execute(
            "INSERT INTO missing_videos(owner, date_us, video) VALUES (?,?,?)",
            (owner, date_us, video),
        )
        return self._one(self.list_missing(None, row_id=cur.lastrowid))

    def add_event(self, owner: int, user_id: int, event: Any) -> bytes:
        if not self.account_exists(user_id):
            raise BadRequest({"user": [f'Invalid pk "{user_id}" - object does not exist.']})
        cur = self.db.execute(
            "INSERT INTO events(owner, user_id, event) VALUES (?,?,?)",
            (owner, user_id, dumps(event).decode("utf-8")),
        )
        return dumps({"id": cur.lastrowid, "user": user_id, "event": event})

    @staticmethod
    def _one(listing: bytes) -> bytes:
        return listing[1:-1]

    @staticmethod
    def _where(
        table: str,
        external_ids: Sequence[str] | None,
        start_us: int | None,
        stop_us: int | None,
        row_id: int | None,
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if external_ids is not None:
            clauses.append(f"a.ext_id IN ({','.join('?' * len(external_ids))})")
            args.extend(external_ids)
        if start_us is not None:
            clauses.append(f"{table}.date_us > ?")
            args.append(start_us)
        if stop_us is not None:
            clauses.append(f"{table}.date_us < ?")
            args.append(stop_us)
        if row_id is not None:
            clauses.append(f"{table}.id = ?")
            args.append(row_id)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def _first_feedback(self) -> dict[tuple[int, str], bytes]:
        """The server bug: result.user_feedback is the first comment on the same video."""
        rows = self.db.execute(
            "SELECT f.owner, f.video, f.date_us, f.comment, a.ext_id FROM feedback_comments f "
            "JOIN accounts a ON a.id = f.owner "
            "WHERE f.id IN (SELECT MIN(id) FROM feedback_comments GROUP BY owner, video)"
        ).fetchall()
        return {
            (owner, video): dumps(
                {"video": video, "external_id": ext or "", "date": from_us(d), "comment": c}
            )
            for owner, video, d, c, ext in rows
        }

    def plan_results(
        self,
        external_ids: Sequence[str] | None,
        start_us: int | None,
        stop_us: int | None,
        *,
        row_id: int | None = None,
    ) -> ResultsPlan:
        """Everything about a watch-results list except the result texts themselves.

        The exact length is known before a byte is sent (Content-Length), a poison row
        crashes the request before anything is sent, and the texts are then read in
        batches so that a list of 100+ MB is never held in memory whole.
        """
        where, args = self._where("r", external_ids, start_us, stop_us, row_id)
        feedback = self._first_feedback()
        plan = ResultsPlan()
        cursor = self.db.execute(
            "SELECT r.id, r.owner, a.ext_id, r.date_us, r.video, length(r.result), r.poison "
            "FROM watch_results r JOIN accounts a ON a.id = r.owner" + where + " ORDER BY r.id",
            args,
        )
        for rid, owner, ext, date_us, video, size, poison in cursor:
            head = (b"," if plan.ids else b"") + self._item_head(ext, date_us)
            if poison:
                if row_id is None:  # the POST itself succeeds; only listing it crashes
                    raise ServerCrash(f"result of account {owner} is not an object")
                plan.add(rid, head, size, b"}", trim=0)
                continue
            fb = feedback.get((owner, video), b"null") if video is not None else b"null"
            sep = b"," if size > 2 else b""
            plan.add(rid, head, size, sep + b'"user_feedback":' + fb + b"}}", trim=1)
        return plan

    def result_texts(self, ids: Sequence[int]) -> list[bytes]:
        """The stored result texts of ``ids``, in that order."""
        marks = ",".join("?" * len(ids))
        rows = dict(
            self.db.execute(
                f"SELECT id, result FROM watch_results WHERE id IN ({marks})", list(ids)
            ).fetchall()
        )
        return [rows[i] for i in ids]

    def list_results(
        self,
        external_ids: Sequence[str] | None,
        start_us: int | None,
        stop_us: int | None,
        *,
        row_id: int | None = None,
    ) -> bytes:
        """The whole list (or the one item ``row_id``) as one bytes object."""
        plan = self.plan_results(external_ids, start_us, stop_us, row_id=row_id)
        body = b"".join(plan.pieces(0, self.result_texts(plan.ids)))
        return body if row_id is not None else b"[" + body + b"]"

    @staticmethod
    def _item_head(ext: str | None, date_us: int) -> bytes:
        return (
            b'{"external_id":'
            + dumps(ext or "")
            + b',"date":'
            + dumps(from_us(date_us))
            + b',"result":'
        )

    def list_feedback(
        self,
        external_ids: Sequence[str] | None,
        start_us: int | None,
        stop_us: int | None,
        *,
        row_id: int | None = None,
    ) -> bytes:
        where, args = self._where("f", external_ids, start_us, stop_us, row_id)
        rows = self.db.execute(
            "SELECT f.video, a.ext_id, f.date_us, f.comment FROM feedback_comments f "
            "JOIN accounts a ON a.id = f.owner" + where + " ORDER BY f.id",
            args,
        ).fetchall()
        return dumps(
            [
                {"video": v, "external_id": ext or "", "date": from_us(d), "comment": c}
                for v, ext, d, c in rows
            ]
        )

    def list_missing(
        self, external_ids: Sequence[str] | None, *, row_id: int | None = None
    ) -> bytes:
        where, args = self._where("m", external_ids, None, None, row_id)
        rows = self.db.execute(
            "SELECT a.ext_id, m.date_us, m.video FROM missing_videos m "
            "JOIN accounts a ON a.id = m.owner" + where + " ORDER BY m.id",
            args,
        ).fetchall()
        return dumps(
            [{"external_id": ext or "", "date": from_us(d), "video": v} for ext, d, v in rows]
        )
