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
    parts: list[Summary] = field(default_factory=list)  # sub-jobs of a composite job

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def fail(self, item: str, reason: str) -> None:
        self.failures.append(Failure(item, " ".join(str(reason).split())))

    def absorb(
        self,
        other: Summary,
        prefix: str = "",
        *,
        unprefixed: tuple[str, ...] = (),
        details_under: str | None = None,
    ) -> None:
        """Fold a sub-job's outcome into this one: the one way summaries are merged.

        Counts are prefixed (one flat line), except those whose name contains one of
        ``unprefixed``; details are merged flat, or kept whole under ``details_under``.
        """
        for key, value in other.counts.items():
            keep = any(part in key for part in unprefixed)
            self.count(key if keep else prefix + key, value)
        self.bytes += other.bytes
        self.elapsed_s += other.elapsed_s
        self.files.extend(other.files)
        self.failures.extend(other.failures)
        self.warnings.extend(other.warnings)
        if details_under is None:
            self.details.update(other.details)
        else:
            self.details[details_under] = other.details

    @classmethod
    def merged(cls, command: str, parts: list[Summary]) -> Summary:
        """One summary of several parts; the counts of parts of another command prefixed
        with its name (``download-schedule``'s JSON and video parts)."""
        out = cls(command=command)
        for part in parts:
            out.absorb(part, "" if part.command == command else f"{part.command} ")
        return out

    @property
    def ok(self) -> bool:
        return not self.failures and all(part.ok for part in self.parts)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.ok else ExitCode.PARTIAL

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["parts"] = [part.to_dict() for part in self.parts]
        data["ok"] = self.ok
        data["exit_code"] = int(self.exit_code)
        return data

    def lines(self) -> list[str]:
        """Human-readable summary, a few lines, failures listed last; sub-jobs first."""
        out = [line for part in self.parts for line in part.lines()]
        mb = self.bytes / 1_000_000
        parts = [f"{v} {k}" for k, v in self.counts.items()]
        head = f"{self.command}: " + (", ".join(parts) if parts else "nothing to do")
        out.append(f"{head}; {mb:.1f} MB in {self.elapsed_s:.1f} s")
        out.extend(f"warning: {w}" for w in self.warnings)
        if self.failures:
            out.append(f"{len(self.failures)} failed:")
            out.extend(f"  {f.item}: {f.reason}" for f in self.failures)
        return out
