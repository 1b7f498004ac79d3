"""download-results: every selected participant's watch results and feedback, to JSON files.

Files written into the output folder (format: :mod:`longterm_sync.jsonstream`)::

    results_feedback_{external_id}.json   one participant's feedback, in date order (only
                                          for participants that have feedback, as the
                                          original wrote it)
    results_feedback_all.json             every participant's feedback
    results_{external_id}.json            one participant's results, in date order, each
                                          result's user_feedback rebuilt (see below)
    results_all.json                      every participant's results

The ``_all`` files hold the participants in selection order (for "all": the order of
``/api/users/``), each participant's items in date order: the concatenation of the
participant files, copied from them without parsing. ``--mode feedback`` writes only the
feedback files, ``--mode results`` only the results files (the feedback is still fetched, to
rebuild ``user_feedback``).

``user_feedback``: the server puts only the first feedback comment into each result
(docs/PROTOCOL.md, "Server bug"); it is replaced by the list of all that participant's
feedback for the same video within the requested range, in date order (``[]`` when there is
none).

How the work is shaped, and why:

- Each participant's range is split into windows (:mod:`longterm_sync.windows`) so that no
  response grows with the study. Windows of one participant are fetched in parallel, then
  sorted and written in window order; since windows are disjoint and ordered, that is date
  order with no global sort.
- Memory is bounded by a number of *window slots*: a window holds one from the moment its
  request is started until its encoded items are on disk. Parsing, which briefly needs
  several times the body's size, is limited further (``config.PARSE_SLOTS``).
- Participants are worked by :func:`longterm_sync.workers.run_items`. By the errors
  module's one policy a participant whose list fails (a poison row answers 500 on every
  retry) fails alone and is named in the summary; a rejected token, a wrong route, an
  unreachable server or a disk that refuses stop the whole run. A participant the flags
  name but the server has no schedule for is a failure too (listed, exit 1) and gets no
  file. Cancellation (Ctrl-C) unwinds
  every writer, which deletes its temporary file: no partial file is ever left under a
  final name.
- A result that lacks what this needs (date, result object, video) is written anyway,
  counted, and reported as a warning; it never stops the run.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from ..api import (
    FEEDBACK_COMMENTS,
    WATCH_RESULTS,
    PlatformClient,
    ResponseTooLarge,
    window_label,
)
from ..config import PARSE_SLOTS, Limits, ServerProfile
from ..errors import ProtocolError
from ..events import Job, Reporter
from ..ids import id_file_name
from ..jsonstream import AsyncArrayFile, encode_item
from ..select import Participant, Selection
from ..summary import Summary
from ..windows import Window, participant_windows, schedule_span, split_window
from ..workers import first_error, run_items
from .fanout import check_output_dir, resolve_into

log = logging.getLogger("longterm_sync.results")

MODES = ("feedback", "results", "feedback+results")

MAX_PROBLEMS_LISTED = 3
RESULTS_FILE = "results_{}.json"
FEEDBACK_FILE = "results_feedback_{}.json"


@dataclass(frozen=True)
class ResultsOptions:
    output_dir: Path
    selection: Selection
    mode: str = "feedback+results"
    now: datetime | None = None  # pinned in tests; None = the current time

    @property
    def want_results(self) -> bool:
        return "results" in self.mode

    @property
    def want_feedback(self) -> bool:
        return "feedback" in self.mode


@dataclass
class Outcome:
    """What one participant produced."""

    participant: Participant
    results: int = 0
    feedback: int = 0
    results_path: Path | None = None
    feedback_path: Path | None = None
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0


@dataclass
class EncodedWindow:
    """A window's items, sorted and encoded, ready to append to a participant's file."""

    parts: list[bytes]
    problems: list[str]


@dataclass
class Feedback:
    """A participant's feedback in date order, and the same grouped by video."""

    items: list[Any]
    by_video: dict[str, list[Any]]
    problems: list[str]


# -- pure functions (run in worker threads) -----------------------------------------------
#
# A result is ~250 KB, nearly all of it sensor samples this command never looks at. Items are
# decoded one level deep into ``msgspec.Raw`` values (byte ranges of the response, skipped at C
# speed and written back verbatim), so only ``date``, ``result.video`` and ``user_feedback``
# are ever turned into Python objects. That is what keeps a download close to the speed of
# the network: a full parse and re-dump costs several times more CPU than the transfer.

