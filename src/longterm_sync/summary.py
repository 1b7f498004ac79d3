"""What every pipeline returns: counts, bytes, time and failures, for the CLI and the tests."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ExitCode


@dataclass(frozen=True)
class Failure:
    """One item (participant, window, file) that failed, and why, in one line."""

    item: str
    reason: str


@dataclass(kw_only=True)
class Summary:
    """A pipeline's outcome. ``counts`` keeps insertion order for rendering."""

    command: str
    counts: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    elapsed_s: float = 0.0
    files: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def fail(self, item: str, reason: str) -> None:
        self.failures.append(Failure(item, " ".join(str(reason).split())))

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.PARTIAL if self.failures else ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = not self.failures
        data["exit_code"] = int(self.exit_code)
        return data

    def lines(self) -> list[str]:
        """Human-readable summary, a few lines, failures listed last."""
        mb = self.bytes / 1_000_000
        parts = [f"{v} {k}" for k, v in self.counts.items()]
        head = f"{self.command}: " + (", ".join(parts) if parts else "nothing to do")
        out = [f"{head}; {mb:.1f} MB in {self.elapsed_s:.1f} s"]
        out.extend(f"warning: {w}" for w in self.warnings)
        if self.failures:
            out.append(f"{len(self.failures)} failed:")
            out.extend(f"  {f.item}: {f.reason}" for f in self.failures)
        return out
