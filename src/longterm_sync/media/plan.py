"""Decide, file by file, what a transfer must do, by one fixed ladder, with a reason each.

The ladder (rclone's ``operations.equal``): missing on the target, then size differs, then
md5 differs (the remote sidecar against the local md5 from the cache). The md5 step reads a
sidecar only when the cache cannot vouch for it (see :mod:`.md5cache`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import FileFailed
from .local import md5_file
from .md5cache import Md5Cache, remote_unchanged
from .remote import FileInfo, Remote, Tree

log = logging.getLogger("longterm_sync.media.plan")

TRANSFER, SKIP, FAIL = "transfer", "skip", "fail"


@dataclass(frozen=True, slots=True)
class Decision:
    rel: str
    action: str  # TRANSFER | SKIP | FAIL
    reason: str
    size: int
    md5: str | None = None  # expected md5 when known (download: sidecar; upload: local)


class Vouching(Protocol):
    """What deciding needs of a side: the md5 it vouches for (a storage side)."""

    async def md5(self, rel: str) -> str | None: ...


async def local_md5(root: Path, info: FileInfo, cache: Md5Cache) -> str:
    md5 = cache.local_md5(info)
    if md5 is None:
        md5 = await asyncio.to_thread(md5_file, root.joinpath(*info.rel.split("/")))
        cache.set_local(info, md5)
    return md5


def _logged(decisions: list[Decision], direction: str) -> list[Decision]:
    """Each decision with its reason at debug level (-vv), and one line of totals by
    reason at info level, so that 2000 files do not mean 2000 lines by default."""
    totals: Counter[str] = Counter()
    for d in decisions:
        log.debug("%s %s: %s", d.action, d.rel, d.reason)
        totals[f"{d.action}: {d.reason.split(' (')[0]}"] += 1
    if totals:
        parts = ", ".join(f"{n} {what}" for what, n in sorted(totals.items()))
        log.info("%s plan: %s", direction, parts)
    return decisions


async def decide_download(
    source: Vouching, rtree: Tree, dest: Vouching, ltree: Tree, cache: Md5Cache, checkers: int
) -> list[Decision]:
    """What a mirror from ``source`` (listed as ``rtree``) into ``dest`` (``ltree``) must
    do; ``dest.md5`` is expected to answer from ``cache`` when it can (a LocalSide does)."""
    sem = asyncio.Semaphore(max(1, checkers))

    async def one(video: FileInfo) -> Decision:
        rel = video.rel
        sidecar = rtree.sidecars.get(rel)
        if sidecar is None:
            return Decision(
                rel,
                FAIL,
                "no .md5sum beside it on the server: cannot be verified, not downloaded",
                video.size,
            )
        have = ltree.files.get(rel)
        if have is None:
            return Decision(rel, TRANSFER, "missing locally", video.size)
        if have.size != video.size:
            return Decision(
                rel, TRANSFER, f"size differs (local {have.size}, server {video.size})", video.size
            )
        async with sem:
            try:
                mine = await dest.md5(rel)
            except FileFailed as exc:
                return Decision(rel, FAIL, str(exc), video.size)
        if mine is None:
            return Decision(rel, TRANSFER, "missing locally", video.size)
        verdict, detail = await _sidecar_verdict(source.md5, video, sidecar, mine, cache, sem)
        if verdict in (UNCHANGED, MATCHES):
            return Decision(rel, SKIP, verdict, video.size, mine)
        if verdict == DIFFERS:
            return Decision(
                rel, TRANSFER, f"md5 differs (local {mine}, server {detail})", video.size, detail
            )
        return Decision(rel, FAIL, detail, video.size)

    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(one(v)) for v in sorted(rtree.files.values(), key=_order)]
    return _logged([t.result() for t in tasks], "download")


async def decide_upload(
    local_root: Path,
    ltree: Tree,
    remote: Remote,
    rtree: Tree,
    cache: Md5Cache,
    checkers: int,
    *,
    lazy: bool = False,
) -> list[Decision]:
    """``lazy``: a file that must be sent anyway (missing, other size) is not hashed here
    unless cached; the upload hashes it while reading it (Decision.md5 None)."""
    sem = asyncio.Semaphore(max(1, checkers))

    async def one(mine_info: FileInfo) -> Decision:
        rel = mine_info.rel
        theirs_info = rtree.files.get(rel)
        if theirs_info is None or theirs_info.size != mine_info.size:
            if lazy:
                mine: str | None = cache.local_md5(mine_info)
            else:
                async with sem:
                    mine = await local_md5(local_root, mine_info, cache)
            reason = (
                "missing on the server"
                if theirs_info is None
                else f"size differs (local {mine_info.size}, server {theirs_info.size})"
            )
            return Decision(rel, TRANSFER, reason, mine_info.size, mine)
        async with sem:
            mine = await local_md5(local_root, mine_info, cache)
        sidecar = rtree.sidecars.get(rel)
        if sidecar is None:
            return Decision(
                rel, TRANSFER, "no .md5sum beside it on the server", mine_info.size, mine
            )
        verdict, detail = await _sidecar_verdict(
            remote.read_sidecar, theirs_info, sidecar, mine, cache, sem
        )
        if verdict in (UNCHANGED, MATCHES):
            return Decision(rel, SKIP, verdict, mine_info.size, mine)
        if verdict == DIFFERS:
            detail = f"md5 differs (local {mine}, server {detail})"
        else:
            detail = f"{detail}; sending it again"
        return Decision(rel, TRANSFER, detail, mine_info.size, mine)

    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(one(v)) for v in sorted(ltree.files.values(), key=_order)]
    return _logged([t.result() for t in tasks], "upload")


UNCHANGED = "unchanged (size, mtime, md5 as last verified)"
MATCHES = "md5 matches"
DIFFERS = "md5 differs"


async def _sidecar_verdict(
    theirs_md5: Callable[[str], Awaitable[str | None]],
    video: FileInfo,
    sidecar: FileInfo,
    mine: str,
    cache: Md5Cache,
    sem: asyncio.Semaphore,
) -> tuple[str, str]:
    """The md5 rung of the ladder, shared by both directions.

    Returns (UNCHANGED | MATCHES, mine), (DIFFERS, the server's md5) or ("", why the
    sidecar could not be used). The sidecar is read only when the cache cannot vouch."""
    if remote_unchanged(cache.remote_state(video.rel), video, sidecar, mine):
        return UNCHANGED, mine
    async with sem:
        try:
            theirs = await theirs_md5(video.rel)
        except FileFailed as exc:
            return "", str(exc)
    if theirs is None:
        return "", "its .md5sum vanished from the server"
    if theirs != mine:
        return DIFFERS, theirs
    cache.set_remote(video.rel, video, sidecar, mine)
    return MATCHES, mine


def _order(info: FileInfo) -> str:
    return info.rel
