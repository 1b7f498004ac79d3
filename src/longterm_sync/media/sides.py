"""Storage sides: a tree of files with sizes and md5s, wherever it lives.

Every place videos are kept is one :class:`Side`: the media folder on the server
(:class:`SftpSide`), a local folder (:class:`LocalSide`: a mirror, the backup's
``media_files/`` and ``media_versions/``). The protocol is narrow on purpose, only what
comparing and copying need, so that a new kind of destination (a snapshot store, an object
store) is one more class and every tool that takes sides works with it:

- ``walk()``: the tree (videos with size and mtime, their ``.md5sum`` sidecars, refused names);
- ``stat(rel)``: one file's size and mtime, or None;
- ``md5(rel)``: the md5 the side vouches for. A local side hashes the bytes it holds (that is
  what verifying a copy means); the server side reads the sidecar the platform keeps beside
  the video (reading 1 GB back over SSH to hash it is what the sidecar exists to avoid);
- ``put(rel, source, md5)``: a verified copy of a local file under ``rel``: written under a
  temporary name, its md5 checked while writing, and only then renamed into place.

:func:`check` compares any two sides and says, per file, what differs.
"""

from __future__ import annotations

import asyncio
import hashlib
import posixpath
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import asyncssh

from ..atomic import atomic_writer
from ..errors import FileFailed
from ..summary import Summary
from .local import HASH_CHUNK, md5_file, walk_local
from .meter import Meter
from .names import local_path
from .remote import FileInfo, SftpRemote, Tree
from .sftp import SftpPool
from .transfer import upload


class Side(Protocol):
    """A tree of files with sizes and md5s (see the module docstring)."""

    name: str

    async def walk(self) -> Tree: ...

    async def stat(self, rel: str) -> FileInfo | None: ...

    async def md5(self, rel: str) -> str | None: ...

    async def put(self, rel: str, source: Path, md5: str) -> None: ...


class LocalSide:
    """A local folder of videos (hidden files, partials and symlinks are not part of it)."""

    def __init__(self, root: Path, name: str | None = None) -> None:
        self.root = root
        self.name = name or str(root)

    def __repr__(self) -> str:
        return f"LocalSide({self.root})"

    def path(self, rel: str) -> Path:
        return local_path(self.root, rel)

    async def walk(self) -> Tree:
        return await asyncio.to_thread(walk_local, self.root)

    async def stat(self, rel: str) -> FileInfo | None:
        try:
            st = await asyncio.to_thread(self.path(rel).lstat)
        except FileNotFoundError:
            return None
        return FileInfo(rel, st.st_size, int(st.st_mtime), st.st_mtime_ns)

    async def md5(self, rel: str) -> str | None:
        path = self.path(rel)
        try:
            return await asyncio.to_thread(md5_file, path)
        except FileNotFoundError:
            return None

    async def put(self, rel: str, source: Path, md5: str) -> None:
        await asyncio.to_thread(_copy_verified, source, self.path(rel), md5)


def _copy_verified(source: Path, target: Path, md5: str) -> None:
    """Copy, hashing while writing; a copy whose md5 is not ``md5`` never gets its name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.md5()

    class Mismatch(Exception):
        pass

    try:
        with open(source, "rb") as src, atomic_writer(target) as out:
            while chunk := src.read(HASH_CHUNK):
                digest.update(chunk)
                out.write(chunk)
            if digest.hexdigest() != md5:
                raise Mismatch
    except Mismatch:
        raise FileFailed(
            f"copy of {source.name} has md5 {digest.hexdigest()}, expected {md5}"
        ) from None
    shutil.copystat(source, target)


class SftpSide:
    """The media folder on the server, over an open :class:`SftpPool`."""

    def __init__(self, pool: SftpPool, root: str, *, verify: str = "md5") -> None:
        self.remote = SftpRemote(pool, root, concurrency=pool.limits.checkers)
        self.pool, self.verify = pool, verify
        self.name = f"{pool.profile.ssh_host}:{self.remote.root}"

    def __repr__(self) -> str:
        return f"SftpSide({self.name})"

    async def walk(self) -> Tree:
        return await self.remote.walk()

    async def stat(self, rel: str) -> FileInfo | None:
        try:
            attrs = await self.pool.sftp.stat(self.remote.path(rel))
        except asyncssh.SFTPNoSuchFile:
            return None
        return FileInfo(rel, int(attrs.size or 0), int(attrs.mtime or 0))

    async def md5(self, rel: str) -> str | None:
        return await self.remote.read_sidecar(rel)

    async def put(self, rel: str, source: Path, md5: str) -> None:
        st = await asyncio.to_thread(source.stat)
        info = FileInfo(rel, st.st_size, int(st.st_mtime), st.st_mtime_ns)
        folder = posixpath.dirname(self.remote.path(rel))
        if folder:
            await self.pool.sftp.makedirs(folder, exist_ok=True)
        await upload(self.pool, source, self.remote.path(rel), info, md5, self.verify, Meter())


@dataclass
class Comparison:
    """What :func:`check` found, by relative path."""

    same: list[str] = field(default_factory=list)
    different: dict[str, str] = field(default_factory=dict)  # rel -> why
    missing: list[str] = field(default_factory=list)  # in a, not in b
    extra: list[str] = field(default_factory=list)  # in b, not in a

    @property
    def ok(self) -> bool:
        return not self.different and not self.missing


async def check(a: Side, b: Side, *, md5: bool = True, concurrency: int = 8) -> Comparison:
    """Compare side ``b`` with side ``a``: every video of ``a`` must be in ``b`` with the
    same size and (``md5``) the same md5. Videos only in ``b`` are listed, not wrong."""
    tree_a, tree_b = await asyncio.gather(a.walk(), b.walk())
    out = Comparison()
    out.extra = sorted(set(tree_b.files) - set(tree_a.files))
    gate = asyncio.Semaphore(concurrency)

    async def one(rel: str) -> None:
        fa, fb = tree_a.files[rel], tree_b.files.get(rel)
        if fb is None:
            out.missing.append(rel)
            return
        if fa.size != fb.size:
            out.different[rel] = f"size {fb.size} in {b.name}, {fa.size} in {a.name}"
            return
        if not md5:
            out.same.append(rel)
            return
        async with gate:
            try:
                ha, hb = await a.md5(rel), await b.md5(rel)
            except FileFailed as exc:
                out.different[rel] = str(exc)
                return
        if ha is None or hb is None:
            where = a.name if ha is None else b.name
            out.different[rel] = f"no md5 in {where}"
        elif ha != hb:
            out.different[rel] = f"md5 {hb} in {b.name}, {ha} in {a.name}"
        else:
            out.same.append(rel)

    async with asyncio.TaskGroup() as tg:
        for rel in sorted(tree_a.files):
            tg.create_task(one(rel))
    out.same.sort()
    out.missing.sort()
    return out


def comparison_summary(command: str, result: Comparison) -> Summary:
    """A comparison as the summary every command renders (differences are failures)."""
    summary = Summary(command=command)
    summary.count("same", len(result.same))
    for rel in result.missing:
        summary.fail(rel, "missing")
    for rel, why in sorted(result.different.items()):
        summary.fail(rel, why)
    if result.extra:
        summary.count("only in the second", len(result.extra))
    return summary
