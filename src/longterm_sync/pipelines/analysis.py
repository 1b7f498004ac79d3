"""The analysis commands: results-table, device-report, missing-videos and the sensor plots.

Each reads results either from a folder (download-results' files, a backup's ``latest/``)
streamed item by item, or from the server per participant and window (the selection flags
decide who and when in both cases). Items are reduced to small rows as they are read, in a
worker thread, so memory follows the table, not the JSON. Files are written atomically.

What could be read is used: a truncated or corrupt file is a failure naming its line, the
items before that line still count, and the table is written from whatever was read. Only
when nothing at all could be read is no file written (the run exits 1 with one line saying so).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time as clock
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import orjson

from ..analysis import devices as dev
from ..analysis import missing as miss
from ..analysis import plots, preprocess_r
from ..analysis import table as tab
from ..analysis.source import (
    MISSING_VIDEOS,
    RESULTS_ALL,
    BadFile,
    Keep,
    iter_items,
    read_json,
    results_files,
    schedule_files,
)
from ..api import FEEDBACK_COMMENTS, WATCH_RESULTS, PlatformClient
from ..api import MISSING_VIDEOS as MISSING_ROUTE
from ..config import PARSE_SLOTS, Limits, ServerProfile
from ..errors import InputFileError, ProtocolError, UsageError
from ..events import Job, Reporter
from ..select import Participant, Selection
from ..summary import Summary
from ..workers import first_error
from .fanout import (
    check_output_dir,
    fetch_window_bodies,
    fetch_windows,
    per_participant,
    resolve_into,
)
from .results import ScheduleMemo

log = logging.getLogger("longterm_sync.analysis")

T = TypeVar("T")
"""Window bodies parsed at once: a parsed body takes several times its JSON's memory."""


@dataclass(frozen=True, kw_only=True)
class Source:
    """Where results come from: ``folder`` or (None) the server, and who/when."""

    selection: Selection
    folder: Path | None = None

    @property
    def label(self) -> str:
        return str(self.folder) if self.folder is not None else "the server"


@dataclass(frozen=True, kw_only=True)
class TableOptions:
    source: Source
    output_dir: Path = Path()
    sec_margin: float = 3.0
    xlsx: bool = False
    parquet: bool = False
    like_preprocess_r: bool = False


@dataclass(frozen=True, kw_only=True)
class ReportOptions:
    source: Source
    output_dir: Path = Path()
    xlsx: bool = False


@dataclass
class Gathered:
    rows: list[Any] = field(default_factory=list)
    items: int = 0


# -- reading -------------------------------------------------------------------------------


def _participant_files(files: list[Path], selection: Selection) -> list[Path]:
    """Only the named participants' own files (a study folder holds hundreds)."""
    if selection.participants is None or files[0].name == RESULTS_ALL:
        return files
    wanted = {f"results_{p.external_id}.json" for p in selection.participants}
    wanted |= {f"results_{p.also}.json" for p in selection.participants if p.also}
    return [f for f in files if f.name in wanted]


def folder_rows(
    folder: Path,
    selection: Selection,
    tz: ZoneInfo,
    reduce: Callable[[Any], T | None],
    summary: Summary,
) -> Gathered:
    """Stream the folder's results through ``reduce`` (blocking; run in a thread)."""
    files = _participant_files(results_files(folder), selection)
    keep = Keep(selection, tz)
    out = Gathered()
    seen: set[str] = set()
    for path in files:
        try:
            for _line, item in iter_items(path):
                if not keep(item):
                    continue
                seen.add(str(item.get("external_id") or ""))
                out.items += 1
                row = reduce(item)
                if row is not None:
                    out.rows.append(row)
        except BadFile as exc:
            summary.fail(f"{exc.path}:{exc.line}", exc.reason)
    for p in selection.participants or []:
        if p.external_id not in seen and (p.also is None or p.also not in seen):
            summary.fail(f"participant {p.external_id}", f"no results in {folder}{_range(p)}")
    return out


