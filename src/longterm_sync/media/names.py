"""Names from the server are untrusted input.

A listing is produced by another machine: a hostile or broken server can return ``..``,
an absolute path, a NUL byte or a name with a slash in it. Such an entry is refused (the
caller reports it) before it can become a local path, and every local path is checked to
stay below the destination after symlinks are resolved.
"""

from __future__ import annotations

import os
from pathlib import Path

PARTIAL_PREFIX = "."
PARTIAL_SUFFIX = ".partial"
SIDECAR_SUFFIX = ".md5sum"
CACHE_NAME = ".longterm-md5cache.json"


class UnsafeNameError(ValueError):
    """A remote name that must not become a local path; ``str()`` says why, in one line."""


def check_component(name: str) -> None:
    """Raise :class:`UnsafeNameError` for a single directory entry that is not a plain name."""
    if not name:
        raise UnsafeNameError("empty name")
    if "\x00" in name:
        raise UnsafeNameError(f"name contains a NUL byte: {name!r}")
    if name in (".", ".."):
        raise UnsafeNameError(f"name is {name!r}")
    if "/" in name or "\\" in name:
        raise UnsafeNameError(f"name contains a path separator: {name!r}")
    if any(ord(c) < 32 for c in name):
        raise UnsafeNameError(f"name contains a control character: {name!r}")


def check_relpath(rel: str) -> str:
    """Validate a ``/``-separated relative path from a listing; return it unchanged."""
    if rel.startswith("/"):
        raise UnsafeNameError(f"absolute path: {rel!r}")
    for part in rel.split("/"):
        check_component(part)
    return rel


def local_path(root: Path, rel: str) -> Path:
    """The local path for ``rel`` below ``root``, refused if it would land anywhere else.

    Resolving catches a symlinked subfolder in the destination that points outside it.
    """
    check_relpath(rel)
    base = Path(os.path.realpath(root))
    target = Path(os.path.realpath(base.joinpath(*rel.split("/"))))
    if target != base and base not in target.parents:
        raise UnsafeNameError(f"{rel!r} would be written outside {root}")
    return root.joinpath(*rel.split("/"))


def partial_name(name: str) -> str:
    """Hidden, recognisable name a file has while it is not verified yet."""
    return f"{PARTIAL_PREFIX}{name}{PARTIAL_SUFFIX}"


def partial_of(name: str) -> str | None:
    """The name whose partial ``name`` is, or None when it is not one."""
    if name.startswith(PARTIAL_PREFIX) and name.endswith(PARTIAL_SUFFIX):
        return name[len(PARTIAL_PREFIX) : -len(PARTIAL_SUFFIX)] or None
    return None


def is_internal(name: str) -> bool:
    """Entries the engine never treats as videos: hidden files, partials, our cache."""
    return name.startswith(".")


def is_sidecar(name: str) -> bool:
    return name.endswith(SIDECAR_SUFFIX)
