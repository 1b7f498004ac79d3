"""Helpers for the download-results / download-schedule / fault tests (REST engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from clitools import Result, run_cli
from fixtures_sandbox import SandboxInfo

FAST_RETRIES = {"retries": 12, "retry_base_delay": 0.01, "retry_max_seconds": 60.0}
NO_RETRIES = {"retries": 0, "retry_base_delay": 0.01}


def config_with_limits(info: SandboxInfo, folder: Path, **limits: float) -> Path:
    """A copy of the sandbox's config.toml with a [limits] table (the sandbox writes none)."""
    text = Path(info.config).read_text(encoding="utf-8")
    lines = [f"{key} = {value!r}" for key, value in limits.items()]
    path = folder / "config.toml"
    path.write_text(text + "\n[limits]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def download(
    info: SandboxInfo, out: Path, *args: str, config: Path | None = None, script: bool = False
) -> Result:
    """``longterm download-results`` against the sandbox, files into ``out``."""
    return run_cli(
        [
            *([] if script else ["download-results"]),
            "--config",
            str(config or info.config),
            "--server",
            "sandbox",
            "--output-dir",
            str(out),
            *args,
        ],
        script="download-results" if script else None,
    )


def load(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


def tree(folder: Path) -> dict[str, bytes]:
    """Every file of ``folder`` (no subfolders) by name, for byte-for-byte comparisons."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def check_format(data: bytes) -> list[Any]:
    """Assert the documented results format (one compact item per line); return the items."""
    items = orjson.loads(data)
    assert isinstance(items, list)
    if not items:
        assert data == b"[]\n"
        return items
    lines = data.split(b"\n")
    assert lines[0] == b"[" and lines[-2:] == [b"]", b""]
    body = lines[1:-2]
    assert len(body) == len(items)
    for n, (line, item) in enumerate(zip(body, items, strict=True)):
        text = line[:-1] if n < len(body) - 1 else line
        assert line.endswith(b",") == (n < len(body) - 1)
        assert orjson.loads(text) == item
        assert b", " not in text[:80] and b'": ' not in text[:80]  # compact
    return items


def participant_ids(info: SandboxInfo) -> list[str]:
    """external_ids of the synthetic study, from the experimenter's users.csv."""
    rows = (info.study_dir / "users.csv").read_text(encoding="utf-8").splitlines()[1:]
    return [row.split(",")[3] for row in rows if row.strip()]
