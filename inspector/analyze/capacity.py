"""What the recording's machine gives a concurrency model: what k processes running Python at
once get against one alone, what threads taking turns on a GIL cost, what a worker costs to
start. Measured beside the recording (the recorder's calibration, in its meta) where it was;
otherwise stated as an assumption, with a range wide enough to say so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Range:
    """A measured or assumed quantity: its middle and the lowest and highest it may be."""

    low: float
    mid: float
    high: float

    @staticmethod
    def exactly(x: float) -> Range:
        return Range(x, x, x)


# Without a calibration (an older recording, `--no-calibrate`): an extra core gives between
# half of one (a shared or busy host: 2 vCPUs here have given 1.14-1.99x for 2 processes) and
# all of one. Said as an assumption wherever it is used.
ASSUMED_EXTRA_CORE = Range(0.5, 0.75, 1.0)
# ... and threads taking turns on a GIL cost between nothing and half again the work (the
# spread 2 vCPUs here showed: 0.57-1.00x of one thread; MEASUREMENTS.md).
ASSUMED_GIL_COST = Range(0.0, 0.2, 0.5)
# ... and a worker process starts in between a fork's few milliseconds and an interpreter's
# start with its imports (spawn): both are the program's to choose.
ASSUMED_FORK_START_S = 0.01
ASSUMED_SPAWN_START_S = 0.1
ASSUMED_THREAD_START_S = 0.0002


@dataclass(frozen=True)
class Capacity:
    """The machine as the predictions use it."""

    usable_cores: float            # what the program may use (affinity, quota)
    processes: int                 # k, the processes the gain was measured with
    process_gain: Range            # k processes at once against one alone
    gil_cost: Range                # threads taking turns: this much more than one thread
    fork_start_s: float            # a forked worker's start to its first result
    spawn_start_s: float           # a spawned (or forkserver) worker's
    thread_start_s: float
    measured: bool                 # from a calibration on the recording's machine
    others_busy_cores: float = 0.0  # what other programs used while it measured

    def gain(self, n: float, which: str = "mid") -> float:
        """What n processes at once get against one (1 for n <= 1; no more than k's)."""
        if n <= 1 or self.processes <= 1:
            return max(1.0, min(n, 1.0))
        top = getattr(self.process_gain, which)
        share = (min(n, float(self.processes)) - 1) / (self.processes - 1)
        return 1.0 + (top - 1.0) * share


def capacity_of(calibration: Mapping[str, Any] | None, usable_cores: float) -> Capacity:
    """From a recording's meta `calibration` (the recorder's measurement), or assumed."""
    k = max(1, int(math.floor(usable_cores + 1e-9)))
    cal = calibration or {}
    gain = _range(cal, "process_speedup")
    if gain is not None and int(cal.get("processes") or 0) >= 1:
        processes = int(cal["processes"])
        # Measured with more processes than this program may use: scale it down to k.
        if processes > k:
            scale = (k - 1) / (processes - 1) if processes > 1 else 0.0
            gain = Range(*(1 + (g - 1) * scale for g in (gain.low, gain.mid, gain.high)))
            processes = k
        cost = _range(cal, "gil_handoff_cost") or ASSUMED_GIL_COST
        return Capacity(
            usable_cores=usable_cores, processes=processes, process_gain=gain,
            gil_cost=Range(max(0.0, cost.low), max(0.0, cost.mid), max(0.0, cost.high)),
            fork_start_s=_seconds(cal.get("worker_start_fork_s"), ASSUMED_FORK_START_S),
            spawn_start_s=_seconds(cal.get("worker_start_spawn_s")
                                   or cal.get("interpreter_start_s"), ASSUMED_SPAWN_START_S),
            thread_start_s=_seconds(cal.get("thread_start_s"), ASSUMED_THREAD_START_S),
            measured=True, others_busy_cores=_seconds(cal.get("others_busy_cores"), 0.0))
    extra = k - 1
    return Capacity(
        usable_cores=usable_cores, processes=k,
        process_gain=Range(1 + extra * ASSUMED_EXTRA_CORE.low, 1 + extra * ASSUMED_EXTRA_CORE.mid,
                           1 + extra * ASSUMED_EXTRA_CORE.high),
        gil_cost=ASSUMED_GIL_COST, fork_start_s=ASSUMED_FORK_START_S,
        spawn_start_s=ASSUMED_SPAWN_START_S, thread_start_s=ASSUMED_THREAD_START_S,
        measured=False)


def _finite(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(x)


def _range(cal: Mapping[str, Any], key: str) -> Range | None:
    mid = _finite(cal.get(key))
    if mid is None or mid < 0:
        return None
    low = _finite(cal.get(f"{key}_low"))
    high = _finite(cal.get(f"{key}_high"))
    low = mid if low is None else min(low, mid)
    high = mid if high is None else max(high, mid)
    return Range(low, mid, high)


def _seconds(x: Any, default: float) -> float:
    v = _finite(x)
    return default if v is None or v < 0 else v
