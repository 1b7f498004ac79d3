"""The narrow view the engine has of either side: a tree of files with size, mtime, md5.

A video ``a/b.mp4`` and its sidecar ``a/b.mp4.md5sum`` are listed separately: the sidecar's
own size and mtime tell whether a previously verified md5 is still current without reading
it again, which is what makes a no-change run cost one listing.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
import shlex
import stat
from dataclasses import dataclass, field
from typing import Protocol

import asyncssh

from ..config import ServerProfile
from ..errors import FileFailed, RemoteError
from .names import SIDECAR_SUFFIX, UnsafeNameError, check_component, is_internal, is_sidecar
from .sftp import CONNECTION_LOST, SftpPool, connection_lost, describe, sftp_error_text

log = logging.getLogger("longterm_sync.media.remote")

MD5_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class FileInfo:
    rel: str
    size: int
    mtime: int  # whole seconds: what SFTP v3 carries
    mtime_ns: int = 0  # local files only: the md5 cache key


@dataclass
class Tree:
    """One side's listing: videos and sidecars by relative path, and refused entries."""

    files: dict[str, FileInfo] = field(default_factory=dict)
    sidecars: dict[str, FileInfo] = field(default_factory=dict)  # keyed by the video's rel
    refused: list[tuple[str, str]] = field(default_factory=list)  # (name, why)
    dirs: set[str] = field(default_factory=set)
    partials: dict[str, int] = field(default_factory=dict)  # local only: rel -> bytes

    def add(self, rel: str, size: int, mtime: int, mtime_ns: int = 0) -> None:
        info = FileInfo(rel, size, mtime, mtime_ns)
        if is_sidecar(rel):
            self.sidecars[rel[: -len(SIDECAR_SUFFIX)]] = info
        else:
            self.files[rel] = info

    def __repr__(self) -> str:
        return (
            f"Tree({len(self.files)} files, {len(self.sidecars)} sidecars, "
            f"{len(self.refused)} refused)"
        )