_ITEMS = msgspec.json.Decoder(list[dict[str, msgspec.Raw]])
_RAWS = msgspec.json.Decoder(list[msgspec.Raw])
_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ANY = msgspec.json.Decoder()

Item = dict[str, Any] | msgspec.Raw
"""One list element: an object whose values are still raw JSON, or raw JSON (not an object)."""


def decode_items(body: bytes, what: str) -> list[Item]:
    """The elements of a list response, one level deep; anything but a list is an error."""
    try:
        return list(_ITEMS.decode(body))
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"{what}: the server sent invalid JSON ({exc})") from None
    try:
        raws = _RAWS.decode(body)
    except msgspec.ValidationError:
        raise ProtocolError(f"{what}: the server did not answer a list") from None
    items: list[Item] = []
    for raw in raws:
        try:
            items.append(_OBJECT.decode(raw))
        except msgspec.ValidationError:
            items.append(raw)
    return items


def _text(raw: Any) -> str | None:
    """A raw JSON value as a string, or None when it is absent or not a string."""
    if not isinstance(raw, msgspec.Raw):
        return None
    value = _ANY.decode(raw)
    return value if isinstance(value, str) else None


def date_key(item: Item, tz: ZoneInfo) -> tuple[int, int]:
    """Sort key: microseconds since the epoch; undated items last, in server order."""
    value = _text(item.get("date")) if isinstance(item, dict) else None
    if value is None:
        return (1, 0)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return (1, 0)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return (0, int(moment.timestamp()) * 1_000_000 + moment.microsecond)


def sort_by_date(items: list[Item], tz: ZoneInfo) -> list[Item]:
    """Stable: items with the same date keep the server's order."""
    return sorted(items, key=lambda item: date_key(item, tz))


def _describe(item: dict[str, Any]) -> str:
    date = _text(item.get("date"))
    return f"item dated {date}" if date else "undated item"


def build_feedback(bodies: Sequence[bytes], tz: ZoneInfo, what: str) -> Feedback:
    """Merge a participant's feedback windows (in window order) into a :class:`Feedback`."""
    items: list[Item] = []
    problems: list[str] = []
    for body in bodies:
        items.extend(sort_by_date(decode_items(body, what), tz))
    by_video: dict[str, list[Any]] = {}
    for item in items:
        if not isinstance(item, dict):
            problems.append("feedback item that is not an object")
            continue
        missing = [k for k in ("date", "video", "comment") if k not in item]
        if missing:
            problems.append(f"feedback {_describe(item)} lacks {', '.join(missing)}")
        elif date_key(item, tz)[0]:
            problems.append(f"feedback with an unreadable date {bytes(item['date'])!r}")
        video = _text(item.get("video"))
        if video is not None:
            by_video.setdefault(video, []).append(item)
    return Feedback(items=items, by_video=by_video, problems=problems)


def fix_result(item: Item, feedback: Feedback, tz: ZoneInfo) -> str | None:
    """Rebuild ``user_feedback`` in place; return what the result lacks, if anything."""
    if not isinstance(item, dict):
        return "a result that is not an object"
    lacks = [k for k in ("date", "result") if k not in item]
    if "result" in item:
        try:
            result: dict[str, Any] = _OBJECT.decode(item["result"])
        except msgspec.ValidationError:
            lacks.append("a result object")
        else:
            video = _text(result.get("video"))
            result["user_feedback"] = feedback.by_video.get(video, []) if video else []
            item["result"] = result
            if not video:
                lacks.append("result.video")
    if not lacks and date_key(item, tz)[0]:
        return f"result with an unreadable date {bytes(item['date'])!r}"
    return f"result {_describe(item)} lacks {', '.join(lacks)}" if lacks else None


def encode_results_window(
    body: bytes, feedback: Feedback, tz: ZoneInfo, what: str
) -> EncodedWindow:
    """Decode, sort, fix and encode one window; each item is dropped once encoded."""
    data = decode_items(body, what)
    del body
    order = sorted(range(len(data)), key=lambda i: date_key(data[i], tz))
    parts: list[bytes] = []
    problems: list[str] = []
    for i in order:
        item = data[i]
        problem = fix_result(item, feedback, tz)
        if problem:
            problems.append(problem)
        parts.append(encode_item(item))
        data[i] = msgspec.Raw(b"")
    return EncodedWindow(parts=parts, problems=problems)