def _range(p: Participant) -> str:
    if p.start is None and p.stop is None:
        return ""
    a = p.start.isoformat(timespec="seconds") if p.start else "..."
    b = p.stop.isoformat(timespec="seconds") if p.stop else "..."
    return f" between {a} and {b}"


def _reduce_body(body: bytes, reduce: Callable[[Any], T | None]) -> tuple[int, list[T]]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"/api/{WATCH_RESULTS}/ sent invalid JSON: {exc}") from None
    if not isinstance(data, list):
        raise ProtocolError(f"/api/{WATCH_RESULTS}/ did not answer a list")
    rows = [row for row in map(reduce, data) if row is not None]
    return len(data), rows


async def server_rows(
    profile: ServerProfile,
    limits: Limits,
    selection: Selection,
    reduce: Callable[[Any], T | None],
    job: Job,
) -> Gathered:
    """Every selected participant's results, window by window, reduced as they arrive."""
    summary = job.summary
    out = Gathered()
    now = datetime.now(profile.tz)
    async with PlatformClient(profile, limits) as client:
        participants = await resolve_into(selection, client, job)
        job.planned(len(participants))
        parsing = asyncio.Semaphore(PARSE_SLOTS)

        async def fetch(p: Participant) -> tuple[int, list[T]]:
            bodies = await fetch_window_bodies(
                client, WATCH_RESULTS, p, limits, start=p.start, stop=p.stop, now=now
            )
            bodies.reverse()
            count, rows = 0, []
            while bodies:  # pop, so each body is freed once reduced
                body = bodies.pop()
                async with parsing:
                    got: tuple[int, list[T]] = await asyncio.to_thread(_reduce_body, body, reduce)
                n, part = got
                count += n
                rows.extend(part)
            if count == 0 and selection.participants is not None:
                job.warn(f"participant {p.short}: no results{_range(p)}")
            job.done(f"participant {p.external_id}", {"results": count})
            return count, rows

        for got in await per_participant(participants, limits, fetch, job):
            if got is not None:
                out.items += got[0]
                out.rows.extend(got[1])
        summary.bytes = client.bytes_received
        summary.details["requests"] = client.requests
    summary.count("participants", len(participants))
    return out


async def gather(
    profile: ServerProfile,
    limits: Limits,
    source: Source,
    reduce: Callable[[Any], T | None],
    job: Job,
) -> Gathered:
    summary = job.summary
    if source.folder is not None:
        got = await asyncio.to_thread(
            folder_rows, source.folder, source.selection, profile.tz, reduce, summary
        )
        summary.count("participants", len({_ext(r) for r in got.rows}))
        return got
    return await server_rows(profile, limits, source.selection, reduce, job)


def _ext(row: Any) -> str:
    if isinstance(row, dict):
        return str(row.get("external_id"))
    if isinstance(row, list) and row:
        return str(row[0])
    return str(getattr(row, "external_id", ""))


def _nothing(summary: Summary, source: Source, what: str) -> None:
    summary.fail(what, f"nothing found in {source.label} for this selection; no file written")


# -- results-table -------------------------------------------------------------------------


async def run_results_table(
    profile: ServerProfile,
    limits: Limits,
    options: TableOptions,
    *,
    reporter: Reporter | None = None,
) -> Summary:
    """One row per viewing (or the preprocess.R table), written as CSV/xlsx/parquet."""
    job = Job("results-table", reporter)
    summary = job.summary
    tz = profile.tz
    await asyncio.to_thread(check_output_dir, options.output_dir)
    if options.like_preprocess_r:
        got = await gather(profile, limits, options.source, preprocess_r.r_row, job)
        summary.count("results", got.items)
        summary.count("rows", len(got.rows))
        if got.items == 0:
            _nothing(summary, options.source, "results")
        else:
            path = options.output_dir / preprocess_r.FILE_NAME
            text = await asyncio.to_thread(preprocess_r.r_csv, got.rows)
            summary.bytes = await asyncio.to_thread(_write_text, path, text)
            summary.files.append(str(path))
        return job.finish()

    def reduce(item: Any) -> dict[str, Any] | None:
        return tab.viewing_row(item, tz, options.sec_margin)

    got = await gather(profile, limits, options.source, reduce, job)
    summary.count("rows", len(got.rows))
    skipped = got.items - len(got.rows)
    if skipped:
        summary.warnings.append(f"{skipped} item(s) are not results (no result object): left out")
    if not got.rows:
        _nothing(summary, options.source, "results")
    else:
        table = tab.ResultsTable()
        table.extend(got.rows)
        summary.details["columns"] = table.columns
        for path in await asyncio.to_thread(_write_table, table, options):
            summary.files.append(str(path))
    return job.finish()


