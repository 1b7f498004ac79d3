"""The two media jobs: mirror the server's video folder down, push a local folder up.

Each is walk (both sides, concurrently), decide (:mod:`.plan`), act (bounded transfers),
and returns a Summary: transferred, skipped with reason counts, verified, failed.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
import time
from pathlib import Path
from typing import Any

from ..atomic import local_io_error, write_bytes_atomic
from ..config import Limits, ServerProfile
from ..errors import InputFileError, LocalIOError, RemoteError, UsageError
from ..events import Reporter
from ..summary import Summary
from .local import walk_local_async
from .md5cache import Md5Cache
from .meter import JOB, Meter
from .names import SIDECAR_SUFFIX
from .plan import FAIL, SKIP, TRANSFER, Decision, decide_download, decide_upload
from .remote import FileInfo, SftpRemote, Tree, parse_md5
from .sftp import (
    CONNECTION_LOST,
    FileFailed,
    SftpPool,
    connection_lost,
    describe,
    sftp_error_text,
)
from .sides import LocalSide, SftpSide, Side
from .tarbatch import BATCHED_FILES
from .transfer import upload
from .worker import run_worker

log = logging.getLogger("longterm_sync.media")

VERIFY_MODES = ("md5", "size", "full")


def server_id(profile: ServerProfile) -> str:
    return f"{describe(profile)}/{profile.media_dir}"


def _skip_reason(reason: str) -> str:
    return "skipped (unchanged)" if reason.startswith("unchanged") else "skipped (md5 matches)"


async def _save(cache: Md5Cache) -> None:
    try:
        await asyncio.to_thread(cache.save)
    except LocalIOError as exc:
        log.warning("could not save the md5 cache: %s", exc)


def _count_sidecars(summary: Summary, wrote: int, dry_run: bool) -> None:
    if wrote:
        summary.count("local .md5sum to write" if dry_run else "local .md5sum written", wrote)


def _phase(what: str, started: float) -> None:
    log.debug("%s after %.2f s", what, time.monotonic() - started)


def _workers(limits: Limits) -> int:
    # As many as can transfer at once (small files have a larger allowance, see
    # SftpPool.transfer; batched ones tarbatch.BATCHED_FILES) plus a few, so the next
    # files' sidecars are read meanwhile.
    return max(limits.sftp_connections * limits.small_allowance(), BATCHED_FILES) + 2


async def mirror_down(
    profile: ServerProfile,
    limits: Limits,
    dest: Path,
    *,
    delete: bool = False,
    accept_new_host_key: bool = False,
    reporter: Reporter | None = None,
    versions_dir: Path | None = None,
) -> Summary:
    """Make ``dest`` a verified copy of the server's media folder (:func:`mirror` from its
    :class:`.sides.SftpSide` into a :class:`.sides.LocalSide` of ``dest``, whose md5 cache
    is ``dest``'s own); local extras stay unless ``delete``; ``versions_dir``: see mirror.
    """
    started = time.monotonic()
    try:
        await asyncio.to_thread(dest.mkdir, parents=True, exist_ok=True)
    except OSError as exc:
        raise local_io_error(exc, dest) from exc
    cache = await asyncio.to_thread(Md5Cache, dest, server_id(profile))
    local = LocalSide(dest, cache=cache)
    versions = LocalSide(versions_dir) if versions_dir is not None else None
    try:
        async with SftpPool(profile, limits, accept_new_host_key=accept_new_host_key) as pool:
            server = SftpSide(pool, profile.media_dir)
            if not await server.exists():
                raise RemoteError(
                    f"{profile.media_dir} does not exist on {describe(profile)}",
                    hint="check media_dir in the server's profile",
                )
            summary = await mirror(
                server, local, limits, delete=delete, reporter=reporter, versions=versions
            )
    except* CONNECTION_LOST as group:
        raise connection_lost(profile, group.exceptions[0]) from None
    except* (RemoteError, LocalIOError, UsageError) as group:
        raise group.exceptions[0] from None
    summary.elapsed_s = time.monotonic() - started
    return summary


async def mirror(
    source: Side,
    dest: LocalSide,
    limits: Limits,
    *,
    delete: bool = False,
    reporter: Reporter | None = None,
    versions: LocalSide | None = None,
) -> Summary:
    """Make side ``dest`` a verified copy of side ``source``, through the side protocol:
    walk both, decide each file (:mod:`.plan`: size, then md5 as each side vouches for it),
    ``dest.put`` each copy (verified: md5 while writing, tmp + fsync + rename). From the
    server, a share of the files goes to helper processes (``Limits.sftp_processes``).

    With ``versions``, a video of ``dest`` about to be replaced by a changed one is first
    moved there, same relative path, with its sidecar (``rsync --backup --backup-dir``):
    the backup never overwrites what it holds. ``details["versions"]`` lists what was
    moved, ``details["gone"]`` the videos ``source`` no longer has, ``details["md5"]`` the
    md5 of every video ``dest`` now holds as verified.
    """
    started = time.monotonic()
    summary = Summary(command=JOB)
    cache = dest.cache
    if cache is None:
        cache = dest.cache = await asyncio.to_thread(Md5Cache, dest.root, source.name)
    progress = Meter(reporter)
    hashes: dict[str, str] = {}
    try:
        rtree, ltree = await asyncio.gather(source.walk(), dest.walk())
        _phase("listed both sides", started)
        for name, why in rtree.refused:
            summary.count("refused")
            summary.fail(name, f"refused from the server listing: {why}")
        decisions = await decide_download(source, rtree, dest, ltree, cache, limits.checkers)
        wanted = [d.rel for d in decisions if d.action == TRANSFER]
        finals = await asyncio.to_thread(dest.resolve, wanted)
        todo: list[Decision] = []
        for d in decisions:
            if d.action == FAIL:
                summary.count("failed")
                summary.fail(d.rel, d.reason)
            elif d.action == SKIP:  # found by walking dest itself: the path is safe
                summary.count(_skip_reason(d.reason))
                if d.md5:
                    hashes[d.rel] = d.md5
                    if d.rel not in ltree.sidecars:
                        await asyncio.to_thread(dest.write_sidecar, d.rel, d.md5)
            elif isinstance(target := finals[d.rel], str):
                summary.count("refused")
                summary.fail(d.rel, f"refused: {target}")
            else:
                todo.append(d)
        if versions is not None:
            replaced = [d.rel for d in todo if d.rel in ltree.files]
            moved = await asyncio.to_thread(_keep_versions, dest, versions, replaced)
            if moved:
                summary.count("old versions kept", len(moved))
                summary.details["versions"] = moved
        progress.plan(len(todo), sum(d.size for d in todo))
        sem = asyncio.Semaphore(_workers(limits))

        def landed_ok(rel: str, md5: str, mine: FileInfo) -> None:
            cache.set_local(mine, md5)
            cache.set_remote(rel, rtree.files[rel], rtree.sidecars[rel], md5)
            hashes[rel] = md5
            summary.count("downloaded")
            summary.bytes += rtree.files[rel].size
            progress.finish(rel)

        def failed(rel: str, reason: str) -> None:
            summary.count("failed")
            summary.fail(rel, reason)
            progress.fail(rel, reason)

        def on_worker_event(ev: dict[str, Any]) -> None:
            if "progress" in ev:
                progress.advance(int(ev["progress"]))
            elif "resumed" in ev:
                progress.resumed_bytes += int(ev["resumed"])
            elif "done" in ev:
                rel = str(ev["done"])
                mine = FileInfo(rel, ev["size"], ev["mtime"], ev["mtime_ns"])
                landed_ok(rel, str(ev["md5"]), mine)
            elif "failed" in ev:
                failed(str(ev["failed"]), str(ev["reason"]))

        async def fetch(d: Decision) -> None:
            async with sem:
                try:
                    copied = await dest.put(d.rel, source, progress=progress)
                except FileFailed as exc:
                    failed(d.rel, str(exc))
                    return
                landed_ok(d.rel, copied.md5, copied.info)

        # Helper processes read the server with their own connections (see worker.py).
        helpers = limits.sftp_processes if isinstance(source, SftpSide) else 1
        shares = split_work([(d.rel, d.size) for d in todo], helpers)
        mine_now = set(shares[0])
        async with asyncio.TaskGroup() as tg:
            for share in shares[1:]:
                assert isinstance(source, SftpSide)
                files = [rtree.files[rel] for rel in share]
                partials = {rel: ltree.partials.get(rel, 0) for rel in share}
                tg.create_task(
                    run_worker(
                        source.pool.profile, limits, dest.root, files, partials, on_worker_event
                    )
                )
            for d in todo:
                if d.rel in mine_now:
                    tg.create_task(fetch(d))
        if len(shares) > 1:
            summary.details["processes"] = len(shares)
        await asyncio.to_thread(_local_only, summary, dest, rtree, ltree, delete)
    except* (RemoteError, LocalIOError, UsageError) as group:
        raise group.exceptions[0] from None
    finally:
        await asyncio.to_thread(cache.prune_missing, dest.root, set(hashes))
        await _save(cache)
    summary.details["md5"] = dict(sorted(hashes.items()))
    if progress.resumed_bytes:
        summary.details["resumed_bytes"] = progress.resumed_bytes
    summary.elapsed_s = time.monotonic() - started
    return summary


SPLIT_MIN_BYTES = 64 << 20
"""Below this much to download, a helper process costs more than it saves (start-up,
imports, a second SSH login: about half a second)."""
FILE_COST = 1 << 20
"""Per-file overhead in bytes-equivalent when balancing shares (open, sidecar, fsync)."""


def split_work(items: list[tuple[str, int]], processes: int) -> list[list[str]]:
    """Balance files (rel, size) over ``processes`` shares; share 0 stays in this process.

    Greedy by cost, largest first, each file to the lightest share."""
    total = sum(size for _, size in items)
    if processes <= 1 or len(items) < 2 or total < SPLIT_MIN_BYTES:
        return [[rel for rel, _ in items]]
    shares: list[list[str]] = [[] for _ in range(min(processes, len(items)))]
    loads = [0] * len(shares)
    for rel, size in sorted(items, key=lambda item: -item[1]):
        i = loads.index(min(loads))
        shares[i].append(rel)
        loads[i] += size + FILE_COST
    return shares


def _write_sidecar(final: Path, md5: str) -> None:
    write_bytes_atomic(final.with_name(final.name + SIDECAR_SUFFIX), f"{md5}\n".encode())


def refused_cover(rel: str, refused: list[tuple[str, str]]) -> bool:
    """Whether ``rel`` is, or lies below, an entry this run refused on the server (a symlink,
    a bad name, an unreadable folder): such a file is not known to be gone."""
    for name, _ in refused:
        base = name.rstrip("/")
        if rel == base or rel.startswith(base + "/"):
            return True
    return False


def _local_only(summary: Summary, dest: LocalSide, rtree: Tree, ltree: Tree, delete: bool) -> None:
    extra = sorted(rel for rel in ltree.files if rel not in rtree.files)
    if delete:
        shielded = [rel for rel in extra if refused_cover(rel, rtree.refused)]
        if shielded:
            summary.count("kept (refused on the server, not known to be gone)", len(shielded))
            extra = [rel for rel in extra if rel not in set(shielded)]
    if not extra:
        return
    summary.details["gone"] = extra
    if not delete:
        summary.count("kept (gone from the server)", len(extra))
        return
    if any(name.endswith("/") for name, _ in rtree.refused):
        summary.warnings.append("--delete skipped: part of the server's folder could not be listed")
        return
    for rel in extra:
        dest.remove(rel)
        log.info("deleted %s: gone from the server", rel)
        summary.count("deleted")


def _keep_versions(dest: LocalSide, versions: LocalSide, rels: list[str]) -> list[str]:
    """Move each file of ``dest`` about to be replaced (and its sidecar) into ``versions``."""
    for rel in rels:
        versions.keep(rel, dest)
        log.info("kept the old %s as %s: it changed on the server", rel, versions.root / rel)
    return rels


# ---------------------------------------------------------------------------- push up


async def _local_sidecars(
    src: Path, ltree: Tree, md5s: dict[str, str], dry_run: bool, threads: int
) -> int:
    """Write ``<video>.md5sum`` beside every local video whose sidecar is missing or stale
    (the spec's local sidecars); fsync-bound, so spread over ``threads`` threads."""
    items = list(md5s.items())
    step = max(1, -(-len(items) // max(1, threads)))
    chunks = [items[i : i + step] for i in range(0, len(items), step)]
    counts = await asyncio.gather(
        *(asyncio.to_thread(_sync_local_sidecars, src, ltree, c, dry_run) for c in chunks)
    )
    return sum(counts)


def _sync_local_sidecars(
    src: Path, ltree: Tree, items: list[tuple[str, str]], dry_run: bool
) -> int:
    written = 0
    for rel, md5 in items:
        path = src.joinpath(*rel.split("/"))
        side = path.with_name(path.name + SIDECAR_SUFFIX)
        if rel in ltree.sidecars:
            try:
                if parse_md5(side.read_bytes()) == md5:
                    continue
            except OSError:
                pass
        if not dry_run:
            write_bytes_atomic(side, f"{md5}\n".encode())
        written += 1
    return written


async def push_up(
    profile: ServerProfile,
    limits: Limits,
    src: Path,
    *,
    verify: str = "md5",
    dry_run: bool = False,
    accept_new_host_key: bool = False,
    reporter: Reporter | None = None,
) -> Summary:
    """Upload every video under ``src`` whose server copy is missing or differs."""
    if verify not in VERIFY_MODES:
        raise UsageError(f"--verify must be one of {', '.join(VERIFY_MODES)}, got {verify!r}")
    started = time.monotonic()
    summary = Summary(command=JOB)
    if not await asyncio.to_thread(src.is_dir):
        raise InputFileError(f"video folder {src} does not exist or is not a folder")
    # The local walk and the md5 cache are read while the connection is set up and the
    # server's tree listed: a no-change re-upload is those three and nothing else.
    local = asyncio.ensure_future(
        asyncio.gather(walk_local_async(src), asyncio.to_thread(Md5Cache, src, server_id(profile)))
    )
    cache: Md5Cache | None = None
    progress = Meter(reporter)
    plan: list[dict[str, str]] = []
    sidecars: asyncio.Future[int] | None = None
    # The server's window, not ours, bounds an upload's bytes in flight per connection.
    conns = limits.sftp_connections if dry_run else limits.upload_connections()
    try:
        async with SftpPool(
            profile, limits, accept_new_host_key=accept_new_host_key, connections=conns
        ) as pool:
            remote = SftpRemote(pool, profile.media_dir, concurrency=limits.checkers)
            exists = await remote.exists()
            rtree = await remote.walk() if exists else Tree()
            ltree, cache = await local
            for name, why in ltree.refused:
                summary.count("not sent")
                summary.warnings.append(f"{name}: {why}; not sent")
            _phase("listed both sides", started)
            decisions = await decide_upload(
                src, ltree, remote, rtree, cache, limits.checkers, lazy=not dry_run
            )
            _phase("decided", started)
            md5s = {d.rel: d.md5 for d in decisions if d.md5}
            # Local sidecars are written while the uploads run: they do not depend on them.
            sidecars = asyncio.ensure_future(
                _local_sidecars(src, ltree, md5s, dry_run, limits.checkers)
            )
            todo = [d for d in decisions if d.action == TRANSFER]
            for d in decisions:
                plan.append({"file": d.rel, "action": d.action, "reason": d.reason})
                if d.action == SKIP:
                    summary.count(_skip_reason(d.reason))
            if dry_run:
                _count_sidecars(summary, await sidecars, dry_run)
                if todo:
                    summary.count("would upload", len(todo))
                    summary.details["would_upload_bytes"] = sum(d.size for d in todo)
                return summary
            await _make_dirs(pool, remote, {posixpath.dirname(d.rel) for d in todo}, rtree)
            progress.plan(len(todo), sum(d.size for d in todo))

            async def send(d: Decision) -> None:
                # No worker bound here: SftpPool.transfer bounds the sending, and a file
                # waiting for its (batched) remote md5sum must not hold a sending slot.
                info = ltree.files[d.rel]
                local = src.joinpath(*d.rel.split("/"))
                try:
                    video, side, md5 = await upload(
                        pool, local, remote.path(d.rel), info, d.md5, verify, progress
                    )
                except FileFailed as exc:
                    summary.count("failed")
                    summary.fail(d.rel, str(exc))
                    progress.fail(d.rel, str(exc))
                    return
                if d.md5 is None:  # hashed while sending: now its local sidecar
                    cache.set_local(info, md5)
                    await asyncio.to_thread(_write_sidecar, local, md5)
                    summary.count("local .md5sum written")
                cache.set_remote(d.rel, video, side, md5)
                summary.count("uploaded")
                summary.bytes += info.size
                progress.finish(d.rel)

            async with asyncio.TaskGroup() as tg:
                for d in todo:
                    tg.create_task(send(d))
            _count_sidecars(summary, await sidecars, dry_run)
            if pool.exec_available is False and verify == "md5":
                summary.warnings.append(
                    "the server allows no md5sum command: uploads were "
                    "verified by size (use --verify=full to read them back)"
                )
    except* CONNECTION_LOST as group:
        raise connection_lost(profile, group.exceptions[0]) from None
    except* (RemoteError, LocalIOError, UsageError) as group:
        raise group.exceptions[0] from None
    finally:
        if sidecars is not None and not sidecars.done():
            await asyncio.gather(sidecars, return_exceptions=True)
        if not local.done():
            local.cancel()
        await asyncio.gather(local, return_exceptions=True)
        if not dry_run and cache is not None:
            await _save(cache)
    summary.details["plan"] = plan
    if progress.resumed_bytes:
        summary.details["resumed_bytes"] = progress.resumed_bytes
    summary.elapsed_s = time.monotonic() - started
    return summary


async def list_remote_videos(
    profile: ServerProfile, limits: Limits, *, accept_new_host_key: bool = False
) -> set[str]:
    """Videos on the server, by their path below the media folder (listing only)."""
    async with SftpPool(profile, limits, accept_new_host_key=accept_new_host_key) as pool:
        remote = SftpRemote(pool, profile.media_dir, concurrency=limits.checkers)
        if not await remote.exists():
            return set()
        return set((await remote.walk()).files)


async def _make_dirs(pool: SftpPool, remote: SftpRemote, rels: set[str], rtree: Tree) -> None:
    needed = sorted(r for r in rels if r and r not in rtree.dirs)
    try:
        if not await remote.exists():
            await pool.sftp.makedirs(remote.root, exist_ok=True)
        for rel in needed:
            await pool.sftp.makedirs(remote.path(rel), exist_ok=True)
    except CONNECTION_LOST as exc:
        raise connection_lost(pool.profile, exc) from exc
    except Exception as exc:
        import asyncssh

        if isinstance(exc, asyncssh.SFTPError):
            raise RemoteError(
                f"cannot create folders under {remote.root} on "
                f"{describe(pool.profile)}: {sftp_error_text(exc)}"
            ) from exc
        raise
