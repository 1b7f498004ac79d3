"""The local side of a transfer: a folder tree of videos, listed in a worker thread."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

from .names import is_internal, partial_of
from .remote import Tree

HASH_CHUNK = 1 << 20


def walk_local(root: Path) -> Tree:
    """Blocking: list ``root`` recursively (hidden entries, partials and symlinks skipped)."""
    tree = Tree()
    if not root.is_dir():
        return tree
    stack = [("", str(root))]
    while stack:
        rel_dir, path = stack.pop()
        with os.scandir(path) as it:
            for entry in it:
                if is_internal(entry.name):
                    video = partial_of(entry.name)
                    if video and entry.is_file(follow_symlinks=False):
                        rel = f"{rel_dir}/{video}" if rel_dir else video
                        tree.partials[rel] = entry.stat(follow_symlinks=False).st_size
                    continue
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                if entry.is_dir(follow_symlinks=False):
                    tree.dirs.add(rel)
                    stack.append((rel, entry.path))
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    tree.add(rel, st.st_size, int(st.st_mtime), st.st_mtime_ns)
                else:
                    tree.refused.append((rel, "not a regular file (symlink or special)"))
    return tree


async def walk_local_async(root: Path) -> Tree:
    return await asyncio.to_thread(walk_local, root)


def md5_file(path: Path) -> str:
    """Blocking md5 of a file (hashlib releases the GIL on large updates)."""
    h = hashlib.md5()
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(HASH_CHUNK)
        view = memoryview(buf)
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()
