"""What `inspector try` found: the wall times of the interleaved unrecorded runs, the measured
speed-up and its range beside the predicted one, and the check issue 22 sets (within the
predicted range, within 30% of the predicted speed-up, or a miss). Numbers in, sentences and
JSON out: no processes, no files.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

    def sentence(self) -> str:
        workers = f", {self.workers} workers" if self.workers else ""
        return f"{self.was} -> {self.now} at {self.site}{workers}"

    def to_dict(self) -> dict[str, Any]:
        return {"site": self.site, "from": self.was, "to": self.now, "workers": self.workers}


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

    def text(self) -> str:
        """'2.41 s (2.38-2.45), 3 runs'."""
        spread = f" ({self.min_s:.2f}-{self.max_s:.2f})" if len(self.runs_s) > 1 else ""
        busy = f", {self.busy_runs} busy" if self.busy_runs else ""
        runs = "1 run" if len(self.runs_s) == 1 else f"{len(self.runs_s)} runs"
        return f"{self.median_s:.2f} s{spread}, {runs}{busy}"

    def to_dict(self) -> dict[str, Any]:
        return {"median_s": round(self.median_s, 3), "min_s": round(self.min_s, 3),
                "max_s": round(self.max_s, 3), "runs_s": [round(t, 3) for t in self.runs_s],
                "foreign_load": [round(x, 3) for x in self.loads],
                "busy_runs": self.busy_runs}


@dataclass(frozen=True)
class Predicted:
    """What the recorded original predicted for the model tried (copied out of the
    diagnosis: its model may change, these four numbers stay)."""

    speedup: float
    low: float
    high: float
    basis: tuple[Fact, ...]

    def text(self) -> str:
        return f"{self.speedup:.2f}x ({self.low:.2f}-{self.high:.2f})"


@dataclass(frozen=True)
class Check:
    verdict: str     # "in_range", "near", "missed" or "no_prediction"
    off_by: float | None  # measured / predicted - 1
    sentence: str


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
            return Check("no_prediction", None,
                         f"no prediction to check ({self.no_prediction or 'none made'})")
        off = self.speedup / p.speedup - 1 if p.speedup > 0 else float("inf")
        if p.low <= self.speedup <= p.high:
            return Check("in_range", off, "within the predicted range")
        if abs(off) <= PREDICTION_TOLERANCE:
            return Check("near", off, f"outside the predicted range, {abs(off):.0%} "
                         f"{'above' if off > 0 else 'below'} the predicted speed-up "
                         f"(within {PREDICTION_TOLERANCE:.0%})")
        return Check("missed", off, f"missed the prediction: {abs(off):.0%} "
                     f"{'above' if off > 0 else 'below'} the predicted speed-up (more than "
                     f"{PREDICTION_TOLERANCE:.0%})")

    def measured_text(self) -> str:
        if self.speedup_low == self.speedup_high:  # one run each: no spread measured
            return f"{self.speedup:.2f}x"
        return f"{self.speedup:.2f}x ({self.speedup_low:.2f}-{self.speedup_high:.2f})"

    def lines(self) -> list[str]:
        """The terminal text: what was swapped, both sides' times, and the check."""
        out = [f"swapped: {s.sentence()}" for s in self.swaps]
        out += [f"left alone: {pool}" for pool in self.left]
        out.append(f"original: {self.original.text()}")
        out.append(f"swapped:  {self.swapped.text()}")
        predicted = (f"predicted {self.predicted.text()}" if self.predicted is not None
                     else "no prediction")
        out.append(f"speed-up: {self.measured_text()} measured, {predicted} for {self.model}: "
                   f"{self.check.sentence}")
        busy = self.original.busy_runs + self.swapped.busy_runs
        if busy:
            runs = len(self.original.runs_s) + len(self.swapped.runs_s)
            out.append(f"{busy} of {runs} runs were busy: other programs used more than "
                       f"{BUSY_SHARE:.0%} of the machine's CPU during them")
        return out

    def to_dict(self) -> dict[str, Any]:
        check = self.check
        p = self.predicted
        return {
            "command": list(self.command), "advice": self.advice, "model": self.model,
            "swaps": [s.to_dict() for s in self.swaps], "left_alone": list(self.left),
            "original": self.original.to_dict(), "swapped": self.swapped.to_dict(),
            "measured": {"speedup": round(self.speedup, 3),
                         "low": round(self.speedup_low, 3),
                         "high": round(self.speedup_high, 3)},
            "predicted": ({"speedup": round(p.speedup, 3), "low": round(p.low, 3),
                           "high": round(p.high, 3), "basis": _basis(p)} if p is not None
                          else {"speedup": None, "reason": self.no_prediction}),
            "check": {"verdict": check.verdict,
                      "off_by": None if check.off_by is None else round(check.off_by, 3),
                      "tolerance": PREDICTION_TOLERANCE, "sentence": check.sentence},
            "recordings": {"original": str(self.recordings[0]),
                           "swapped": str(self.recordings[1])},
            "page": str(self.page) if self.page is not None else None,
        }


def _ratio(base_s: float, this_s: float) -> float:
    return base_s / this_s if this_s > 0 else 0.0


def _basis(p: Predicted) -> str:
    from inspector.text.evidence import basis_text  # the text layer needs pandas: when used

    return basis_text(p.basis)
