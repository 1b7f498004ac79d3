"""Where to probe next: an interpolated search on CRF per scene, over resolution rungs.

The original encoded the whole video at every point of a CRF x resolution grid and measured
each. VMAF falls monotonically (nearly) as CRF rises, so like ab-av1's ``crf-search`` we
interpolate between the measured points that bracket the target and extrapolate from the
slope when they do not bracket it yet; every measurement is kept and reused. A rung is a
lower *detail* resolution: the scene is scaled down and back up before encoding, which is how
low targets are reached on content that stays too good even at the highest CRF.

This module only decides; it runs nothing, so it is tested without ffmpeg.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

CRF_MIN = 4.0
CRF_MAX = 51.0
CRF_STEP = 0.1  # x264 takes fractional CRF; finer than this changes nothing measurable
DEFAULT_SLOPE = 0.1  # rise of log(100.5 - VMAF) per CRF unit when only one point is known
RUNG_FACTORS = (1.0, 2 / 3, 1 / 2, 1 / 3, 1 / 4)
MAX_PROBES = 12
EXTREME_MARGIN = 2.0  # CRF units beyond 51 the slope must call for before the extreme probe
JUMP_WIDTH = 1.0  # a bracket this narrow moving more than the window per CRF step: a jump
MIN_STEP_PER_VMAF = 1.0  # CRF units per VMAF point of distance, on a lower rung going down


@dataclass(frozen=True)
class Probe:
    """One measured point. ``full``: measured on every frame (the figure the final file will
    show for this scene); otherwise on a subsample, to be confirmed before it is accepted.
    ``reused``: taken from the probe cache or an earlier file of the run, not encoded now."""

    rung: int
    crf: float
    vmaf: float
    full: bool = True
    reused: bool = False


def prior_crf(target: float, rung: int) -> float:
    """A first guess from x264's usual curve (VMAF 95 ~ CRF 25, 80 ~ 34, 40 ~ 46); a lower
    rung already costs VMAF, so it starts at a lower CRF."""
    return _clamp(round(58.0 - 0.3 * target - 5.0 * rung, 1))


def _y(vmaf: float) -> float:
    """The search's scale: VMAF approaches 100 roughly as ``100 - c * exp(k * crf)``, so
    ``log(100.5 - vmaf)`` is nearly linear in CRF. Interpolating there instead of on VMAF
    itself keeps a probe near the saturated top from dragging the next guess far away."""
    return math.log(max(0.05, 100.5 - vmaf))


def start_rung(target: float) -> int:
    """Plausible rungs for the target: full detail for most; only very low targets start
    lower (they are rarely reachable at full resolution, even at CRF 51)."""
    if target < 20:
        return 2
    if target < 35:
        return 1
    return 0


def _clamp(crf: float) -> float:
    return min(CRF_MAX, max(CRF_MIN, crf))


def _snap(crf: float) -> float:
    return _clamp(round(round(crf / CRF_STEP) * CRF_STEP, 1))


@dataclass
class CrfSearch:
    """The state of one scene's search; ``next_probe()`` is None when it is finished."""

    target: float
    tolerance: float = 1.0
    rungs: int = len(RUNG_FACTORS)
    max_probes: int = MAX_PROBES
    probes: list[Probe] = field(default_factory=list)
    rung: int = -1
    first_crf: float | None = None  # a first guess from other scenes, instead of the prior
    reason: str | None = None  # why the target was not reached, when it was not
    _visited: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.rung < 0:
            self.rung = min(start_rung(self.target), self.rungs - 1)

    def add(self, probe: Probe) -> None:
        """A new point; one at the same (rung, CRF) replaces the old (a confirmation on
        every frame replaces the subsampled figure)."""
        self.probes = [p for p in self.probes if (p.rung, p.crf) != (probe.rung, probe.crf)]
        self.probes.append(probe)

    @property
    def encodes(self) -> int:
        """Probes encoded by this search (reused ones cost no encode)."""
        return sum(1 for p in self.probes if not p.reused)

    @property
    def best(self) -> Probe | None:
        if not self.probes:
            return None
        return min(
            self.probes, key=lambda p: (abs(p.vmaf - self.target), not p.full, p.rung, -p.crf)
        )

    @property
    def reached(self) -> bool:
        best = self.best
        return best is not None and best.full and abs(best.vmaf - self.target) <= self.tolerance

    def unconfirmed(self) -> Probe | None:
        """The best point when it is within tolerance on a subsample only: it must be measured
        on every frame before the search may stop on it."""
        best = self.best
        if best is not None and not best.full and abs(best.vmaf - self.target) <= self.tolerance:
            return best
        return None

    def next_probe(self) -> tuple[int, float] | None:
        """(rung, crf) to encode and measure next, or None: done (``reason`` says why when
        the target was not reached). Call :meth:`unconfirmed` first."""
        if self.reached:
            return None
        if self.encodes >= self.max_probes:
            self.reason = f"stopped after {self.max_probes} encodes"
            return None
        extreme = self._at(self.rungs - 1, CRF_MAX)
        if extreme is not None and extreme.vmaf > self.target + self.tolerance:
            self.rung = self.rungs - 1
            flat = all(abs(p.vmaf - extreme.vmaf) < 0.5 for p in self.probes)
            self.reason = self._why("flat" if flat and len(self.probes) > 1 else "coarser")
            return None
        richest = self._at(0, CRF_MIN)
        if richest is not None and richest.vmaf < self.target - self.tolerance:
            self.rung = 0
            self.reason = self._why("finer")
            return None
        while True:
            step = self._on_rung(self.rung)
            if isinstance(step, float):
                return self.rung, step
            if step == "extreme":
                return self.rungs - 1, CRF_MAX
            if (
                step == "coarser"
                and self.rung + 2 < self.rungs
                and self._at(self.rungs - 1, CRF_MAX) is None
            ):
                # leaving a rung whose CRF 51 is too good with two or more rungs below: one
                # probe at the far end (lowest detail, CRF 51) says whether the target can be
                # reached at all, and which rung to try next (see _coarser_rung)
                return self.rungs - 1, CRF_MAX
            if (
                step == "coarser"
                and self.rung + 1 < self.rungs
                and self.rung + 1 not in self._visited
            ):
                self._visited.add(self.rung)
                self.rung = self._coarser_rung()
                continue
            if step == "finer" and self.rung > 0 and self.rung - 1 not in self._visited:
                self._visited.add(self.rung)
                self.rung -= 1
                continue
            if step == "bracket" and self.encodes < self.max_probes:
                # no CRF step lands on this rung (near x264's top quantizer a lower rung
                # jumps 5-7 VMAF per 0.1 CRF): a neighbouring rung, finer first, has other
                # values around the target
                near = [r for r in (self.rung - 1, self.rung + 1) if 0 <= r < self.rungs]
                fresh = [r for r in near if r not in self._visited and r != self.rung]
                if fresh:
                    self._visited.add(self.rung)
                    self.rung = fresh[0]
                    continue
            self.reason = self._why(step)
            return None

    def _on_rung(self, rung: int) -> float | str:
        points = sorted((p for p in self.probes if p.rung == rung), key=lambda p: p.crf)
        tried = {p.crf for p in points}
        if not points:
            if rung > 0 and (self._visited or self._too_good_at_max(rung - 1)):
                return CRF_MAX  # came here because CRF 51 was not enough on a finer rung
            if self.first_crf is not None and rung == start_rung(self.target):
                return _snap(self.first_crf)
            return prior_crf(self.target, rung)
        if rung > 0 and self._too_good_at_max(rung) and self._too_good_at_max(rung - 1):
            upper = self._at(rung - 1, CRF_MAX)
            here = self._at(rung, CRF_MAX)
            if upper is not None and here is not None and abs(upper.vmaf - here.vmaf) < 0.5:
                return "flat"  # a lower resolution changes nothing: a still or flat picture
        goal = _y(self.target)
        above = [p for p in points if p.vmaf > self.target]  # too good: raise CRF
        below = [p for p in points if p.vmaf < self.target]  # too poor: lower CRF
        if above and below:
            a = max(above, key=lambda p: p.crf)
            b = min(below, key=lambda p: p.crf)
            if b.crf <= a.crf:  # not monotonic (noise): settle for the closest
                return "bracket"
            steps = (b.crf - a.crf) / CRF_STEP
            if b.crf - a.crf <= JUMP_WIDTH and (a.vmaf - b.vmaf) / steps > 2 * self.tolerance:
                return "bracket"  # a jump, not a slope: CRF steps here skip the window
            share = (goal - _y(a.vmaf)) / (_y(b.vmaf) - _y(a.vmaf))
            crf = _snap(a.crf + share * (b.crf - a.crf))
            if crf <= a.crf:
                crf = _snap(a.crf + CRF_STEP)
            if crf >= b.crf:
                crf = _snap(b.crf - CRF_STEP)
            return crf if crf not in tried and a.crf < crf < b.crf else "bracket"
        slope = _slope(points, rung)
        if above:  # every point too good
            a = max(above, key=lambda p: p.crf)
            if a.crf >= CRF_MAX:
                return "coarser"
            guess = a.crf + (goal - _y(a.vmaf)) / slope
            if guess > CRF_MAX + EXTREME_MARGIN and rung < self.rungs - 1:
                # far too good even at CRF 51 by the slope: one probe at the other end of
                # the range (lowest detail, CRF 51) tells at once whether the target can be
                # reached at all, and brackets the rung that reaches it; once it is known,
                # CRF 51 here is not worth a probe of its own
                extreme = self._at(self.rungs - 1, CRF_MAX)
                if extreme is None:
                    return "extreme"
                if extreme.vmaf < self.target:
                    return "coarser"
            crf = _snap(guess)
            if crf in tried:
                return CRF_MAX if CRF_MAX not in tried else "coarser"
            return crf
        b = min(below, key=lambda p: p.crf)
        if b.crf <= CRF_MIN:
            return "finer"
        step = (_y(b.vmaf) - goal) / slope
        if rung > 0:  # a blurred picture's VMAF moves little with CRF: larger first steps
            step = max(step, MIN_STEP_PER_VMAF * (self.target - b.vmaf))
        crf = _snap(b.crf - step)
        if crf in tried:
            return CRF_MIN if CRF_MIN not in tried else "finer"
        return crf

    def _coarser_rung(self) -> int:
        """The next rung when CRF 51 is not enough on this one: the next, or, when CRF 51 at
        the lowest rung is known to fall below the target, the finest rung whose CRF 51 should
        by linear interpolation over the rungs (skipping rungs that cannot reach it)."""
        here = self.rung
        last = self.rungs - 1
        extreme = self._at(last, CRF_MAX)
        top = self._at(here, CRF_MAX)
        if extreme is None or extreme.vmaf >= self.target or here + 1 >= last:
            return here + 1
        if top is not None:
            v_here = top.vmaf
        else:  # not measured at CRF 51 here: extrapolated from the highest CRF measured
            points = sorted((p for p in self.probes if p.rung == here), key=lambda p: p.crf)
            if not points:
                return here + 1
            y = _y(points[-1].vmaf) + (CRF_MAX - points[-1].crf) * _slope(points, here)
            v_here = 100.5 - math.exp(y)
        if v_here <= extreme.vmaf:
            return here + 1
        share = (v_here - self.target) / (v_here - extreme.vmaf)
        return min(last, max(here + 1, math.ceil(here + share * (last - here) - 1e-9)))

    def _at(self, rung: int, crf: float) -> Probe | None:
        return next((p for p in self.probes if p.rung == rung and p.crf == crf), None)

    def _too_good_at_max(self, rung: int) -> bool:
        probe = self._at(rung, CRF_MAX)
        return probe is not None and probe.vmaf > self.target

    def _why(self, step: str) -> str:
        best = self.best
        at = f"closest VMAF {best.vmaf:.2f} at CRF {best.crf:g}" if best else "nothing measured"
        if step == "coarser" and self.rung == self.rungs - 1:
            return (
                f"too simple: VMAF stays above the target even at CRF {CRF_MAX:g} and the "
                f"lowest resolution ({at})"
            )
        if step == "finer" and self.rung == 0:
            return (
                f"too complex: VMAF stays below the target even at CRF {CRF_MIN:g} and full "
                f"resolution ({at})"
            )
        if step == "flat":
            return (
                "too simple: neither CRF nor a lower resolution changes its VMAF (a still or "
                f"flat picture; {at})"
            )
        if step in ("coarser", "finer"):
            return f"the target falls between two resolution rungs ({at})"
        return f"no CRF step of {CRF_STEP:g} lands within ±{self.tolerance:g} ({at})"


def _slope(points: list[Probe], rung: int = 0) -> float:
    """Rise of log(100.5 - VMAF) per CRF unit from the two highest-CRF points; bounded so one
    noisy pair cannot send the next probe across the whole range (a lower rung may be much
    flatter: measured on the bench's bars at 1/4 detail, 0.007 per CRF unit)."""
    if len(points) >= 2:
        p, q = points[-2], points[-1]
        if q.crf > p.crf and p.vmaf > q.vmaf:
            floor = 0.04 if rung == 0 else 0.005
            return min(0.4, max(floor, (_y(q.vmaf) - _y(p.vmaf)) / (q.crf - p.crf)))
    return DEFAULT_SLOPE