def parse_md5(text: bytes | str) -> str | None:
    """The md5 in a sidecar (``md5sum`` output or the bare hash), or None if it holds none."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    words = text.split()
    if not words:
        return None
    word = words[0].lower()
    return word if len(word) == 32 and set(word) <= MD5_HEX else None


FIND_FORMAT = "%y %s %T@ %P\\0"
"""GNU find: type, size, mtime, path below the root; NUL-terminated (names may hold spaces
or anything but NUL and ``/``)."""
FIND_END = b"longterm-listing-end"


def parse_find_listing(data: bytes) -> Tree:
    """The tree ``find ROOT -mindepth 1 -printf FIND_FORMAT`` printed, with the SFTP walk's
    rules: an unsafe name is refused and not descended into, internal names are skipped with
    what lies below them, anything but folders and regular files is refused. Raises
    ValueError on a record it cannot read (the caller lists over SFTP instead)."""
    tree = Tree()
    if not data:
        return tree
    if not data.endswith(b"\0"):
        raise ValueError("truncated listing")
    for record in data[:-1].split(b"\0"):
        kind, size, mtime, path = record.split(b" ", 3)
        rel = path.decode("utf-8", "replace")
        parts = rel.split("/")
        if _hidden_below(parts[:-1]):
            continue
        name = parts[-1]
        try:
            check_component(name)
        except UnsafeNameError as exc:
            tree.refused.append((rel, str(exc)))
            continue
        if is_internal(name):
            continue
        if kind == b"d":
            tree.dirs.add(rel)
        elif kind == b"f":
            tree.add(rel, int(size), int(mtime.split(b".")[0]))
        else:
            tree.refused.append((rel, "not a regular file (symlink or special)"))
    return tree


def _hidden_below(ancestors: list[str]) -> bool:
    """Whether a folder on the way is refused (reported once, for itself) or internal."""
    for name in ancestors:
        try:
            check_component(name)
        except UnsafeNameError:
            return True
        if is_internal(name):
            return True
    return False


class Remote(Protocol):
    """What the engine needs from the server side."""

    root: str

    async def walk(self) -> Tree: ...

    async def read_sidecar(self, rel: str) -> str | None: ...


class SftpRemote:
    """The media folder over SFTP (paths relative to the account's home)."""

    def __init__(self, pool: SftpPool, root: str, *, concurrency: int = 8) -> None:
        self.pool = pool
        self.root = root.rstrip("/") or "."
        self.concurrency = max(1, concurrency)

    def __repr__(self) -> str:
        return f"SftpRemote({describe(self.pool.profile)}:{self.root})"

    def path(self, rel: str) -> str:
        return posixpath.join(self.root, rel)

    @property
    def profile(self) -> ServerProfile:
        return self.pool.profile

    async def exists(self) -> bool:
        try:
            attrs = await self.pool.sftp.stat(self.root)
        except asyncssh.SFTPNoSuchFile:
            return False
        except CONNECTION_LOST as exc:
            raise connection_lost(self.profile, exc) from exc
        except asyncssh.SFTPError as exc:
            raise RemoteError(
                f"cannot read {self.root} on {describe(self.profile)}: {sftp_error_text(exc)}"
            ) from exc
        if attrs.type != asyncssh.FILEXFER_TYPE_DIRECTORY:
            raise RemoteError(f"{self.root} on {describe(self.profile)} is not a folder")
        return True

    async def walk(self) -> Tree:
        """List the whole tree: by one ``find`` command where the account allows it, else
        over SFTP.

        SFTP lists a folder 100 entries per round trip, one request after the other (2000
        videos and their sidecars: 40 round trips, 1.6 s at 40 ms, where rsync needs one);
        ``find`` streams the whole tree after one. Any doubt (no exec, no GNU find, an
        unreadable folder, anything on stderr) falls back to the SFTP walk, which says
        which folder it could not read."""
        tree = await self._walk_by_find()
        if tree is None:
            tree = await self._walk_sftp()
        log.debug("remote %s: %r", self.root, tree)
        return tree

    async def _walk_by_find(self) -> Tree | None:
        if self.pool.exec_available is False:
            return None
        # The end marker proves the listing is whole and came from find, not from a forced
        # command (an sftp-only account) that ignored ours and printed nothing.
        command = (
            f"find {shlex.quote(self.root + '/')} -mindepth 1 -printf {shlex.quote(FIND_FORMAT)}"
            f" && printf '%s\\0' {FIND_END.decode()}"
        )
        try:
            result = await self.pool.run(command)
        except (asyncssh.Error, OSError) as exc:
            if isinstance(exc, CONNECTION_LOST):
                raise connection_lost(self.profile, exc) from exc
            log.debug("listing by find failed (%s); listing over SFTP", exc)
            return None
        stdout, stderr = result.stdout, result.stderr
        if result.exit_status != 0 or stderr or not isinstance(stdout, bytes):
            log.debug("listing by find failed (exit %s); listing over SFTP", result.exit_status)
            return None
        if not stdout.endswith(b"\0" + FIND_END + b"\0") and stdout != FIND_END + b"\0":
            log.debug("find listing without its end marker; listing over SFTP")
            return None
        try:
            return parse_find_listing(stdout[: -len(FIND_END) - 1])
        except ValueError as exc:
            log.debug("unexpected find output (%s); listing over SFTP", exc)
            return None

    async def _walk_sftp(self) -> Tree:
        """List the whole tree over SFTP; subfolders are read concurrently (``checkers``)."""
        tree = Tree()
        sem = asyncio.Semaphore(self.concurrency)

        async def visit(rel_dir: str, tg: asyncio.TaskGroup) -> None:
            path = self.path(rel_dir) if rel_dir else self.root
            async with sem:
                try:
                    names = await self.pool.sftp.readdir(path)
                except CONNECTION_LOST as exc:
                    raise connection_lost(self.profile, exc) from exc
                except asyncssh.SFTPError as exc:
                    if not rel_dir:
                        raise RemoteError(
                            f"cannot list {self.root} on {describe(self.profile)}: "
                            f"{sftp_error_text(exc)}"
                        ) from exc
                    tree.refused.append((rel_dir + "/", f"cannot list: {sftp_error_text(exc)}"))
                    return
            for entry in names:
                name = entry.filename
                if not isinstance(name, str):
                    name = name.decode("utf-8", "replace")
                if name in (".", ".."):
                    continue
                try:
                    check_component(name)
                except UnsafeNameError as exc:
                    tree.refused.append((f"{rel_dir}/{name}" if rel_dir else name, str(exc)))
                    continue
                if is_internal(name):
                    continue
                rel = f"{rel_dir}/{name}" if rel_dir else name
                attrs = entry.attrs
                kind = attrs.type
                if kind == asyncssh.FILEXFER_TYPE_UNKNOWN and attrs.permissions is not None:
                    kind = (
                        asyncssh.FILEXFER_TYPE_DIRECTORY
                        if stat.S_ISDIR(attrs.permissions)
                        else asyncssh.FILEXFER_TYPE_REGULAR
                        if stat.S_ISREG(attrs.permissions)
                        else asyncssh.FILEXFER_TYPE_SPECIAL
                    )
                if kind == asyncssh.FILEXFER_TYPE_DIRECTORY:
                    tree.dirs.add(rel)
                    tg.create_task(visit(rel, tg))
                elif kind == asyncssh.FILEXFER_TYPE_REGULAR:
                    tree.add(rel, int(attrs.size or 0), int(attrs.mtime or 0))
                else:
                    tree.refused.append((rel, "not a regular file (symlink or special)"))

        async with asyncio.TaskGroup() as tg:
            tg.create_task(visit("", tg))
        return tree

    async def read_sidecar(self, rel: str) -> str | None:
        """The md5 recorded beside ``rel``; None when the sidecar is missing.

        A sidecar that exists but holds no md5 is a failure of that file."""
        try:
            # block_size 0: one READ request, no parallel reader tasks left behind by a cancel
            path = self.path(rel) + SIDECAR_SUFFIX
            async with self.pool.sftp.open(path, "rb", block_size=0) as fh:
                data = await fh.read(4096)
        except asyncssh.SFTPNoSuchFile:
            return None
        except CONNECTION_LOST as exc:
            raise connection_lost(self.profile, exc) from exc
        except asyncssh.SFTPError as exc:
            raise FileFailed(
                f"cannot read its .md5sum on the server: {sftp_error_text(exc)}"
            ) from exc
        md5 = parse_md5(data)
        if md5 is None:
            raise FileFailed("its .md5sum on the server does not hold an md5")
        return md5
