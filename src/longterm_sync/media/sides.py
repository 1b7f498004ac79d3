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
import contextlib
import hashlib
import os
import posixpath
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import asyncssh

from ..atomic import atomic_writer, fsync_dir, local_io_error, write_bytes_atomic
from ..errors import FileFailed, UsageError
from ..summary import Summary
from .local import HASH_CHUNK, md5_file, walk_local
from .md5cache import Md5Cache
from .meter import Meter
from .names import SIDECAR_SUFFIX, UnsafeNameError, local_path
from .remote import FileInfo, SftpRemote, Tree
from .sftp import SftpPool
from .transfer import download, upload


@dataclass(frozen=True)
class Copied:
    """A verified copy: its md5, and the new file as the side holding it lists it."""

    md5: str
    info: FileInfo


class Side(Protocol):
    """A tree of files with sizes and md5s (see the module docstring)."""

    name: str

    async def walk(self) -> Tree: ...

    async def stat(self, rel: str) -> FileInfo | None: ...

    async def md5(self, rel: str) -> str | None: ...

    async def put(
        self,
        rel: str,
        source: Path | Side,
        md5: str | None = None,
        *,
        progress: Meter | None = None,
    ) -> Copied: ...


def _listed(tree: Tree | None, rel: str) -> FileInfo | None:
    return tree.files.get(rel) if tree is not None else None


class LocalSide:
    """A local folder of videos (hidden files, partials and symlinks are not part of it).

    With a ``cache`` (:class:`.md5cache.Md5Cache`), ``md5`` of a file unchanged since it was
    last hashed (same size and mtime_ns as this side's last walk lists) is not read again:
    a mirror's no-change run costs one listing. A copy into this side is written under a
    partial name, hashed while written, fsynced, and renamed only once its md5 is the
    source's, with its ``.md5sum`` sidecar beside it; ``.partial`` files found by the last
    walk are resumed.
    """

    def __init__(self, root: Path, name: str | None = None, *, cache: Md5Cache | None = None):
        self.root = root
        self.name = name or str(root)
        self.cache = cache
        self.listed: Tree | None = None  # the last walk: file keys for the cache, partials
        self._resolved: dict[str, Path] = {}

    def __repr__(self) -> str:
        return f"LocalSide({self.root})"

    def path(self, rel: str) -> Path:
        """Where ``rel`` lives; :class:`.names.UnsafeNameError` for a name that may not
        become a path below the root (a hostile listing, a symlinked folder)."""
        found = self._resolved.get(rel)
        return found if found is not None else local_path(self.root, rel)

    def resolve(self, rels: list[str]) -> dict[str, Path | str]:
        """Blocking: each file's path, or why it may not be written (see names.py). The
        paths are kept, so that copies into this side do not resolve them again on the
        event loop (it takes a few system calls per file)."""
        out: dict[str, Path | str] = {}
        for rel in rels:
            try:
                out[rel] = self._resolved[rel] = local_path(self.root, rel)
            except UnsafeNameError as exc:
                out[rel] = str(exc)
        return out

    def _known(self, rel: str) -> Path:
        """A file this side listed itself: its path is safe without resolving it again."""
        if _listed(self.listed, rel) is not None:
            return self.root.joinpath(*rel.split("/"))
        return self.path(rel)

    async def walk(self) -> Tree:
        self.listed = await asyncio.to_thread(walk_local, self.root)
        return self.listed

    async def stat(self, rel: str) -> FileInfo | None:
        try:
            st = await asyncio.to_thread(self.path(rel).lstat)
        except FileNotFoundError:
            return None
        return FileInfo(rel, st.st_size, int(st.st_mtime), st.st_mtime_ns)

    async def md5(self, rel: str) -> str | None:
        info = _listed(self.listed, rel)
        if info is not None and self.cache is not None:
            cached = self.cache.local_md5(info)
            if cached is not None:
                return cached
        path = self._known(rel)
        try:
            md5 = await asyncio.to_thread(md5_file, path)
        except FileNotFoundError:
            return None
        except OSError as exc:  # unreadable: that file fails, not the whole comparison
            raise FileFailed(f"cannot read {path}: {exc.strerror or exc}") from None
        if info is not None and self.cache is not None:
            self.cache.set_local(info, md5)
        return md5

    async def put(
        self,
        rel: str,
        source: Path | Side,
        md5: str | None = None,
        *,
        progress: Meter | None = None,
        resume: int | None = None,
    ) -> Copied:
        """A verified copy of ``source`` (a local file, or ``rel`` of another side) as
        ``rel``. From the server the md5 is its sidecar, read while the bytes come, and a
        partial left by an interrupted copy is resumed (``resume``: its size, by default
        as the last walk found it)."""
        if isinstance(source, SftpSide):
            return await self._download(
                rel, source, progress if progress is not None else Meter(), resume
            )
        if isinstance(source, LocalSide):
            return await self._copy_from(rel, source, md5)
        return await self._copy(rel, _file_of(source, rel), md5)

    async def _download(
        self, rel: str, server: SftpSide, progress: Meter, resume: int | None
    ) -> Copied:
        if resume is None:
            resume = self.listed.partials.get(rel, 0) if self.listed is not None else 0
        return await server.fetch(rel, self.path(rel), progress, resume)

    async def _copy_from(self, rel: str, other: LocalSide, md5: str | None) -> Copied:
        return await self._copy(rel, other._known(rel), md5 or await other.md5(rel))

    async def _copy(self, rel: str, file: Path, md5: str | None) -> Copied:
        if md5 is None:
            raise UsageError(f"{self.name} cannot copy {rel} without the md5 to verify it by")
        st = await asyncio.to_thread(_copy_verified, file, self.path(rel), md5)
        return Copied(md5, FileInfo(rel, st.st_size, int(st.st_mtime), st.st_mtime_ns))

    def write_sidecar(self, rel: str, md5: str) -> None:
        """Blocking: ``<rel>.md5sum`` (md5sum's format) beside a file this side listed."""
        final = self._known(rel)
        write_bytes_atomic(final.with_name(final.name + SIDECAR_SUFFIX), f"{md5}\n".encode())

    def remove(self, rel: str) -> None:
        """Blocking: delete a listed file and its sidecar (a mirror's ``--delete``)."""
        path = self._known(rel)
        for victim in (path, path.with_name(path.name + SIDECAR_SUFFIX)):
            with contextlib.suppress(FileNotFoundError):
                try:
                    victim.unlink()
                except OSError as exc:
                    raise local_io_error(exc, victim) from exc

    def keep(self, rel: str, origin: LocalSide) -> None:
        """Blocking: move ``rel`` of ``origin`` (and its sidecar) to ``rel`` here, on the
        same disk (``rsync --backup-dir``: the old copy of a changed video is kept)."""
        final, target = origin._known(rel), self.root.joinpath(*rel.split("/"))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            final.replace(target)
            side = final.with_name(final.name + SIDECAR_SUFFIX)
            if side.exists():
                side.replace(target.with_name(target.name + SIDECAR_SUFFIX))
        except OSError as exc:
            raise local_io_error(exc, target) from exc
        fsync_dir(target.parent)
        fsync_dir(final.parent)


