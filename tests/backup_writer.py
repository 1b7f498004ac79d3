"""A store writer for the crash test: commits snapshots of fresh random records in a loop,
printing ``committed N`` after each commit, until killed (or ``--snapshots`` are done)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from longterm_sync.backup.codec import Codec
from longterm_sync.backup.store import Prepared, SnapshotStore


def main() -> None:
    folder, count = Path(sys.argv[1]), int(sys.argv[2])
    codec = Codec()
    with SnapshotStore.open(folder) as store:
        for _ in range(count):
            snap = store.begin_snapshot("nightly")
            ids: list[int] = []
            for n in range(40):
                body = os.urandom(2000).hex().encode()  # 4 KB, compressible 2x
                ids.extend(store.put_records([Prepared.make(codec, "result", body, n)]))
            store.set_listing("results_x.json", ids)
            store.set_mark("x", last_record_date=None, full_pass_at=None)
            store.commit_snapshot(bytes_fetched=len(ids), info={"participants": []})
            print(f"committed {snap}", flush=True)


if __name__ == "__main__":
    main()
