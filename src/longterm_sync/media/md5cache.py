"""md5 of local files, keyed by path + size + mtime, plus what each server last confirmed.

Hashing 2 GiB takes seconds; a re-run with nothing changed must take one listing. The cache
lives inside the local folder (``.longterm-md5cache.json``) so it moves with it. For each
file it also records, per server, the remote video's and sidecar's size and mtime at the
moment their md5 was seen to match: while those are unchanged, the sidecar need not be read.
A damaged cache is ignored (and rewritten), never trusted.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson

from ..atomic import write_bytes_atomic
from .names import CACHE_NAME
from .remote import FileInfo

log = logging.getLogger("longterm_sync.media.md5cache")

RemoteState = tuple[int, int, int, int, str]  # video size, mtime, sidecar size, mtime, md5


class Md5Cache:
    def __init__(self, root: Path, server: str) -> None:
        self.path = root / CACHE_NAME
        self.server = server
        self.dirty = False
        self._data: dict[str, dict[str, Any]] = {}
        try:
            raw = orjson.loads(self.path.read_bytes())
            if isinstance(raw, dict) and isinstance(raw.get("files"), dict):
                self._data = raw["files"]
        except FileNotFoundError:
            pass
        except (OSError, orjson.JSONDecodeError) as exc:
            log.warning("ignoring unreadable md5 cache %s: %s", self.path, exc)

    def __repr__(self) -> str:
        return f"Md5Cache({self.path}, {len(self._data)} files)"

    def __len__(self) -> int:
        return len(self._data)

    def local_md5(self, info: FileInfo) -> str | None:
        entry = self._data.get(info.rel)
        if entry and entry.get("size") == info.size and entry.get("mtime_ns") == info.mtime_ns:
            md5 = entry.get("md5")
            return md5 if isinstance(md5, str) else None
        return None

    def set_local(self, info: FileInfo, md5: str) -> None:
        entry = self._data.get(info.rel)
        if (
            entry
            and entry.get("md5") == md5
            and entry.get("size") == info.size
            and entry.get("mtime_ns") == info.mtime_ns
        ):
            return
        remote = entry.get("remote", {}) if entry and entry.get("md5") == md5 else {}
        self._data[info.rel] = {
            "size": info.size,
            "mtime_ns": info.mtime_ns,
            "md5": md5,
            "remote": remote,
        }
        self.dirty = True

    def remote_state(self, rel: str) -> RemoteState | None:
        entry = self._data.get(rel)
        state = entry.get("remote", {}).get(self.server) if entry else None
        if isinstance(state, list) and len(state) == 5:
            return (int(state[0]), int(state[1]), int(state[2]), int(state[3]), str(state[4]))
        return None

    def set_remote(self, rel: str, video: FileInfo, sidecar: FileInfo, md5: str) -> None:
        entry = self._data.get(rel)
        if entry is None:
            return
        state = [video.size, video.mtime, sidecar.size, sidecar.mtime, md5]
        remote = entry.setdefault("remote", {})
        if remote.get(self.server) != state:
            remote[self.server] = state
            self.dirty = True

    def forget(self, rel: str) -> None:
        if self._data.pop(rel, None) is not None:
            self.dirty = True

    def prune_missing(self, root: Path, keep: set[str]) -> None:
        """Blocking: forget entries whose local file is gone (``keep`` is known present)."""
        for rel in [r for r in self._data if r not in keep]:
            if not root.joinpath(*rel.split("/")).is_file():
                self.forget(rel)

    def save(self) -> None:
        """Blocking (run it in a thread): atomic write, only when something changed."""
        if not self.dirty:
            return
        write_bytes_atomic(self.path, orjson.dumps({"version": 1, "files": self._data}))
        self.dirty = False


def remote_unchanged(
    state: RemoteState | None, video: FileInfo, sidecar: FileInfo | None, local_md5: str
) -> bool:
    """True when the server's video and sidecar are exactly as when ``local_md5`` matched."""
    return (
        state is not None
        and sidecar is not None
        and state == (video.size, video.mtime, sidecar.size, sidecar.mtime, local_md5)
    )