# -- the pipeline ----------------------------------------------------------------------------


class ScheduleMemo:
    """The client as :func:`resolve_participants` sees it, keeping the schedules it fetched.

    Selection already asks for the participants' schedules; their dates anchor the windows,
    so keeping them saves a second request.
    """

    def __init__(self, client: PlatformClient) -> None:
        self.client = client
        self.by_id: dict[str, dict[str, Any]] = {}
        self.asked: set[str] = set()
        self.asked_all = False

    async def users(self) -> list[str]:
        return await self.client.users()

    async def schedules(self, external_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        rows = await self.client.schedules(external_ids)
        if external_ids is None:
            self.asked_all = True
        else:
            self.asked.update(external_ids)
        for row in rows:
            schedule = row.get("schedule")
            if isinstance(schedule, dict) and schedule.get("external_id"):
                self.by_id.setdefault(str(schedule["external_id"]), schedule)
        return rows

    async def ensure(self, external_ids: Sequence[str]) -> None:
        if self.asked_all:
            return
        todo = [e for e in external_ids if e not in self.asked]
        if todo:
            await self.schedules(todo)


class ResultsRun:
    """One download-results run; state shared by the workers."""

    def __init__(
        self,
        profile: ServerProfile,
        limits: Limits,
        options: ResultsOptions,
        client: PlatformClient,
        memo: ScheduleMemo,
        job: Job,
    ) -> None:
        self.profile = profile
        self.tz = profile.tz
        self.limits = limits
        self.options = options
        self.client = client
        self.memo = memo
        self.job = job
        self.summary = job.summary
        self.now = options.now or datetime.now(self.tz)
        self.slots = asyncio.Semaphore(limits.window_slots)
        self.cpu = asyncio.Semaphore(PARSE_SLOTS)
        self.windows = 0
        self.stale: dict[str, str] = {}  # kept file -> its mtime, for failed participants
        self.missing: list[str] = []  # failed participants without an earlier file

    def plan(self, p: Participant) -> list[Window]:
        return participant_windows(
            p.start,
            p.stop,
            days=self.limits.window_days,
            schedule=self.memo.by_id.get(p.external_id),
            tz=self.tz,
            now=self.now,
        )

    def bounds(self, p: Participant) -> tuple[datetime | None, datetime]:
        """Where this participant's rows can be: to cut open-ended windows when splitting."""
        span = schedule_span(self.memo.by_id.get(p.external_id), self.tz)
        return (span[0] if span else None), self.now

    async def feedback(self, p: Participant, windows: list[Window]) -> Feedback:
        lo, hi = self.bounds(p)
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(
                    self.client.list_route_split(
                        FEEDBACK_COMMENTS, p.external_id, w.start, w.stop, lo=lo, hi=hi
                    )
                )
                for w in windows
            ]
        bodies = [body for t in tasks for body in t.result()]
        what = f"participant {p.external_id} feedback"
        if sum(len(b) for b in bodies) > 256 * 1024:
            return await asyncio.to_thread(build_feedback, bodies, self.tz, what)
        return build_feedback(bodies, self.tz, what)

    async def results_window(
        self, p: Participant, w: Window, feedback: Awaitable[Feedback]
    ) -> EncodedWindow | tuple[Window, Window]:
        """The window encoded, or its two halves when its answer is over the size cap (the
        writer then fetches them one after the other, so memory stays bounded)."""
        try:
            body = await self.client.list_route_bytes(WATCH_RESULTS, p.external_id, w.start, w.stop)
        except ResponseTooLarge as exc:
            lo, hi = self.bounds(p)
            halves = split_window(w, lo=lo, hi=hi)
            if halves is None:
                label = window_label(p.external_id, w.start, w.stop, self.profile)
                raise ResponseTooLarge(f"{label}: {exc}, even for one day") from None
            log.info("participant %s: window too large, fetching it in two halves", p.short)
            return halves
        fb = await feedback
        async with self.cpu:
            what = f"participant {p.external_id} results"
            return await asyncio.to_thread(encode_results_window, body, fb, self.tz, what)

    async def results(
        self,
        p: Participant,
        windows: list[Window],
        feedback: asyncio.Task[Feedback],
        tg: asyncio.TaskGroup,
        outcome: Outcome,
    ) -> None:
        """Stream one participant's results file, windows fetched ahead within the slots."""
        path = self.options.output_dir / id_file_name(RESULTS_FILE, p.external_id)
        pending: deque[asyncio.Task[EncodedWindow | tuple[Window, Window]]] = deque()
        held = 0

        async def write_head(out: AsyncArrayFile) -> None:
            nonlocal held
            task = pending.popleft()
            await write_window(out, await task)
            held -= 1
            self.slots.release()

        async def write_window(
            out: AsyncArrayFile, window: EncodedWindow | tuple[Window, Window]
        ) -> None:
            if isinstance(window, tuple):  # too large: halves in turn, under the head's slot
                for half in window:
                    await write_window(out, await self.results_window(p, half, feedback))
                return
            await out.write_parts(window.parts)
            outcome.results += len(window.parts)
            outcome.problem_count += len(window.problems)
            outcome.problems.extend(window.problems[:MAX_PROBLEMS_LISTED])

        try:
            async with AsyncArrayFile(path) as out:
                for w in windows:
                    # Write what is ready; while no slot is free, wait for our own head
                    # (it holds a slot already), so we block on the semaphore only when
                    # we hold nothing: no two participants can wait on each other.
                    while pending and (pending[0].done() or self.slots.locked()):
                        await write_head(out)
                    await self.slots.acquire()
                    held += 1
                    pending.append(tg.create_task(self.results_window(p, w, feedback)))
                while pending:
                    await write_head(out)
        finally:
            for task in pending:
                task.cancel()
            for _ in range(held):
                self.slots.release()
        outcome.results_path = path

    async def participant(self, p: Participant) -> Outcome:
        windows = self.plan(p)
        self.windows += len(windows)
        outcome = Outcome(participant=p)
        async with asyncio.TaskGroup() as tg:
            fb_task = tg.create_task(self.feedback(p, windows))
            if self.options.want_results:
                tg.create_task(self.results(p, windows, fb_task, tg, outcome))
        fb = fb_task.result()
        outcome.feedback = len(fb.items)
        outcome.problem_count += len(fb.problems)
        outcome.problems.extend(fb.problems[:MAX_PROBLEMS_LISTED])
        if self.options.want_feedback and fb.items:
            # As the original: a participant without feedback gets no file (an empty one
            # would read as "downloaded, nothing there" for someone the run never covered).
            path = self.options.output_dir / id_file_name(FEEDBACK_FILE, p.external_id)
            async with AsyncArrayFile(path) as out:
                await out.write_parts([encode_item(item) for item in fb.items])
            outcome.feedback_path = path
        return outcome

    async def settle(
        self,
        index: int,
        p: Participant,
        outcome: Outcome | None,
        done: list[asyncio.Future[Outcome | None]],
    ) -> None:
        """After each participant, failed or not: its event, then its place in the
        combined files is free to be written."""
        if outcome is None:
            log.debug("participant %s failed", p.short)
        else:
            log.debug(
                "participant %s: %d results, %d feedback",
                p.short,
                outcome.results,
                outcome.feedback,
            )
            counts = {"results": outcome.results, "feedback": outcome.feedback}
            self.job.done(f"participant {p.external_id}", counts)
        done[index].set_result(outcome)

    async def write_all(
        self,
        name: str,
        participants: Sequence[Participant],
        done: list[asyncio.Future[Outcome | None]],
        pick: Callable[[Outcome], tuple[Path | None, int]],
        pattern: str,
    ) -> None:
        """Concatenate the participant files, in selection order, as they complete.

        A participant that failed this run keeps its place with the content of its kept
        per-participant file (``pattern``), streamed as any other: a failure never shrinks
        a combined file silently. The summary names it as stale, or as missing when there
        is no earlier file."""
        async with AsyncArrayFile(self.options.output_dir / name) as out:
            for p, future in zip(participants, done, strict=True):
                outcome = await future
                if outcome is None:
                    await self.keep(out, p, pattern)
                    continue
                path, count = pick(outcome)
                if path is not None:
                    await out.splice_file(path, count)
        self.summary.files.append(name)

    async def keep(self, out: AsyncArrayFile, p: Participant, pattern: str) -> None:
        kept = self.options.output_dir / id_file_name(pattern, p.external_id)
        try:
            mtime = kept.stat().st_mtime
        except FileNotFoundError:
            if p.external_id not in self.missing:
                self.missing.append(p.external_id)
            return
        await out.splice_file(kept, 1)
        when = datetime.fromtimestamp(mtime).astimezone().isoformat(timespec="seconds")
        self.stale[kept.name] = when


