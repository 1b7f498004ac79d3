"""The demo: a synthetic study on the in-process sandbox, a full backup, a new day, a nightly
backup, verify; each backup rebuilds the study's HTML site (``backup --report``).

It is what ``make demo`` runs on a fresh machine, so it needs nothing but the package: the
sandbox serves REST and SFTP on free loopback ports, writes its own ``config.toml`` (token,
key, known_hosts) and the backup reads that profile like any real server's. State stays in the
demo folder, so a second ``make demo`` adds another day and runs two nightly backups.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backup.verify import verify_backup
from ..config import Limits, load_config
from ..errors import UsageError
from ..sandbox.server import ReadyInfo, Sandbox, SandboxOptions
from ..summary import Summary
from .backup import BackupOptions, run_backup

MARKER = ".longterm-demo"  # only a folder holding it is ever wiped by --fresh
DEMO_STUDY: dict[str, Any] = {"users": 6, "days": 14, "video_mb": 2.0}


@dataclass(frozen=True, kw_only=True)
class DemoOptions:
    folder: Path
    sandbox: SandboxOptions  # the study; its data_dir is folder/server
    fresh: bool = False
    limits: Limits | None = None  # None: the sandbox profile's defaults

    @classmethod
    def create(
        cls,
        folder: Path,
        *,
        fresh: bool = False,
        limits: Limits | None = None,
        **study: Any,
    ) -> DemoOptions:
        """``study``: SandboxOptions fields (users, days, video_mb, seed...) over the demo's
        defaults, a study small enough to fill in a few seconds."""
        sandbox = SandboxOptions(data_dir=folder / "server", **{**DEMO_STUDY, **study})
        return cls(folder=folder, sandbox=sandbox, fresh=fresh, limits=limits)

    @property
    def server_dir(self) -> Path:
        return self.sandbox.data_dir

    @property
    def backup_dir(self) -> Path:
        return self.folder / "backup"


def prepare_folder(options: DemoOptions) -> None:
    """Create the demo folder, or empty it for ``--fresh`` if (and only if) it is a demo's."""
    folder = options.folder
    marker = folder / MARKER
    if folder.exists() and any(folder.iterdir()) and not marker.exists():
        raise UsageError(
            f"{folder} exists and was not made by `longterm demo`",
            hint="pass an empty or new --dir",
        )
    try:
        if options.fresh:
            for sub in (options.server_dir, options.backup_dir):
                if sub.exists():
                    shutil.rmtree(sub)
        folder.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError as exc:
        raise UsageError(f"cannot prepare the demo folder {folder}: {exc.strerror or exc}") from exc


async def run_demo(
    options: DemoOptions, on_ready: Callable[[ReadyInfo], None] | None = None
) -> Summary:
    """Start the sandbox (filled on the first run only), back it up, let it gain a day of
    results, back it up again (the nightly run), verify the backup.

    The summary's parts are the two backup runs and the verify; ``details["runs"]`` holds
    the figures the CLI shows side by side.
    """
    await asyncio.to_thread(prepare_folder, options)
    sandbox = Sandbox(options.sandbox)
    async with sandbox as info:
        if on_ready is not None:
            on_ready(info)
        config = await asyncio.to_thread(load_config, info.config)
        profile = config.profile("sandbox")
        limits = options.limits or config.limits
        backup = BackupOptions(dest=options.backup_dir, report=True)
        first = await run_backup(profile, limits, backup)
        day, grew = await sandbox.add_day()
        second = await run_backup(profile, limits, backup)
    verified = await asyncio.to_thread(verify_backup, options.backup_dir)
    summary = Summary(command="demo")
    summary.parts.extend([first, second, verified])
    summary.count("backup runs", 2)
    summary.count("results added by the sandbox", grew.counts.get("watch-results", 0))
    summary.details["added_day"] = day.isoformat()
    summary.details["runs"] = [run_figures(first), run_figures(second)]
    summary.details["sandbox"] = {"url": info.url, "data_dir": info.data_dir}
    summary.details["report"] = second.details.get("report")
    return summary


def run_figures(summary: Summary) -> dict[str, Any]:
    """What the demo compares between two backup runs."""
    return {
        "kind": summary.details.get("kind", "?"),
        "records fetched": summary.counts.get("records fetched", 0),
        "records added": summary.counts.get("records added", 0),
        "MB fetched": round(summary.bytes / 1e6, 2),
        "MB stored": round(summary.details.get("bytes_stored", 0) / 1e6, 3),
        "seconds": round(summary.elapsed_s, 2),
        "report figures drawn": sum(
            p.counts.get("figures drawn", 0) for p in summary.parts if p.command == "report"
        ),
    }
