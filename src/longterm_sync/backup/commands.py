"""The backup's companion commands, on the store alone (no server, no token): ``verify``,
``list``, ``restore``, ``status``. Each returns a :class:`Summary` the CLI renders."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..atomic import local_io_error
from ..errors import UsageError
from ..summary import Summary
from .restore import write_snapshot
from .store import SnapshotStore
from .verify import TEXT, verify_backup

__all__ = ["list_snapshots", "restore", "snapshot_table", "status", "verify"]


def verify(dest: Path) -> Summary:
    return verify_backup(dest)


def list_snapshots(dest: Path) -> Summary:
    summary = Summary(command="backup list")
    with SnapshotStore.open(dest / TEXT, readonly=True) as store:
        snaps = store.snapshots()
        summary.details["snapshots"] = [
            {**s.to_dict(), "ok": bool(s.info.get("ok", True))} for s in snaps
        ]
        summary.details["store_bytes"] = store.size_on_disk()
    summary.count("snapshots", len(snaps))
    summary.bytes = sum(s.bytes_fetched for s in snaps)
    return summary


def snapshot_table(summary: Summary) -> list[str]:
    rows = summary.details.get("snapshots", [])
    out = [
        f"{'id':>4}  {'committed (UTC)':19}  {'kind':7}  {'added':>7}  {'fetched':>10}  "
        f"{'stored':>10}  ok"
    ]
    for s in rows:
        when = datetime.fromisoformat(s["committed_at"]).strftime("%Y-%m-%d %H:%M:%S")
        out.append(
            f"{s['id']:>4}  {when:19}  {s['kind']:7}  {s['records_added']:>7}  "
            f"{_mb(s['bytes_fetched']):>10}  {_mb(s['bytes_stored']):>10}  "
            f"{'yes' if s['ok'] else 'no'}"
        )
    out.append(f"store on disk: {_mb(summary.details.get('store_bytes', 0))}")
    return out


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.2f} MB"


def _lock_file(path: Path) -> bool:
    from ..lock import LOCK_NAME

    return path.name == LOCK_NAME


def restore(dest: Path, as_of: datetime, to: Path) -> Summary:
    """Write the files of the snapshot in force at ``as_of`` into ``to`` (new or empty)."""
    started = time.monotonic()
    summary = Summary(command="backup restore")
    try:
        if to.exists() and (not to.is_dir() or any(not _lock_file(p) for p in to.iterdir())):
            raise UsageError(f"--to {to} is not an empty folder", hint="restore never overwrites")
    except OSError as exc:
        raise local_io_error(exc, to) from None
    with SnapshotStore.open(dest / TEXT, readonly=True) as store:
        snap = store.snapshot_at(as_of)
        if snap is None:
            first = store.snapshots()
            hint = f"the first is from {first[0].committed_at.isoformat()}" if first else None
            raise UsageError(f"no snapshot was committed by {as_of.isoformat()}", hint=hint)
        written = write_snapshot(store, snap, to)
    summary.count("files", len(written.files))
    summary.count("records", written.records)
    summary.bytes = written.bytes
    summary.details.update({"snapshot": snap.to_dict(), "to": str(to)})
    summary.elapsed_s = time.monotonic() - started
    return summary


def status(dest: Path, max_age: timedelta, now: datetime | None = None) -> Summary:
    """Fails (one line) when the last successful snapshot is older than ``max_age``."""
    summary = Summary(command="backup status")
    now = now or datetime.now(UTC)
    with SnapshotStore.open(dest / TEXT, readonly=True) as store:
        good = [s for s in store.snapshots() if s.info.get("ok", True)]
        last = store.latest()
    if not good:
        summary.fail("backup", f"no successful backup run in {dest}")
        return summary
    age = now - good[-1].committed_at
    hours = age.total_seconds() / 3600
    summary.details.update(
        {
            "last_success": good[-1].to_dict(),
            "age_hours": round(hours, 2),
            "latest": last and last.to_dict(),
        }
    )
    if age > max_age:
        summary.fail(
            "backup",
            f"the last successful run of {dest} finished {hours:.1f} h ago "
            f"(limit {max_age.total_seconds() / 3600:g} h)",
        )
    else:
        summary.count("hours since the last successful run", int(hours))
    return summary
