"""Probe cache: a measured (CRF, VMAF) point is never measured twice, as ab-av1 caches its probes.

The study compresses the same source to several targets (``40_x.mp4``, ``60_x.mp4``,
``80_x.mp4``): every search of one scene then walks the same curve, so each point measured for
one target is a free point for the others, in this run or a later one. The key is everything
that decides the number: the source's content (a digest of its bytes, not its name), the
scene's frames, the detail resolution, the CRF, the encoder settings, the VMAF model and how
many frames were measured. The cache keeps numbers only; an encode is kept on disk only while
another file of the same run may still choose it.

Persisted as one JSON file in the output folder (written tmp + fsync + rename); a missing or
unreadable file is an empty cache, never an error: it only saves work.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_bytes_atomic

CACHE_DIR = ".compress-cache"
CACHE_FILE = "probes.json"
SCHEME = 1  # bump when encode or measure arguments change what a key's number means


def content_digest(path: Path) -> str:
    """Blocking: a digest of the file's bytes (the cache must not trust names or times)."""
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class PointKey:
    """Where a scene's curve lives: the same for every target of one source."""

    digest: str
    start: int
    end: int
    encoder: str  # codec settings and the ffmpeg build
    model: str

    @property
    def prefix(self) -> str:
        return f"v{SCHEME}|{self.digest}|{self.start}-{self.end}|{self.encoder}|{self.model}|"

    def point(self, size: tuple[int, int], crf: float, subsample: int) -> str:
        w, h = size
        return f"{self.prefix}{w}x{h}|{crf:g}|{subsample}"


class ProbeCache:
    """Measured VMAF by key; ``hits`` and ``stored`` count this run's use of it."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / CACHE_DIR / CACHE_FILE
        self.values: dict[str, float] = {}
        self.hits = 0
        self.stored = 0
        self._dirty = False

    def load(self) -> None:
        """Blocking. An unreadable cache is ignored (it is rebuilt as probes are made)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and isinstance(data.get("probes"), dict):
            self.values = {
                str(k): float(v)
                for k, v in data["probes"].items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }

    def points(self, key: PointKey) -> list[tuple[tuple[int, int], float, int, float]]:
        """Every cached point of one scene: ((width, height), crf, subsample, vmaf)."""
        found = []
        for name, vmaf in self.values.items():
            if not name.startswith(key.prefix):
                continue
            try:
                size, crf, subsample = name[len(key.prefix) :].split("|")
                w, h = size.split("x")
                found.append(((int(w), int(h)), float(crf), int(subsample), vmaf))
            except ValueError:
                continue
        return found

    def get(self, key: str) -> float | None:
        value = self.values.get(key)
        if value is not None:
            self.hits += 1
        return value

    def put(self, key: str, vmaf: float) -> None:
        self.values[key] = vmaf
        self.stored += 1
        self._dirty = True

    def save(self) -> None:
        """Blocking: the whole cache, atomically (a few hundred bytes per probe)."""
        if not self._dirty:
            return
        self.path.parent.mkdir(exist_ok=True)
        data = json.dumps({"scheme": SCHEME, "probes": self.values}, indent=0, sort_keys=True)
        write_bytes_atomic(self.path, data.encode("utf-8") + b"\n")
        self._dirty = False