def _write_text(path: Path, text: str) -> int:
    from ..atomic import write_text_atomic

    return write_text_atomic(path, text)


def _write_table(table: tab.ResultsTable, options: TableOptions) -> list[Path]:
    frame = table.frame()
    out = options.output_dir
    paths = [out / tab.CSV_NAME]
    tab.write_csv(frame, paths[0])
    if options.xlsx:
        paths.append(out / tab.XLSX_NAME)
        tab.write_xlsx(frame, paths[-1], sheet="results", notes=tab.COLUMN_HELP)
    if options.parquet:
        paths.append(out / tab.PARQUET_NAME)
        tab.write_parquet(frame, paths[-1])
    return paths


# -- device-report -------------------------------------------------------------------------


def _device_row(tz: ZoneInfo) -> Callable[[Any], dict[str, Any] | None]:
    from ..analysis.source import item_date
    from ..analysis.stats import local_iso

    def reduce(item: Any) -> dict[str, Any] | None:
        if not isinstance(item, dict) or not isinstance(item.get("result"), dict):
            return None
        when = item_date(item, tz)
        device = item["result"].get("device_info")
        device = device if isinstance(device, dict) else {}

        def text(key: str) -> str | None:
            value = device.get(key)
            return value if isinstance(value, str) else None

        return {
            "external_id": str(item.get("external_id") or ""),
            "date": local_iso(when) if when is not None else None,
            "device_brand": text("brand"),
            "device_model": text("model"),
            "os_version": text("os_version"),
        }

    return reduce


async def run_device_report(
    profile: ServerProfile,
    limits: Limits,
    options: ReportOptions,
    *,
    reporter: Reporter | None = None,
) -> Summary:
    job = Job("device-report", reporter)
    summary = job.summary
    await asyncio.to_thread(check_output_dir, options.output_dir)
    got = await gather(profile, limits, options.source, _device_row(profile.tz), job)
    spans = dev.device_spans(got.rows)
    changed = len(spans) - len({s.external_id for s in spans})
    summary.count("viewings", len(got.rows))
    summary.count("devices", len(spans))
    summary.count("changes", changed)
    if not got.rows:
        _nothing(summary, options.source, "results")
    else:
        summary.details["table"] = dev.summary_lines(spans)
        frame = dev.spans_frame(spans)
        for path in await asyncio.to_thread(
            _write_frame, frame, options, dev.CSV_NAME, dev.XLSX_NAME, "devices"
        ):
            summary.files.append(str(path))
    return job.finish()


def _write_frame(
    frame: Any, options: ReportOptions, csv_name: str, xlsx_name: str, sheet: str
) -> list[Path]:
    paths = [options.output_dir / csv_name]
    tab.write_csv(frame, paths[0])
    if options.xlsx:
        paths.append(options.output_dir / xlsx_name)
        tab.write_xlsx(frame, paths[-1], sheet=sheet)
    return paths


# -- missing-videos ------------------------------------------------------------------------


