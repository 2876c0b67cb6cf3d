"""What `inspector try` found: the wall times of the interleaved unrecorded runs, the measured
speed-up and its range beside the predicted one, and the check issue 22 sets (within the
predicted range, within 30% of the predicted speed-up, or a miss). Numbers in, facts out (the
words are inspector/text/trial.py's): no processes, no files.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from inspector.machine_load import BUSY_SHARE

if TYPE_CHECKING:
    from inspector.analyze.evidence import Fact

# Issue 22's test: a measured speed-up more than 30% away from the predicted one is a miss,
# whatever the ranges say.
PREDICTION_TOLERANCE = 0.30


@dataclass(frozen=True)
class Swap:
    """One pool the hook swapped: where the program made it, from what to what."""

    site: str
    was: str
    now: str
    workers: int | None


@dataclass(frozen=True)
class Timing:
    """The wall times of one side's unrecorded runs, whole processes."""

    runs_s: tuple[float, ...]
    loads: tuple[float, ...] = ()  # share of the CPU other programs used during each run

    @property
    def median_s(self) -> float:
        return statistics.median(self.runs_s)

    @property
    def min_s(self) -> float:
        return min(self.runs_s)

    @property
    def max_s(self) -> float:
        return max(self.runs_s)

    @property
    def busy_runs(self) -> int:
        return sum(load > BUSY_SHARE for load in self.loads)


@dataclass(frozen=True)
class Predicted:
    """What the recorded original predicted for the model tried (copied out of the
    diagnosis: its model may change, these four numbers stay)."""

    speedup: float
    low: float
    high: float
    basis: tuple[Fact, ...]


@dataclass(frozen=True)
class Check:
    verdict: str     # "in_range", "near", "missed" or "no_prediction"
    off_by: float | None  # measured / predicted - 1
    no_prediction: str | None = None  # why there was none to check
    tolerance: float = PREDICTION_TOLERANCE


@dataclass(frozen=True)
class TrialResult:
    command: tuple[str, ...]
    advice: str                  # the recorded original's
    model: str                   # the model tried (the advice, or --to)
    swaps: tuple[Swap, ...]
    left: tuple[str, ...]        # pools left alone, and why
    original: Timing
    swapped: Timing
    predicted: Predicted | None
    no_prediction: str | None    # why there is none, when there is none
    recordings: tuple[Path, Path]  # the recorded original and the recorded swapped run
    page: Path | None = None

    @property
    def speedup(self) -> float:
        """As `inspector compare` reads runs: the medians' ratio, and the range the runs
        allow (the original's fastest over the swapped slowest, and the other way round)."""
        return _ratio(self.original.median_s, self.swapped.median_s)

    @property
    def speedup_low(self) -> float:
        return _ratio(self.original.min_s, self.swapped.max_s)

    @property
    def speedup_high(self) -> float:
        return _ratio(self.original.max_s, self.swapped.min_s)

    @property
    def check(self) -> Check:
        p = self.predicted
        if p is None:
            return Check("no_prediction", None, self.no_prediction or "none made")
        off = self.speedup / p.speedup - 1 if p.speedup > 0 else float("inf")
        if p.low <= self.speedup <= p.high:
            return Check("in_range", off)
        return Check("near" if abs(off) <= PREDICTION_TOLERANCE else "missed", off)

    @property
    def busy_runs(self) -> int:
        return self.original.busy_runs + self.swapped.busy_runs

    @property
    def runs(self) -> int:
        return len(self.original.runs_s) + len(self.swapped.runs_s)


def _ratio(base_s: float, this_s: float) -> float:
    return base_s / this_s if this_s > 0 else 0.0
