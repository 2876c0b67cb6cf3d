"""What the recording's machine gives a concurrency model: what k processes running Python at
once get against one alone, what threads taking turns on a GIL cost, what a worker costs to
start. Measured beside the recording (the recorder's calibration, in its meta) where it was;
otherwise stated as an assumption, with a range wide enough to say so.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from inspector.recording.calibration import Calibration

if TYPE_CHECKING:
    from inspector.recording import Recording


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


# A machine where what k processes do together differs by more than this between a calibration
# at the start of a recording and one at its end changed under it. Of twenty calibrations in a
# row with the cores to themselves, 15-18 stayed within 11% of their median; the others were
# 1.1-1.7x, when the host freed its physical cores for a moment (docs/calibration.md). With a
# neighbour's load coming and going, half of consecutive pairs differ by more: that is the
# machine changing, which the flag is for.
CAPACITY_CHANGE_SHARE = 0.25


def capacity_changed(before: Calibration, after: Calibration,
                     share: float = CAPACITY_CHANGE_SHARE) -> bool:
    """Whether what the k processes do together moved by more than `share` between two
    calibrations (at a recording's start and end): the machine changed under the recording.
    Not the speed-up or one process's pace apart: on a host whose vCPUs share physical cores
    they flip together and opposite (one alone at 16 M iterations/s and two at 9 M each, or
    all at 9 M: 1.1x or 2.0x) while what the two do together stays within ~11%."""
    a, b = before.together_iterations_per_s, after.together_iterations_per_s
    return min(a, b) <= 0 or max(a, b) / min(a, b) - 1 > share


@dataclass(frozen=True)
class Capacity:
    """The machine as the predictions use it."""

    usable_cores: float            # what the program may use (affinity, quota)
    processes: int                 # k, the processes the gain was measured with
    process_gain: Range            # k processes at once against one alone
    gil_cost: Range                # threads taking turns: this much more than one thread
    fork_start_s: float            # a forked worker's start to its first result; or, where
    #                                measured (`pooled`), a fork pool's life over its workers
    spawn_start_s: float           # a spawned (or forkserver) worker's
    thread_start_s: float
    measured: bool                 # from a calibration on the recording's machine
    others_busy_cores: float = 0.0  # what other programs used while it measured
    pooled: bool = False           # fork_start_s is a real pool's life, start to end
    pool_fixed_s: float = 0.0      # ... and the pool's own part of it, once per pool
    calibrations: int = 1          # how many calibrations it was measured from (machine())

    def gain(self, n: float, which: str = "mid") -> float:
        """What n processes at once get against one (1 for n <= 1; no more than k's)."""
        if n <= 1 or self.processes <= 1:
            return max(1.0, min(n, 1.0))
        top = getattr(self.process_gain, which)
        share = (min(n, float(self.processes)) - 1) / (self.processes - 1)
        return 1.0 + (top - 1.0) * share


@dataclass(frozen=True)
class Machine:
    """The machine as several calibrations measured it (machine()): one Calibration that
    stands for them all, and how many it stands for."""

    calibration: Calibration
    count: int


def machine(calibrations: Sequence[Calibration]) -> Machine | None:
    """What calibrations made on one machine over a while (a comparison's recordings, each
    calibrated at its start and end) measured together, as one Calibration. A snapshot of
    ~150 ms reads one moment of a host whose pace flips within seconds: one process alone ran
    at 9 or 16 M iterations/s here, as the host's other tenants came and went, while what two
    did together stayed within ~11% (docs/calibration.md). A run of several seconds gets the
    pace averaged over its flips, so the paces are averaged, not their median taken (which
    lands on one of the two): one process's pace is the mean of the calibrations' paces, what
    k did together the mean of theirs, the speed-up the one over the other. Its range is the
    middle half of what the calibrations gave (their quartiles), not the extremes of single
    rounds: a round of ~50 ms catches one moment of the host at 1.0x or 2.0x, a run of
    seconds several; with the extremes, every calibration together read 0.95-1.95x and the
    advice for the demo's sequential CPU job was `keep` while processes measured 1.5-1.8x.
    What a GIL hand-off and a worker's start cost are medians and quartiles likewise.
    Calibrations of the most common k only. None for no calibration."""
    if not calibrations:
        return None
    ks = [c.processes for c in calibrations]
    k = max(set(ks), key=lambda n: (ks.count(n), n))
    cals = [c for c in calibrations if c.processes == k]
    if len(cals) == 1:
        return Machine(cals[0], 1)
    alone = statistics.fmean(c.iterations_per_s for c in cals)
    together = statistics.fmean(c.together_iterations_per_s for c in cals)

    def middle(values: Sequence[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.median(known) if known else None

    def quartiles(values: Sequence[float | None]) -> tuple[float | None, float | None]:
        known = sorted(v for v in values if v is not None)
        if len(known) < 2:
            return (known[0], known[0]) if known else (None, None)
        q = statistics.quantiles(known, n=4, method="inclusive")
        return q[0], q[2]

    speedup = together / alone if alone > 0 else statistics.median(
        c.process_speedup for c in cals)
    low, high = quartiles([c.process_speedup for c in cals])
    handoff_low, handoff_high = quartiles([c.gil_handoff_cost for c in cals])
    pooled = replace(
        cals[0],
        wall_s=sum(c.wall_s for c in cals), cpu_s=sum(c.cpu_s for c in cals),
        rounds=sum(c.rounds for c in cals),
        process_speedup=speedup,
        process_speedup_low=min(speedup, low if low is not None else speedup),
        process_speedup_high=max(speedup, high if high is not None else speedup),
        process_cpu_inflation=statistics.fmean(c.process_cpu_inflation for c in cals),
        iterations_per_s=alone, gil_handoffs=sum(c.gil_handoffs for c in cals),
        gil_handoff_s=middle([c.gil_handoff_s for c in cals]),
        gil_handoff_cost=middle([c.gil_handoff_cost for c in cals]),
        gil_handoff_cost_low=handoff_low, gil_handoff_cost_high=handoff_high,
        worker_start_fork_s=middle([c.worker_start_fork_s for c in cals]),
        worker_start_spawn_s=middle([c.worker_start_spawn_s for c in cals]),
        interpreter_start_s=middle([c.interpreter_start_s for c in cals]),
        thread_start_s=middle([c.thread_start_s for c in cals]),
        others_busy_cores=statistics.fmean(c.others_busy_cores for c in cals),
        method=f"{len(cals)} calibrations together: {cals[0].method}",
        pool_worker_fork_s=middle([c.pool_worker_fork_s for c in cals]),
        pool_fixed_fork_s=middle([c.pool_fixed_fork_s for c in cals]))
    return Machine(pooled, len(cals))


def capacity_of(cal: Calibration | Machine | None, usable_cores: float) -> Capacity:
    """From the recording's calibration (the recorder's measurement), or several pooled
    (machine()), or assumed."""
    k = max(1, int(math.floor(usable_cores + 1e-9)))
    count = cal.count if isinstance(cal, Machine) else 1
    if isinstance(cal, Machine):
        cal = cal.calibration
    if cal is not None and cal.processes >= 1:
        processes = cal.processes
        # k processes never get more than k cores: a round that did ran its one alone at
        # the host's slow pace (docs/calibration.md), not two cores' worth more.
        gain = Range(*(min(float(processes), max(1.0, g)) for g in (
            cal.process_speedup_low, cal.process_speedup, cal.process_speedup_high)))
        if processes > k:  # measured with more processes than this program may use
            scale = (k - 1) / (processes - 1)
            gain = Range(*(1 + (g - 1) * scale for g in (gain.low, gain.mid, gain.high)))
            processes = k
        handoff = (Range(cal.gil_handoff_cost_low or 0.0, cal.gil_handoff_cost,
                         cal.gil_handoff_cost_high or cal.gil_handoff_cost)
                   if cal.gil_handoff_cost is not None else Range.exactly(0.0))
        cost = _gil_cost(handoff, gain, processes)
        return Capacity(
            usable_cores=usable_cores, processes=processes, process_gain=gain,
            gil_cost=Range(max(0.0, cost.low), max(0.0, cost.mid), max(0.0, cost.high)),
            # a program's processes come in a pool (its pipes, threads, workers' ends):
            # that measured, where it was, else the bare fork
            fork_start_s=_seconds(cal.pool_worker_fork_s or cal.worker_start_fork_s,
                                  ASSUMED_FORK_START_S),
            spawn_start_s=_seconds(cal.worker_start_spawn_s or cal.interpreter_start_s,
                                   ASSUMED_SPAWN_START_S),
            thread_start_s=_seconds(cal.thread_start_s, ASSUMED_THREAD_START_S),
            measured=True, others_busy_cores=max(0.0, cal.others_busy_cores),
            pooled=cal.pool_worker_fork_s is not None,
            pool_fixed_s=_seconds(cal.pool_fixed_fork_s, 0.0), calibrations=count)
    extra = k - 1
    return Capacity(
        usable_cores=usable_cores, processes=k,
        process_gain=Range(1 + extra * ASSUMED_EXTRA_CORE.low, 1 + extra * ASSUMED_EXTRA_CORE.mid,
                           1 + extra * ASSUMED_EXTRA_CORE.high),
        gil_cost=ASSUMED_GIL_COST, fork_start_s=ASSUMED_FORK_START_S,
        spawn_start_s=ASSUMED_SPAWN_START_S, thread_start_s=ASSUMED_THREAD_START_S,
        measured=False)


def _gil_cost(handoff: Range, gain: Range, processes: int) -> Range:
    """What threads taking turns on a GIL cost over one thread doing the same work: the
    hand-offs' own gaps, and the pace. At each hand-off the GIL moves to a thread woken on
    another core, so two such threads keep two cores awake, and on a host whose cores slow
    each other down when both run (shared physical cores: 2 vCPUs here give 1.1-2.0x for two
    processes) Python runs at the pace of one of two processes together, E(2)/2 of its pace
    alone. Measured here, 8 interleaved rounds of 0.8 s of work: two threads 0.83x of one,
    E(2)/2 = 0.76; the demo's CPU job, unrecorded, 0.78x against 0.77. On a machine whose
    cores do not share (E(2) = 2) the pace costs nothing; on one usable core, nothing either."""
    if processes < 2:
        return handoff
    two = [1.0 + (g - 1.0) / (processes - 1) for g in (gain.high, gain.mid, gain.low)]
    pace = [max(0.0, 2.0 / e - 1.0) for e in two]  # the fastest E gives the least cost
    return Range(handoff.low + pace[0], handoff.mid + pace[1], handoff.high + pace[2])


def _finite(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(x)


def _seconds(x: Any, default: float) -> float:
    v = _finite(x)
    return default if v is None or v < 0 else v


@dataclass(frozen=True)
class MachineChange:
    """What k processes did together at each calibration of a series of recordings (each
    one's start and, where measured, its end), and whether that moved beyond the share."""

    capacities: tuple[float, ...]  # iterations per second, k processes together
    changed: bool


def machine_change(recordings: Sequence[Recording],
                   share: float = CAPACITY_CHANGE_SHARE) -> MachineChange | None:
    """Across recordings made one after another (the demo's runs): whether the machine's
    capacity changed over them, by more than `share` between the median of the first third
    of their calibrations and that of the last third (one recording alone: its start and
    end). Medians, because one calibration in twenty reads 1.5x the rest when the host frees
    its physical cores for a moment (docs/calibration.md): a blip, not a changed machine.
    None when no recording was calibrated."""
    taken = [c for rec in recordings for c in (rec.meta.calibration, rec.meta.calibration_end)
             if c is not None]
    if not taken:
        return None
    rates = tuple(c.together_iterations_per_s for c in taken)
    third = max(1, len(rates) // 3)
    first, last = statistics.median(rates[:third]), statistics.median(rates[-third:])
    return MachineChange(rates, min(first, last) <= 0
                         or max(first, last) / min(first, last) - 1 > share)