async def run_download_results(
    profile: ServerProfile,
    limits: Limits,
    options: ResultsOptions,
    *,
    reporter: Reporter | None = None,
) -> Summary:
    """Run download-results; per-participant failures land in the summary."""
    if options.mode not in MODES:
        raise ValueError(f"unknown mode {options.mode!r}")
    job = Job("download-results", reporter)
    await asyncio.to_thread(check_output_dir, options.output_dir)
    async with PlatformClient(profile, limits) as client:
        memo = ScheduleMemo(client)
        participants = await resolve_into(options.selection, memo, job)
        await memo.ensure(
            [p.external_id for p in participants if p.start is None or p.stop is None]
        )
        run = ResultsRun(profile, limits, options, client, memo, job)
        job.planned(len(participants))
        log.debug(
            "downloading %s for %d participants from %s",
            options.mode,
            len(participants),
            profile.url,
        )
        loop = asyncio.get_running_loop()
        done: list[asyncio.Future[Outcome | None]] = [loop.create_future() for _ in participants]

        async def settle(index: int, p: Participant, outcome: Outcome | None) -> None:
            await run.settle(index, p, outcome, done)

        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(
                    run_items(
                        participants,
                        run.participant,
                        workers=limits.window_slots,
                        job=job,
                        label=lambda p: f"participant {p.external_id}",
                        reason=lambda p, exc: str(exc).removeprefix(
                            f"participant {p.external_id}, "
                        ),
                        settle=settle,
                    )
                )
                if options.want_feedback:
                    tg.create_task(
                        run.write_all(
                            "results_feedback_all.json",
                            participants,
                            done,
                            lambda o: (o.feedback_path, o.feedback),
                            FEEDBACK_FILE,
                        )
                    )
                if options.want_results:
                    tg.create_task(
                        run.write_all(
                            "results_all.json",
                            participants,
                            done,
                            lambda o: (o.results_path, o.results),
                            RESULTS_FILE,
                        )
                    )
        except BaseExceptionGroup as group:
            raise first_error(group) from None
        outcomes = [f.result() for f in done if f.done() and f.result() is not None]
        _fill_summary(job, outcomes, run, client, options)
    return job.finish()


