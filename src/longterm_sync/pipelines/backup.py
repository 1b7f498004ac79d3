"""``longterm backup``: the nightly backup of one server, incremental, deduplicated, never
deleting (the spec's ``backup.py``).

Into the destination folder (layout in :mod:`longterm_sync.backup`):

- **videos** through the media engine into ``media_files/`` (md5-verified, resumable). Nothing
  is deleted: a video gone from the server stays and is listed; a local video the server has
  changed is first moved to ``media_versions/<run time>/`` (as ``rsync --backup-dir``).
- **records** into the snapshot store (``text_files/store.sqlite3``), one snapshot per run
  in one transaction: schedules (one request, whole, every night), missing-video reports
  (one unfiltered request: the route ignores dates), and per participant its results and
  feedback. A participant backed up before is asked only for rows dated after its newest
  backed-up row minus ``lookback_days`` (phones upload late; the server's ``date`` is the
  viewing's); the older part of its listing is carried over from the last snapshot. Every
  ``full_every_days`` (or with ``full``) each participant is fetched whole, and one
  unfiltered sweep keeps the rows no participant filter returns (orphan accounts, rows with
  an empty ``external_id``).
- ``text_files/latest/`` rebuilt from the new snapshot and switched over atomically;
- one block appended to ``backup_log.txt``;
- with ``report``, the study's HTML site (:mod:`longterm_sync.pipelines.report`) rebuilt from
  the new ``latest/`` into ``<dest>/report/`` once the snapshot is committed (its figure cache
  kept there, so only new viewings are drawn). A participant that failed this run shows its
  previous records, as ``latest/`` does.

A participant that fails keeps its previous listings in the new snapshot (nothing it had is
dropped) and is named in the summary. A run killed at any moment leaves the store as the
last committed snapshot left it; the videos it already fetched are kept and skipped next time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

import msgspec
import orjson

from ..api import FEEDBACK_COMMENTS, MISSING_VIDEOS, WATCH_RESULTS, PlatformClient, date_param
from ..backup.codec import Codec, digest
from ..backup.files import (
    MEDIA,
    TEXT,
    UNASSIGNED_FEEDBACK,
    UNASSIGNED_RESULTS,
    VERSIONS,
    feedback_name,
    results_name,
    schedule_name,
)
from ..backup.files import (
    MISSING_VIDEOS as MISSING_FILE,
)
from ..backup.restore import LATEST, replace_latest
from ..backup.store import Mark, Prepared, SnapshotInfo, SnapshotStore
from ..config import PARSE_SLOTS, Limits, ServerProfile
from ..errors import LocalIOError, LongtermError, Scope, scope_of
from ..events import Job, Reporter
from ..jsonstream import encode_item
from ..select import Participant, Selection
from ..summary import Summary
from ..windows import Window, participant_windows, plan_windows, schedule_span
from ..workers import first_error, run_items
from .fanout import check_output_dir, resolve_into
from .report import ReportOptions, run_report
from .results import ScheduleMemo, date_key, decode_items

if TYPE_CHECKING:
    from ..media.sides import LocalSide

log = logging.getLogger("longterm_sync.backup")

LOG_NAME = "backup_log.txt"
REPORT = "report"
DEFAULT_DEST = Path("longterm_backup")

P = ParamSpec("P")
T = TypeVar("T")
Row = tuple[bytes, int | None, bytes]
"""One item ready to store: sha256 of its canonical bytes, its date (us), the bytes."""


@dataclass(frozen=True, kw_only=True)
class BackupOptions:
    dest: Path = DEFAULT_DEST
    lookback_days: int = 14
    full_every_days: int = 7
    full: bool = False
    videos: bool = True
    accept_new_host_key: bool = False
    report: bool = False  # rebuild <dest>/report/ from latest/ after the run
    now: datetime | None = None  # pinned in tests; None = the current time


# -- pure functions (worker threads) ----------------------------------------------------------

_TEXT = msgspec.json.Decoder()
_codecs = threading.local()


def _codec() -> Codec:
    codec: Codec | None = getattr(_codecs, "codec", None)
    if codec is None:
        codec = _codecs.codec = Codec()
    return codec


def _owner(item: Any) -> str:
    raw = item.get("external_id") if isinstance(item, dict) else None
    value = _TEXT.decode(raw) if isinstance(raw, msgspec.Raw) else None
    return value if isinstance(value, str) else ""


_NULL = msgspec.Raw(b"null")
_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])


def without_server_feedback(item: Any) -> Any:
    """A result with the server's ``user_feedback`` set to null.

    The server fills it with the first comment on the same video (docs/PROTOCOL.md, "Server
    bug"), so it changes whenever a participant comments on a video seen before: kept as
    sent, every such comment would store again each older result of that video (~200 KB).
    No output uses it (download-results rebuilds it from the feedback, and so does every
    restore), so the stored record does not keep it.
    """
    if not isinstance(item, dict) or "result" not in item:
        return item
    try:
        result = _OBJECT.decode(item["result"])
    except msgspec.ValidationError:
        return item
    if "user_feedback" in result:
        result["user_feedback"] = _NULL
        item["result"] = result
    return item


def encode_rows(
    body: bytes,
    tz: ZoneInfo,
    what: str,
    *,
    sort: bool = True,
    keep: Callable[[str], bool] | None = None,
    results: bool = False,
) -> list[Row]:
    """A list response as rows in file order (by date, stable, as download-results sorts)."""
    items = decode_items(body, what)
    del body
    order = range(len(items))
    if sort:
        order = sorted(order, key=lambda i: date_key(items[i], tz))  # type: ignore[assignment]
    rows: list[Row] = []
    for i in order:
        item = items[i]
        if keep is not None and not keep(_owner(item)):
            continue
        if results:
            item = without_server_feedback(item)
        canonical = encode_item(item)
        undated, us = date_key(item, tz)
        rows.append((digest(canonical), None if undated else us, canonical))
    return rows


def _prepare(kind: str, rows: Sequence[Row], known: dict[bytes, int]) -> list[Prepared]:
    codec = _codec()
    return [
        Prepared(sha, kind, us, len(canon), b"" if sha in known else codec.compress(canon))
        for sha, us, canon in rows
    ]


def _floor_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _us(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


# -- the run ----------------------------------------------------------------------------------


class StoreThread:
    """The store, driven from the event loop through one worker thread (SQLite objects belong
    to one thread at a time, and the snapshot is one transaction)."""

    def __init__(self, store: SnapshotStore) -> None:
        self.store = store
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="backup-store")

    async def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        self.pool.shutdown(wait=True)


@dataclass
class Listed:
    """One listing of the new snapshot: record ids in order and their dates."""

    ids: list[int] = field(default_factory=list)
    dates: list[int | None] = field(default_factory=list)
    fetched: int = 0

    def extend(self, ids: Sequence[int], dates: Sequence[int | None]) -> None:
        self.ids.extend(ids)
        self.dates.extend(dates)


@dataclass
class Outcome:
    participant: Participant
    full: bool
    results: Listed
    feedback: Listed


class BackupRun:
    def __init__(
        self,
        profile: ServerProfile,
        limits: Limits,
        options: BackupOptions,
        db: StoreThread,
        previous: SnapshotInfo | None,
        marks: dict[str, Mark],
        kind: str,
        now: datetime,
    ) -> None:
        self.profile = profile
        self.tz = profile.tz
        self.limits = limits
        self.options = options
        self.db = db
        self.store = db.store
        self.previous = previous
        self.marks = marks
        self.kind = kind
        self.now = now
        self.cpu = asyncio.Semaphore(PARSE_SLOTS)
        self.fetched = 0

    async def put(self, kind: str, rows: Sequence[Row]) -> list[int]:
        known = await self.db(self.store.known, [r[0] for r in rows])
        async with self.cpu:
            prepared = await asyncio.to_thread(_prepare, kind, rows, known)
        return await self.db(self.store.put_records, prepared)

    async def fetch_rows(
        self, client: PlatformClient, route: str, ext: str, w: Window, what: str
    ) -> list[Row]:
        body = await client.list_route_bytes(route, ext, w.start, w.stop)
        async with self.cpu:
            return await asyncio.to_thread(
                encode_rows, body, self.tz, what, results=route == WATCH_RESULTS
            )

    async def fetch_listing(
        self, client: PlatformClient, route: str, kind: str, p: Participant, windows: list[Window]
    ) -> Listed:
        what = f"participant {p.external_id} {kind}"

        async def one(w: Window) -> tuple[list[int], list[int | None]]:
            rows = await self.fetch_rows(client, route, p.external_id, w, what)
            return await self.put(kind, rows), [r[1] for r in rows]

        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(one(w)) for w in windows]
        listed = Listed()
        for task in tasks:
            listed.extend(*task.result())
        listed.fetched = len(listed.ids)
        return listed

    def is_full(self, mark: Mark | None) -> bool:
        if self.kind == "full" or mark is None or mark.full_pass_at is None:
            return True
        return mark.full_pass_at < self.now - timedelta(days=self.options.full_every_days)

    async def carried(self, name: str, cutoff: datetime | None) -> tuple[Listed, list[int]]:
        """The previous snapshot's listing: its rows dated at or before ``cutoff`` (all dated
        rows when ``cutoff`` is None), and apart its undated rows (no date filter finds them
        again, so they are carried, last)."""
        listed = Listed()
        if self.previous is None:
            return listed, []
        ids = await self.db(self.store.listing, self.previous.id, name) or []
        dates = await self.db(self.store.record_dates, ids)
        limit = None if cutoff is None else _us(cutoff)
        for i in ids:
            d = dates.get(i)
            if d is not None and (limit is None or d <= limit):
                listed.extend([i], [d])
        return listed, [i for i in ids if dates.get(i) is None]

    async def participant(
        self, client: PlatformClient, memo: ScheduleMemo, p: Participant
    ) -> Outcome:
        mark = self.marks.get(p.external_id)
        full = self.is_full(mark)
        cutoff = None
        if not full and mark is not None and mark.last_record_date is not None:
            cutoff = _floor_second(
                mark.last_record_date - timedelta(days=self.options.lookback_days)
            )
        windows = participant_windows(
            cutoff,
            None,
            days=self.limits.window_days,
            schedule=memo.by_id.get(p.external_id),
            tz=self.tz,
            now=self.now,
        )
        async with asyncio.TaskGroup() as tg:
            res = tg.create_task(self.fetch_listing(client, WATCH_RESULTS, "result", p, windows))
            fb = tg.create_task(
                self.fetch_listing(client, FEEDBACK_COMMENTS, "feedback", p, windows)
            )
        results, feedback = res.result(), fb.result()
        if cutoff is not None:
            results = await self.merged(results_name(p.external_id), cutoff, results)
            feedback = await self.merged(feedback_name(p.external_id), cutoff, feedback)
        return Outcome(p, full, results, feedback)

    async def merged(self, name: str, cutoff: datetime, new: Listed) -> Listed:
        """The last snapshot's rows up to ``cutoff``, then the rows fetched after it."""
        out, undated = await self.carried(name, cutoff)
        out.extend(new.ids, new.dates)
        out.extend(undated, [None] * len(undated))
        out.fetched = new.fetched
        return out

    async def store_participant(self, o: Outcome) -> None:
        ext = o.participant.external_id
        await self.db(self.store.set_listing, results_name(ext), o.results.ids)
        await self.db(self.store.set_listing, feedback_name(ext), o.feedback.ids)
        dates = [d for d in (*o.results.dates, *o.feedback.dates) if d is not None]
        last = datetime.fromtimestamp(max(dates) / 1_000_000, self.tz) if dates else None
        mark = self.marks.get(ext)
        full_pass = self.now if o.full else (mark.full_pass_at if mark else None)
        await self.db(self.store.set_mark, ext, last_record_date=last, full_pass_at=full_pass)

    async def keep_previous(self, ext: str) -> None:
        """A participant that failed keeps what the last snapshot had for it."""
        for name in (results_name(ext), feedback_name(ext)):
            await self.carry(name)

    async def carry(self, name: str) -> None:
        """The previous snapshot's listing ``name`` unchanged into this one (if it had it)."""
        if self.previous is None:
            return
        ids = await self.db(self.store.listing, self.previous.id, name)
        if ids is not None:
            await self.db(self.store.set_listing, name, ids)

    async def schedules(self, memo: ScheduleMemo, participants: list[Participant]) -> int:
        rows: list[Row] = []
        for p in participants:
            schedule = memo.by_id.get(p.external_id)
            canonical = orjson.dumps(schedule)
            rows.append((digest(canonical), None, canonical))
        ids = await self.put("schedule", rows)
        for p, rid in zip(participants, ids, strict=True):
            await self.db(self.store.set_listing, schedule_name(p.external_id), [rid])
        return len(ids)

    async def missing_videos(self, client: PlatformClient) -> int:
        body = await client.get_bytes(MISSING_VIDEOS, {}, item="missing-video reports")
        rows = await asyncio.to_thread(
            encode_rows, body, self.tz, "missing-video reports", sort=False
        )
        ids = await self.put("missing", rows)
        await self.db(self.store.set_listing, MISSING_FILE, ids)
        return len(ids)

    async def unassigned(
        self, client: PlatformClient, memo: ScheduleMemo, participants: list[Participant]
    ) -> int:
        """The full pass's unfiltered sweep: rows no participant filter returns.

        Windows are short enough that one answer holds about ``window_days`` participant-days
        (every participant's rows of a day come back together), placed over the schedules'
        span; the first and last windows stay open, so rows outside it are still seen.
        """
        known = {p.external_id for p in participants}
        spans = [schedule_span(s, self.tz) for s in memo.by_id.values()]
        starts = [s[0] for s in spans if s]
        ends = [min(s[1], self.now) for s in spans if s]
        days = max(1, self.limits.window_days // max(1, len(participants)))
        windows = plan_windows(
            None,
            None,
            days=days,
            anchor_start=min(starts, default=None),
            anchor_end=max(ends, default=self.now),
        )
        total = 0
        for route, kind, name in (
            (WATCH_RESULTS, "result", UNASSIGNED_RESULTS),
            (FEEDBACK_COMMENTS, "feedback", UNASSIGNED_FEEDBACK),
        ):
            ids: list[int] = []
            for w in windows:
                params = {}
                if w.start is not None:
                    params["start_date"] = date_param(w.start, self.profile)
                if w.stop is not None:
                    params["stop_date"] = date_param(w.stop, self.profile)
                body = await client.get_bytes(route, params, item=f"unfiltered {route}")
                async with self.cpu:
                    rows = await asyncio.to_thread(
                        encode_rows,
                        body,
                        self.tz,
                        f"unfiltered {route}",
                        keep=lambda owner: owner not in known,
                        results=route == WATCH_RESULTS,
                    )
                del body
                ids.extend(await self.put(kind, rows))
            await self.db(self.store.set_listing, name, ids)
            total += len(ids)
        return total

    async def carry_unassigned(self) -> None:
        for name in (UNASSIGNED_RESULTS, UNASSIGNED_FEEDBACK):
            await self.carry(name)

    async def rest(self, job: Job) -> list[str]:
        """Every REST part of the snapshot; the participants' order for the ``_all`` files."""
        summary = job.summary
        async with PlatformClient(self.profile, self.limits) as client:
            memo = ScheduleMemo(client)
            participants = await resolve_into(Selection(participants=None), memo, job)
            summary.count("participants", len(participants))
            summary.count("schedules", await self.schedules(memo, participants))
            summary.count("missing-video reports", await self.missing_videos(client))
            outcomes: list[Outcome] = []
            job.planned(len(participants))

            async def work(p: Participant) -> Outcome:
                return await self.participant(client, memo, p)

            async def settle(index: int, p: Participant, outcome: Outcome | None) -> None:
                if outcome is None:
                    await self.keep_previous(p.external_id)
                    return
                await self.store_participant(outcome)
                outcomes.append(outcome)
                results, feedback = len(outcome.results.ids), len(outcome.feedback.ids)
                job.done(f"participant {p.external_id}", {"results": results, "feedback": feedback})

            await run_items(
                participants,
                work,
                workers=self.limits.rest_concurrency,
                job=job,
                label=lambda p: f"participant {p.external_id}",
                settle=settle,
            )
            if self.kind == "full":
                summary.count("unassigned rows", await self.unassigned(client, memo, participants))
            else:
                await self.carry_unassigned()
            self.fetched += client.bytes_received
            summary.details["requests"] = client.requests
            summary.details["retried"] = client.retried
        summary.count("full participants", sum(o.full for o in outcomes))
        summary.count("results", sum(len(o.results.ids) for o in outcomes))
        summary.count("feedback", sum(len(o.feedback.ids) for o in outcomes))
        summary.count(
            "records fetched", sum(o.results.fetched + o.feedback.fetched for o in outcomes)
        )
        return [p.external_id for p in participants]

    def media_side(self) -> LocalSide:
        """``media_files/``: the server's videos as last verified (a storage side)."""
        from ..media.sides import LocalSide  # SSH's imports only when videos are backed up

        return LocalSide(self.options.dest / MEDIA)

    def versions_side(self) -> LocalSide:
        """``media_versions/``: old copies of changed videos, ``<run time>/<video path>``."""
        from ..media.sides import LocalSide

        return LocalSide(self.options.dest / VERSIONS)

    async def adopt_versions(self, job: Job) -> None:
        """Record old copies that a killed run moved into ``media_versions/`` but did not
        record (the move happens during the mirror, the record after it): without this,
        ``verify`` would never check them and ``list`` would not show them."""
        versions = self.versions_side()
        recorded = {v.path for v in await self.db(self.store.versions)}
        found = await asyncio.to_thread(_version_files, self.options.dest / VERSIONS)
        adopted = []
        for rel_path, rel in found:
            if rel_path in recorded:
                continue
            size, md5 = await _size_md5(versions, rel_path.removeprefix(f"{VERSIONS}/"))
            await self.db(self.store.put_version, rel_path, rel, md5, size)
            adopted.append(rel_path)
        if adopted:
            job.warn(
                f"{len(adopted)} old video cop(ies) kept by an interrupted run recorded now: "
                f"{', '.join(adopted[:10])}"
            )

    async def videos(self, job: Job, stamp: str) -> Summary:
        """The media mirror as a child job: an error that stops it (server unreachable,
        host key, disk) fails this part only, so the night's records are still kept; a
        fatal one (configuration) stops the backup."""
        from ..media import mirror_down

        dest = self.options.dest
        started = time.monotonic()
        await self.adopt_versions(job)
        child = job.child("videos")
        try:
            part = await mirror_down(
                self.profile,
                self.limits,
                dest / MEDIA,
                accept_new_host_key=self.options.accept_new_host_key,
                versions_dir=dest / VERSIONS / stamp,
                reporter=child.reporter,
            )
        except LongtermError as exc:
            if scope_of(exc) is Scope.FATAL:
                raise
            child.summary.elapsed_s = time.monotonic() - started
            child.failed("videos", str(exc))
            return child.summary
        recorded = {v.rel: v for v in await self.db(self.store.videos)}
        versions, media = self.versions_side(), self.media_side()
        for rel in part.details.get("versions", []):
            old = recorded.get(rel)
            kept = await versions.stat(f"{stamp}/{rel}")
            size = kept.size if kept is not None else -1
            if old is not None and old.size == size:
                md5 = old.md5  # moved aside as it was recorded: no need to read it again
            else:
                size, md5 = await _size_md5(versions, f"{stamp}/{rel}")
            await self.db(self.store.put_version, f"{VERSIONS}/{stamp}/{rel}", rel, md5, size)
        changed = 0
        for rel, md5 in part.details.get("md5", {}).items():
            info = await media.stat(rel)
            if info is None:
                raise LocalIOError(f"{dest / MEDIA / rel} vanished while the backup ran")
            changed += await self.db(self.store.put_video, rel, md5, info.size)
        for rel in part.details.get("gone", []):
            await self.db(self.store.video_gone, rel)
        if part.details.get("gone"):
            job.warn(
                f"{len(part.details['gone'])} video(s) gone from the server, kept in the "
                f"backup: {', '.join(part.details['gone'][:10])}"
            )
        if part.details.get("versions"):
            job.warn(
                f"{len(part.details['versions'])} video(s) changed on the server, old copies "
                f"kept in {VERSIONS}/{stamp}/: {', '.join(part.details['versions'][:10])}"
            )
        part.details.pop("md5", None)
        return part


async def _size_md5(side: LocalSide, rel: str) -> tuple[int, str]:
    """A kept file's size and md5, read from the side itself (it must be there)."""
    info, md5 = await side.stat(rel), await side.md5(rel)
    if info is None or md5 is None:
        raise LocalIOError(f"{side.root / rel} vanished while the backup ran")
    return info.size, md5


def _version_files(root: Path) -> list[tuple[str, str]]:
    """Files under ``media_versions/<run time>/``: (path from the destination, video path)."""
    found: list[tuple[str, str]] = []
    if not root.is_dir():
        return found
    for stamp in sorted(root.iterdir()):
        if stamp.is_symlink() or not stamp.is_dir():
            continue
        for path in sorted(stamp.rglob("*")):
            if path.is_symlink() or not path.is_file() or path.name.startswith("."):
                continue
            rel = path.relative_to(stamp).as_posix()
            found.append((f"{VERSIONS}/{stamp.name}/{rel}", rel))
    return found


def _decide_kind(store: SnapshotStore, options: BackupOptions, now: datetime) -> str:
    if options.full:
        return "full"
    last = store.get_meta("last_full_pass")
    if last is None:
        return "full"
    due = datetime.fromisoformat(last) < now - timedelta(days=options.full_every_days)
    return "full" if due else "nightly"


def _log_block(dest: Path, summary: Summary, started: datetime, error: str | None) -> None:
    """Append this run's block to backup_log.txt (one write, then fsync)."""
    head = f"== {started.isoformat(timespec='seconds')} {summary.details.get('kind', 'backup')}"
    snap = summary.details.get("snapshot")
    head += f" snapshot {snap}" if snap else ""
    head += f": {'FAILED' if error else 'ok' if summary.ok else 'finished with failures'}"
    lines = [head, *summary.lines()]
    if error:
        lines.append(f"error: {error}")
    text = "\n".join(lines) + "\n\n"
    try:
        dest.mkdir(parents=True, exist_ok=True)
        with open(dest / LOG_NAME, "a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        log.warning("could not append to %s: %s", dest / LOG_NAME, exc)


async def run_backup(
    profile: ServerProfile,
    limits: Limits,
    options: BackupOptions,
    *,
    reporter: Reporter | None = None,
) -> Summary:
    """One backup run into ``options.dest``; returns its summary (also logged in the dest)."""
    job = Job("backup", reporter)
    summary = job.summary
    began = time.monotonic()
    now = options.now or datetime.now(profile.tz)
    try:
        await _backup(profile, limits, options, job, now)
    except (LongtermError, KeyboardInterrupt, asyncio.CancelledError) as exc:
        summary.elapsed_s = time.monotonic() - began
        await asyncio.to_thread(_log_block, options.dest, summary, now, str(exc) or "interrupted")
        raise
    summary.elapsed_s = time.monotonic() - began
    await asyncio.to_thread(_log_block, options.dest, summary, now, None)
    if options.report:
        await _rebuild_report(profile, limits, options, summary)
    return summary


async def _rebuild_report(
    profile: ServerProfile, limits: Limits, options: BackupOptions, summary: Summary
) -> None:
    """The snapshot is committed: a report that cannot be built is a failure of this run
    (exit 1), never a lost backup."""
    report = ReportOptions(
        site=options.dest / REPORT,
        selection=Selection(None),
        source_dir=options.dest / TEXT / LATEST,
    )
    try:
        part = await run_report(profile, limits, report)
    except LongtermError as exc:
        summary.fail("report", str(exc))
        return
    summary.parts.append(part)
    summary.details["report"] = part.details.get("index")


async def _open_store(options: BackupOptions) -> SnapshotStore:
    await asyncio.to_thread(check_output_dir, options.dest)
    return await asyncio.to_thread(SnapshotStore.open, options.dest / TEXT)


async def _backup(
    profile: ServerProfile,
    limits: Limits,
    options: BackupOptions,
    job: Job,
    now: datetime,
) -> None:
    summary = job.summary
    store = await _open_store(options)
    db = StoreThread(store)
    try:
        previous = await db(store.latest)
        marks = await db(store.marks)
        kind = await db(_decide_kind, store, options, now)
        snap = await db(store.begin_snapshot, kind)
        summary.details.update({"kind": kind, "snapshot": snap, "dest": str(options.dest)})
        run = BackupRun(profile, limits, options, db, previous, marks, kind, now)
        stamp = now.strftime("%Y-%m-%dT%H%M%S")
        async with asyncio.TaskGroup() as tg:
            rest = tg.create_task(run.rest(job))
            video = tg.create_task(run.videos(job, stamp)) if options.videos else None
        order = rest.result()
        if video is not None:
            part = video.result()
            summary.parts.append(part)
            run.fetched += part.bytes
        info = {
            "participants": order,
            "timezone": profile.tz.key,
            "kind": kind,
            "ok": summary.ok,
            "server": profile.url,
            "counts": summary.counts,
        }
        if kind == "full":
            await db(store.set_meta, "last_full_pass", now.isoformat())
        records_added, bytes_stored = store.records_added, store.bytes_stored
        await db(store.commit_snapshot, bytes_fetched=run.fetched, info=info)
        summary.count("records added", records_added)
        summary.bytes = run.fetched
        summary.details["bytes_stored"] = bytes_stored
        latest = await db(store.latest)
        assert latest is not None
        written = await db(replace_latest, store, latest, options.dest / TEXT)
        summary.count("files in latest", len(written.files))
        summary.details["store_bytes"] = await db(store.size_on_disk)
    except BaseExceptionGroup as group:
        await db(store.abort)
        raise first_error(group) from None
    except BaseException:
        with contextlib.suppress(Exception):
            await asyncio.shield(db(store.abort))
        raise
    finally:
        await asyncio.to_thread(_close, db, store)


def _close(db: StoreThread, store: SnapshotStore) -> None:
    db.close()
    try:
        store.close()
    except Exception as exc:  # closing must not hide the run's own error
        log.debug("closing the store: %s", exc)