def _folder_missing(folder: Path, summary: Summary) -> tuple[list[Any], dict[str, Any]]:
    if not folder.is_dir():
        raise InputFileError(f"{folder} is not a folder")
    path = folder / MISSING_VIDEOS
    if not path.is_file():
        raise InputFileError(
            f"no {MISSING_VIDEOS} in {folder}",
            hint="a backup's text_files/latest/ has it; or read the server (no --from)",
        )
    reports: list[Any] = []
    try:
        for _line, item in iter_items(path):
            reports.append(item)
    except BadFile as exc:
        summary.fail(f"{exc.path}:{exc.line}", exc.reason)
    schedules: dict[str, Any] = {}
    for sched in schedule_files(folder):
        try:
            data = read_json(sched)
        except BadFile as exc:
            summary.fail(f"{exc.path}:{exc.line}", exc.reason)
            continue
        if isinstance(data, dict) and isinstance(data.get("schedule"), dict):
            data = data["schedule"]  # the server's {"id", "schedule"} row
        if isinstance(data, dict) and data.get("external_id"):
            schedules[str(data["external_id"])] = data
    return reports, schedules


async def _server_missing(
    profile: ServerProfile, limits: Limits, selection: Selection, job: Job
) -> tuple[list[Any], dict[str, Any], list[Participant]]:
    summary = job.summary
    async with PlatformClient(profile, limits) as client:
        memo = ScheduleMemo(client)
        participants = await resolve_into(selection, memo, job)
        reports: list[Any] = []
        if selection.is_all:
            # the route ignores dates: one request for the whole server beats one each
            body = await client.get_bytes(MISSING_ROUTE, {}, item="missing-video reports")
            data = orjson.loads(body)
            if not isinstance(data, list):
                raise ProtocolError(f"/api/{MISSING_ROUTE}/ did not answer a list")
            reports = data
        else:

            async def fetch(p: Participant) -> list[Any]:
                return await client.missing_videos(p.external_id)

            for got in await per_participant(participants, limits, fetch, job):
                reports.extend(got or [])
        await memo.ensure([p.external_id for p in participants])
        summary.bytes = client.bytes_received
        return reports, dict(memo.by_id), participants


async def run_missing_videos(
    profile: ServerProfile,
    limits: Limits,
    options: ReportOptions,
    *,
    reporter: Reporter | None = None,
) -> Summary:
    job = Job("missing-videos", reporter)
    summary = job.summary
    tz = profile.tz
    selection = options.source.selection
    await asyncio.to_thread(check_output_dir, options.output_dir)
    keep = Keep(selection, tz)
    if options.source.folder is not None:
        reports, schedules = await asyncio.to_thread(
            _folder_missing, options.source.folder, summary
        )
        participants = selection.participants or []
        known = set(schedules) | {str(r.get("external_id")) for r in reports if isinstance(r, dict)}
        for p in participants:
            if p.external_id not in known and (p.also is None or p.also not in known):
                summary.fail(f"participant {p.external_id}", f"not in {options.source.folder}")
    else:
        reports, schedules, participants = await _server_missing(profile, limits, selection, job)
        if selection.is_all:
            ids = {p.external_id for p in participants}
            reports = [r for r in reports if isinstance(r, dict) and r.get("external_id") in ids]
    # selection ranges apply to the report's date (the route itself ignores them)
    if selection.participants is not None and participants:
        by_id = {p.external_id: p for p in participants}
        keep = Keep(Selection(participants=list(by_id.values()), source=selection.source), tz)
    reports = [r for r in reports if keep(r)]
    rows = miss.join_reports(reports, schedules, tz)
    summary.count("participants", len({r["external_id"] for r in rows}))
    summary.count("reports", len(rows))
    for status in (miss.DUE, miss.NOT_DUE, miss.NO_ENTRY, miss.NO_SCHEDULE):
        n = sum(1 for r in rows if r["status"] == status)
        if n:
            summary.count(status, n)
    summary.details["table"] = miss.summary_lines(rows) if rows else []
    for path in await asyncio.to_thread(
        _write_frame, miss.rows_frame(rows), options, miss.CSV_NAME, miss.XLSX_NAME, "missing"
    ):
        summary.files.append(str(path))
    return job.finish()


# -- download-plot-gyro-sequence -----------------------------------------------------------

WILDCARD_REFUSED = (
    "download-plot-gyro-sequence draws one participant; this activity doesn't work for "
    "wildcard --user_time=,,, or a selection naming several participants"
)