def _file_of(source: Path | Side, rel: str) -> Path:
    """The local file a copy reads: ``source`` itself, or ``rel`` of a local side."""
    if isinstance(source, LocalSide):
        return source._known(rel)
    if isinstance(source, Path):
        return source
    raise UsageError(f"no copy of {rel} from {source!r} to here: only from local files")


def _copy_verified(source: Path, target: Path, md5: str) -> os.stat_result:
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
    return target.stat()


class SftpSide:
    """The media folder on the server, over an open :class:`SftpPool`; its md5s are the
    platform's ``.md5sum`` sidecars."""

    def __init__(self, pool: SftpPool, root: str, *, verify: str = "md5") -> None:
        self.remote = SftpRemote(pool, root, concurrency=pool.limits.checkers)
        self.pool, self.verify = pool, verify
        self.name = f"{pool.profile.ssh_host}:{self.remote.root}"
        self.listed: Tree | None = None  # the last walk: what a copy from here expects

    def __repr__(self) -> str:
        return f"SftpSide({self.name})"

    async def exists(self) -> bool:
        return await self.remote.exists()

    async def walk(self) -> Tree:
        self.listed = await self.remote.walk()
        return self.listed

    async def stat(self, rel: str) -> FileInfo | None:
        try:
            attrs = await self.pool.sftp.stat(self.remote.path(rel))
        except asyncssh.SFTPNoSuchFile:
            return None
        return FileInfo(rel, int(attrs.size or 0), int(attrs.mtime or 0))

    async def md5(self, rel: str) -> str | None:
        return await self.remote.read_sidecar(rel)

    async def fetch(self, rel: str, target: Path, progress: Meter, resume: int = 0) -> Copied:
        """Download ``rel`` to the local ``target`` (:func:`.transfer.download`: pipelined
        reads, md5 while writing, the sidecar read meanwhile, tmp + fsync + rename)."""
        video = _listed(self.listed, rel) or await self.stat(rel)
        if video is None:
            raise FileFailed("it vanished from the server")
        landed = await download(
            self.pool, self.remote.path(rel), video, self.md5(rel), target, progress, resume
        )
        st = landed.stat
        assert st is not None
        return Copied(landed.md5, FileInfo(rel, st.st_size, int(st.st_mtime), st.st_mtime_ns))

    async def put(
        self,
        rel: str,
        source: Path | Side,
        md5: str | None = None,
        *,
        progress: Meter | None = None,
    ) -> Copied:
        file = _file_of(source, rel)
        st = await asyncio.to_thread(file.stat)
        info = FileInfo(rel, st.st_size, int(st.st_mtime), st.st_mtime_ns)
        folder = posixpath.dirname(self.remote.path(rel))
        if folder:
            await self.pool.sftp.makedirs(folder, exist_ok=True)
        video, _, sent = await upload(
            self.pool,
            file,
            self.remote.path(rel),
            info,
            md5,
            self.verify,
            progress if progress is not None else Meter(),
        )
        return Copied(sent, video)


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

    async def put(self, rel: str, *args: object, **kwargs: object) -> Copied:
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
