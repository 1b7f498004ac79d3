"""How records and listings are turned into stored bytes, and back.

A record is stored under the sha256 of its *canonical bytes*: for results, feedback and
missing-video reports the compact one-line encoding :func:`longterm_sync.jsonstream.encode_item`
gives the item as the server sent it (keys, numbers and non-ASCII verbatim); for a schedule,
compact orjson. The same item seen on two nights is the same record, stored once.

Records are compressed one by one with zstandard: a result is mostly numeric sensor samples,
which compress well even alone (bench/backup_bench.py measures level, ratio and speed against
zlib), and one-by-one keeps any record readable without its neighbours.

A listing (the records of one output file, in order) is a sequence of *chunks* of at most
:data:`CHUNK_RECORDS` record ids; chunks are content-addressed too. A file that only grows
keeps its full chunks and adds one short last chunk, so a night's listing costs a few hundred
bytes, not a copy of the whole list.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Sequence

import zstandard

LEVEL = 3
"""zstd level for records. Level 1-3 compress result JSON about 5-6x at hundreds of MB/s;
higher levels gain a few percent for several times the CPU (see the backup bench)."""

CHUNK_RECORDS = 64
"""Record ids per listing chunk: small enough that a growing file re-stores little, large
enough that a long study's listing is a short row."""

_ID_TYPE = "q"  # signed 64-bit: SQLite's INTEGER PRIMARY KEY


def digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class Codec:
    """Compressor and decompressor, one per thread (zstandard objects are not thread-safe)."""

    def __init__(self, level: int = LEVEL) -> None:
        self._c = zstandard.ZstdCompressor(level=level)
        self._d = zstandard.ZstdDecompressor()

    def compress(self, data: bytes) -> bytes:
        return self._c.compress(data)

    def decompress(self, data: bytes) -> bytes:
        return self._d.decompress(data)


def pack_ids(ids: Sequence[int]) -> bytes:
    return array(_ID_TYPE, ids).tobytes()


def unpack_ids(data: bytes) -> list[int]:
    out = array(_ID_TYPE)
    out.frombytes(data)
    return out.tolist()


def split_chunks(ids: Sequence[int], size: int = CHUNK_RECORDS) -> list[list[int]]:
    """Fixed-size chunks from the start: a file that only grows keeps every full chunk."""
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]