@dataclass(frozen=True, kw_only=True)
class PlotOptions:
    source: Source
    output_dir: Path = Path()
    fmt: str = "png"
    interactive: bool = False  # keep the viewings for show_sequence instead of saving
    contact_sheet: bool = True


@dataclass
class PlotRun:
    """The summary, and (interactive runs only) the viewings to show in windows."""

    summary: Summary
    viewings: list[plots.PlotData] = field(default_factory=list)


class _Stopped(Exception):
    """The drawing side gave up: the reading thread stops feeding it."""


class _Feed:
    """A bounded hand-over from a reading thread to the event loop: the thread blocks while
    ``size`` viewings wait, so memory holds at most that many viewings' samples however many
    the participant has."""

    def __init__(self, size: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[plots.PlotData | None] = asyncio.Queue(maxsize=size)
        self.stopped = threading.Event()

    def put(self, data: plots.PlotData | None) -> None:
        """From a worker thread."""
        future = asyncio.run_coroutine_threadsafe(self.queue.put(data), self.loop)
        while True:
            try:
                future.result(timeout=0.2)
                return
            except concurrent.futures.TimeoutError:
                if self.stopped.is_set():
                    future.cancel()
                    raise _Stopped from None


def _one_participant(selection: Selection) -> None:
    if selection.participants is None or len(selection.participants) != 1:
        raise UsageError(
            WILDCARD_REFUSED, hint="name one participant with --user_time or --external_id_time"
        )


def _feedback_by_video(rows: list[Any], tz: ZoneInfo) -> dict[str, list[dict[str, Any]]]:
    from ..analysis.source import item_date

    by_video: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if isinstance(row, dict) and isinstance(row.get("video"), str):
            by_video.setdefault(row["video"], []).append(row)
    for comments in by_video.values():
        comments.sort(key=lambda c: item_date(c, tz) or datetime.min.replace(tzinfo=tz))
    return by_video


def _folder_feedback(folder: Path, selection: Selection, tz: ZoneInfo) -> dict[str, Any] | None:
    """The participant's results_feedback_<id>.json when the folder has it (download-results
    writes it only for participants with feedback); None: use each result's user_feedback."""
    for p in selection.participants or []:
        path = folder / f"results_feedback_{p.external_id}.json"
        if path.is_file():
            rows = [item for _line, item in iter_items(path)]
            return _feedback_by_video(rows, tz)
    return None


async def _produce(
    profile: ServerProfile,
    limits: Limits,
    source: Source,
    feed: _Feed,
    summary: Summary,
) -> None:
    """Read the participant's results and hand each viewing's PlotData to ``feed``."""
    tz = profile.tz
    selection = source.selection

    def reducer(feedback: dict[str, Any] | None) -> Callable[[Any], None]:
        def reduce(item: Any) -> None:
            video = item.get("result", {}).get("video") if isinstance(item, dict) else None
            comments = None if feedback is None else feedback.get(str(video), [])
            data = plots.plot_data(item, tz, comments)
            if data is not None:
                feed.put(data)

        return reduce

    if source.folder is not None:
        folder = source.folder

        def read() -> int:
            feedback = _folder_feedback(folder, selection, tz)
            return folder_rows(folder, selection, tz, reducer(feedback), summary).items

        summary.count("results", await asyncio.to_thread(read))
        return
    now = datetime.now(tz)
    async with PlatformClient(profile, limits) as client:
        job = Job(summary.command, summary=summary)
        participants = await resolve_into(selection, client, job)
        for p in participants:
            comments = await fetch_windows(
                client, FEEDBACK_COMMENTS, p, limits, start=p.start, stop=p.stop, now=now
            )
            feedback = _feedback_by_video(comments, tz)
            bodies = await fetch_window_bodies(
                client, WATCH_RESULTS, p, limits, start=p.start, stop=p.stop, now=now
            )
            bodies.reverse()
            while bodies:
                n, _ = await asyncio.to_thread(_reduce_body, bodies.pop(), reducer(feedback))
                summary.count("results", n)
        summary.bytes = client.bytes_received


def _pool(workers: int) -> concurrent.futures.Executor:
    """Processes for more than one worker (matplotlib holds the GIL while it draws), started
    by a fork server: forking this process (its event loop and threads) is not safe."""
    if workers <= 1:
        return concurrent.futures.ThreadPoolExecutor(max_workers=1)
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    return concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context)


