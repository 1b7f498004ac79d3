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
from ..errors import FileFailed, UsageError
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
        except OSError as exc:  # unreadable: that file fails, not the whole comparison
            raise FileFailed(f"cannot read {path}: {exc.strerror or exc}") from None

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


class RecordedSide:
    """Files as a record says they were when stored (the backup's snapshot store: its
    ``media_files/`` videos and its kept old versions), sizes and md5s included. Comparing a
    folder with it is verifying the folder against what was recorded; nothing is read from
    disk. Read-only: a record is written by the run that stores the bytes, with them."""

    def __init__(self, name: str, files: dict[str, tuple[int, str]]) -> None:
        self.name = name
        self.files = files  # rel -> (size, md5)

    def __repr__(self) -> str:
        return f"RecordedSide({self.name}, {len(self.files)} files)"

    async def walk(self) -> Tree:
        tree = Tree()
        for rel, (size, _) in self.files.items():
            tree.files[rel] = FileInfo(rel, size, 0)
        return tree

    async def stat(self, rel: str) -> FileInfo | None:
        found = self.files.get(rel)
        return None if found is None else FileInfo(rel, found[0], 0)

    async def md5(self, rel: str) -> str | None:
        found = self.files.get(rel)
        return None if found is None else found[1]

    async def put(self, rel: str, source: Path, md5: str) -> None:
        raise UsageError(f"{self.name} is a record: it is written with the bytes it describes")


@dataclass(frozen=True)
class Mismatch:
    """How one file differs between the two sides: ``what`` is ``size`` or ``md5`` (``a``
    and ``b`` each side's value), ``no md5`` (``a`` or ``b`` None: that side vouches for
    none) or ``unreadable`` (``reason`` says why)."""

    what: str
    a: int | str | None = None
    b: int | str | None = None
    reason: str = ""

    def describe(self, a_name: str, b_name: str) -> str:
        if self.what in ("size", "md5"):
            return f"{self.what} {self.b} in {b_name}, {self.a} in {a_name}"
        if self.what == "no md5":
            return f"no md5 in {a_name if self.a is None else b_name}"
        return self.reason


@dataclass
class Comparison:
    """What :func:`check` found, by relative path."""

    same: list[str] = field(default_factory=list)
    mismatches: dict[str, Mismatch] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # in a, not in b
    extra: list[str] = field(default_factory=list)  # in b, not in a
    a_name: str = "a"
    b_name: str = "b"

    @property
    def different(self) -> dict[str, str]:
        """rel -> why, in one line naming the sides."""
        return {
            rel: m.describe(self.a_name, self.b_name) for rel, m in sorted(self.mismatches.items())
        }

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.missing


async def check(a: Side, b: Side, *, md5: bool = True, concurrency: int = 8) -> Comparison:
    """Compare side ``b`` with side ``a``: every video of ``a`` must be in ``b`` with the
    same size and (``md5``) the same md5. Videos only in ``b`` are listed, not wrong.
    ``concurrency`` bounds the md5s asked at once (a local side hashes: disk and CPU)."""
    tree_a, tree_b = await asyncio.gather(a.walk(), b.walk())
    out = Comparison(a_name=a.name, b_name=b.name)
    out.extra = sorted(set(tree_b.files) - set(tree_a.files))
    gate = asyncio.Semaphore(concurrency)

    async def one(rel: str) -> None:
        fa, fb = tree_a.files[rel], tree_b.files.get(rel)
        if fb is None:
            out.missing.append(rel)
            return
        if fa.size != fb.size:
            out.mismatches[rel] = Mismatch("size", fa.size, fb.size)
            return
        if not md5:
            out.same.append(rel)
            return
        async with gate:
            try:
                ha, hb = await a.md5(rel), await b.md5(rel)
            except FileFailed as exc:
                out.mismatches[rel] = Mismatch("unreadable", reason=str(exc))
                return
        if ha is None or hb is None:
            out.mismatches[rel] = Mismatch("no md5", ha, hb)
        elif ha != hb:
            out.mismatches[rel] = Mismatch("md5", ha, hb)
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
    for rel, why in result.different.items():
        summary.fail(rel, why)
    if result.extra:
        summary.count("only in the second", len(result.extra))
    return summary