def _fill_summary(
    job: Job,
    outcomes: list[Outcome | None],
    run: ResultsRun,
    client: PlatformClient,
    options: ResultsOptions,
) -> None:
    summary = job.summary
    ok = [o for o in outcomes if o is not None]
    summary.count("participants", len(ok))
    if options.want_results:
        summary.count("results", sum(o.results for o in ok))
    summary.count("feedback", sum(o.feedback for o in ok))
    incomplete = sum(o.problem_count for o in ok)
    if incomplete:
        summary.count("incomplete items", incomplete)
    summary.bytes = client.bytes_received
    summary.details.update(
        {
            "mode": options.mode,
            "output_dir": str(options.output_dir),
            "requests": client.requests,
            "retried": client.retried,
            "windows": run.windows,
        }
    )
    if run.stale:
        summary.details["stale"] = dict(run.stale)
        for name, when in run.stale.items():
            job.warn(
                f"{name} is stale (written {when}): its participant failed this run, so the "
                "combined files hold that earlier copy"
            )
    if run.missing:
        summary.details["missing"] = list(run.missing)
        for ext in run.missing:
            job.warn(
                f"participant {ext[:12]} failed this run and has no earlier file: missing "
                "from the combined files"
            )
    for o in ok:
        if o.problem_count:
            shown = "; ".join(o.problems[:MAX_PROBLEMS_LISTED])
            more = o.problem_count - min(len(o.problems), MAX_PROBLEMS_LISTED)
            job.warn(
                f"participant {o.participant.short}: {o.problem_count} item(s) with missing "
                f"fields, written as received ({shown}{f'; +{more} more' if more > 0 else ''})"
            )
        for path in (o.feedback_path, o.results_path):
            if path is not None:
                summary.files.append(path.name)