async def run_plot_gyro(
    profile: ServerProfile, limits: Limits, options: PlotOptions, *, workers: int | None = None
) -> PlotRun:
    """One figure per viewing of one participant (saved in parallel processes, or kept for
    windows); prints nothing: the summary's details hold each viewing's accelerometer line."""
    began = clock.monotonic()
    summary = Summary(command="download-plot-gyro-sequence")
    summary.counts["results"] = 0  # first in the summary line, before "skipped"
    run = PlotRun(summary)
    _one_participant(options.source.selection)
    if options.fmt not in plots.FORMATS:
        raise UsageError(f"unknown --format {options.fmt!r}", hint="png, pdf or svg")
    if not options.interactive:
        await asyncio.to_thread(check_output_dir, options.output_dir)
    workers = max(1, workers if workers is not None else limits.plot_processes)
    feed = _Feed(2 * workers)
    lines: list[dict[str, Any]] = []
    thumbs: list[tuple[str, bytes]] = []
    drawn: list[str] = []
    loop = asyncio.get_running_loop()

    async def produce() -> None:
        try:
            await _produce(profile, limits, options.source, feed, summary)
        finally:
            await feed.queue.put(None)

    async def consume() -> None:
        pending: set[asyncio.Future[plots.Drawn]] = set()

        def collect(done: set[asyncio.Future[plots.Drawn]]) -> None:
            for task in done:
                result = task.result()
                drawn.append(result.path)

        try:
            with _pool(workers) as pool:
                while (data := await feed.queue.get()) is not None:
                    if data.problem is not None:
                        summary.count("skipped")
                        summary.warnings.append(f"{data.label} skipped: {data.problem}")
                        continue
                    lines.append(
                        {
                            "viewing": data.label,
                            "acc": data.stats.line() if data.stats else "acc: too few samples",
                        }
                    )
                    if options.interactive:
                        run.viewings.append(data)
                        continue
                    path = options.output_dir / data.file_name(options.fmt)
                    future = loop.run_in_executor(pool, plots.render, data, path, options.fmt)
                    label = data.label

                    def keep_thumb(f: asyncio.Future[plots.Drawn], label: str = label) -> None:
                        if not f.cancelled() and f.exception() is None:
                            thumbs.append((label, f.result().thumbnail))

                    future.add_done_callback(keep_thumb)
                    pending.add(future)
                    if len(pending) >= 2 * workers:
                        done, pending = await asyncio.wait(
                            pending, return_when=asyncio.FIRST_COMPLETED
                        )
                        collect(done)
                if pending:
                    done, _ = await asyncio.wait(pending)
                    collect(done)
        except BaseException:
            feed.stopped.set()
            raise

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(produce())
            group.create_task(consume())
    except BaseExceptionGroup as exc:
        raise first_error(exc) from None
    # the server answers in upload order (late uploads last): show them by date
    lines.sort(key=lambda line: line["viewing"])
    run.viewings.sort(key=lambda v: (v.when is None, v.when or datetime.min))
    summary.count("viewings", len(lines))
    summary.details["viewings"] = lines
    if not lines:
        _nothing(summary, options.source, "viewings with sensor data")
    summary.count("figures", len(drawn))
    summary.files.extend(sorted(drawn))
    if options.contact_sheet and thumbs and not options.interactive:
        ext = options.source.selection.participants[0].external_id  # type: ignore[index]
        sheet = options.output_dir / f"{ext}_contact_sheet.png"
        thumbs.sort()
        await asyncio.to_thread(
            plots.contact_sheet, thumbs, sheet, f"{ext[:12]}: {len(thumbs)} viewings"
        )
        summary.files.append(str(sheet))
    summary.elapsed_s = clock.monotonic() - began
    return run
