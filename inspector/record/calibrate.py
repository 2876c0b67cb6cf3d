"""What the recording's machine gives, measured beside the recording in ~0.2 s of CPU: what k
processes running Python at once get against one alone, what a GIL hand-off between two
threads costs, what a worker costs to start. Standard library only: it runs in the recorder.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from inspector.errors import CalibrationError
from inspector.machine_load import CpuMark
from inspector.record.timed_work import (
    ALONE,
    CHUNK_ITERATIONS,
    POOL_SIZES,
    SPLIT,
    Workers,
    iterations_per_cpu_s,
    spawn_like_start,
    thread_start_s,
)
from inspector.recording.calibration import Calibration

# The CPU a worker spends on its slice of Python in one measurement: at most this. What the
# budget leaves after the starts is shared out over the rounds (6-8 ms slices here, where a
# spawn-like start takes a third of 0.2 s), so a worker's start skew and wake-up (0.1-0.3 ms
# on these VMs) stays a few percent of a slice. Two threads splitting a slice hand the GIL over
# once or more: when the first's half ends, and every 5 ms before.
SLICE_S = 0.015
# Below this a slice says more about fork and wake-up latency than about the cores: the
# budget then buys fewer rounds, not shorter ones.
MIN_SLICE_S = 0.004
# Rounds of (1 alone, k together, 2 threads), interleaved: the median of three outvotes one
# burst of foreign load.
ROUNDS = 3
# Starts of a thread (a fraction of a millisecond), median; a forked worker's is each
# worker's own start.
START_TRIES = 3
# A fork's CPU, parent and child, in a recorder-sized process (1-2.5 ms measured here): what
# the plan sets aside for each worker before it can measure it. (A fork of a few hundred MB,
# such as a test runner, costs far more: calibrate from a small process, as the recorder is.)
FORK_CPU_S = 0.002
# What a spawn-like start takes of the budget: 40-50 ms of CPU here on a quiet machine (an
# editable install's .pth finder is 15 of them), up to 95 on a busy one; and the forked pools
# measured in it (1, 1 and 4 workers), ~40 ms more. A budget without room for them beside
# three rounds of the shortest slices leaves them out.
SPAWN_CPU_S = 0.1
# The share of the budget the slices are sized to: a round costs up to ~10% more than its
# slices (a fresh worker's copy-on-write faults, the pace of a busy host changing under it).
PLANNED_SHARE = 0.8
# A round more is run while, costing what the dearest round so far did, it keeps the
# calibration under this share of the budget: the rest absorbs a round dearer still and the
# workers' ends (100 calibrations on this busy host, 5 loads: at most 196 ms of 200 with 0.95
# and the rounds' mean; under load 12 a round's cost jumped enough that the mean let one
# reach 201 ms; with the fork pools measured beside the spawn-like start and 0.9, a fresh CI
# machine's reached 203 ms, forked from a test runner of a few hundred MB).
RUNNING_SHARE = 0.8


def _cpu_used_s() -> float:
    """The calling thread's CPU and that of the children it has waited for: the calibration's
    own, even in a recorder whose other threads are busy."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.thread_time() + children.ru_utime + children.ru_stime


def _plan(available_cpu_s: float, processes: int) -> tuple[int, float]:
    """(rounds, slice CPU s) fitting `available_cpu_s`: full rounds of SLICE_S if they fit,
    else fewer rounds of at least MIN_SLICE_S, else one round of what there is."""
    slices = processes + 2  # 1 alone, k together, 1 split over two threads
    for rounds in range(ROUNDS, 0, -1):
        slice_s = available_cpu_s / (rounds * slices)
        if slice_s >= MIN_SLICE_S:
            return rounds, min(SLICE_S, slice_s)
    return 1, max(0.001, available_cpu_s / slices)


@dataclass
class _Rounds:
    """What the rounds measured, each list one entry a round (hand-offs: a round with any)."""

    slice_s: float
    speedups: list[float] = field(default_factory=list)
    inflations: list[float] = field(default_factory=list)
    alone_walls: list[float] = field(default_factory=list)
    handoff_s: list[float] = field(default_factory=list)
    handoffs: int = 0


def _round(workers: Workers, k: int, out: _Rounds) -> None:
    [alone] = workers.run(ALONE, [0])
    alone_wall = alone[1] - alone[0]
    out.alone_walls.append(alone_wall)
    if k > 1:
        together = workers.run(ALONE, range(k), spread=True)
        wall = max(w[1] for w in together) - min(w[0] for w in together)
        out.speedups.append(k * alone_wall / wall)
        out.inflations.append(statistics.mean(w[2] for w in together) / alone[2])
    [split] = workers.run(SPLIT, [0])
    if split[3] > 0:
        out.handoffs += int(split[3])
        out.handoff_s.append(split[4] / split[3])


def _measure_rounds(k: int, rate: float, budget_cpu_s: float, spent: Callable[[], float]
                    ) -> tuple[_Rounds, Workers]:
    """As many rounds as fit the budget less what `spent()` says is gone, in k workers kept
    for all of them; what they measured and the (closed) workers."""
    planned_cpu_s = budget_cpu_s * PLANNED_SHARE
    rounds, slice_s = _plan(planned_cpu_s - spent() - k * FORK_CPU_S, k)
    measured = _Rounds(slice_s=slice_s)
    workers = Workers(k, max(CHUNK_ITERATIONS, int(rate * slice_s)))
    try:
        dearest = 0.0
        now = spent() + sum(workers.cpu_s)
        for done in range(rounds):
            if done and now + dearest > budget_cpu_s * RUNNING_SHARE:
                break  # a round more, costing what the dearest so far did, would not fit
            _round(workers, k, measured)
            before, now = now, spent() + sum(workers.cpu_s)
            dearest = max(dearest, now - before)
    finally:
        workers.close()
    return measured, workers


def calibrate(usable_cores: int | None = None, budget_cpu_s: float = 0.2, *,
              measure_starts: bool = True) -> Calibration:
    """Measures this machine within `budget_cpu_s` of CPU (its workers included): k =
    min(usable_cores, the machine's CPUs) processes, where they may run (usable_cores defaults
    to the CPUs the calling process may use). `measure_starts=False` leaves out the thread and
    spawn-like starts: a repeat at a recording's end needs only the capacity. A budget too
    small for a spawn-like start (the dearest part) beside three short rounds leaves it out.
    Its workers are forked from the calling process: call it before starting threads where
    you can."""
    if budget_cpu_s <= 0 or (usable_cores is not None and usable_cores < 1):
        raise CalibrationError(f"a calibration needs a budget above 0 s and 1 usable core or "
                               f"more (got {budget_cpu_s} s, {usable_cores} cores)")
    if usable_cores is None:
        usable_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    k = min(usable_cores, os.cpu_count() or 1)
    taken_at, wall0, cpu0, mark = time.time(), time.monotonic(), _cpu_used_s(), CpuMark.now()
    rate = iterations_per_cpu_s()
    thread_s = spawn = None
    spawn_fits = (budget_cpu_s * PLANNED_SHARE
                  >= SPAWN_CPU_S + ROUNDS * (k + 2) * MIN_SLICE_S + k * FORK_CPU_S)
    if measure_starts:
        thread_s = statistics.median(thread_start_s() for _ in range(START_TRIES))
        spawn = spawn_like_start() if spawn_fits else None
    measured, workers = _measure_rounds(k, rate, budget_cpu_s, lambda: _cpu_used_s() - cpu0)

    interval = sys.getswitchinterval()
    costs = [c / interval for c in measured.handoff_s]
    speedups = measured.speedups
    wall_s = time.monotonic() - wall0
    starts_note = "fork: each worker's fork to its first result, median"
    if measure_starts:
        starts_note += (f"; {START_TRIES} threads, median; " +
                        ("one spawn-like `python -c` importing multiprocessing's spawn "
                         "modules (no re-import of a program), in it fork pools of "
                         f"1, 1 and {POOL_SIZES[1]} workers from creation to join"
                         if spawn_fits else
                         "no spawn-like start (the budget was too small for it)"))
    return Calibration(
        taken_at=taken_at, wall_s=wall_s, cpu_s=_cpu_used_s() - cpu0,
        budget_cpu_s=budget_cpu_s, processes=k, rounds=len(measured.alone_walls),
        slice_cpu_s=measured.slice_s,
        process_speedup=statistics.median(speedups) if speedups else 1.0,
        process_speedup_low=min(speedups, default=1.0),
        process_speedup_high=max(speedups, default=1.0),
        process_cpu_inflation=(statistics.median(measured.inflations)
                               if measured.inflations else 1.0),
        iterations_per_s=workers.iterations / statistics.median(measured.alone_walls),
        gil_switch_interval_s=interval, gil_handoffs=measured.handoffs,
        gil_handoff_s=statistics.median(measured.handoff_s) if measured.handoff_s else None,
        gil_handoff_cost=statistics.median(costs) if costs else None,
        gil_handoff_cost_low=min(costs, default=None),
        gil_handoff_cost_high=max(costs, default=None),
        worker_start_fork_s=statistics.median(workers.start_s),
        worker_start_spawn_s=spawn.spawn_s if spawn else None,
        interpreter_start_s=spawn.interpreter_s if spawn else None,
        pool_worker_fork_s=spawn.pool_worker_s if spawn else None,
        pool_fixed_fork_s=spawn.pool_fixed_s if spawn else None,
        thread_start_s=thread_s,
        others_busy_cores=mark.foreign_share(wall_s) * (os.cpu_count() or 1),
        method=(f"{len(measured.alone_walls)} rounds of {k} forked workers, each slice "
                f"{measured.slice_s * 1e3:.1f} ms of pure Python: 1 alone, {k} at once, 1 "
                f"split over 2 threads; medians. Starts: {starts_note}."),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m inspector.record.calibrate [--usable-cores N] [--budget-cpu-s S]`: the JSON."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m inspector.record.calibrate",
                                     description=__doc__)
    parser.add_argument("--usable-cores", type=int, default=None)
    parser.add_argument("--budget-cpu-s", type=float, default=0.2)
    parser.add_argument("--no-starts", action="store_true",
                        help="leave out the worker starts (the capacity only)")
    args = parser.parse_args(argv)
    try:
        c = calibrate(args.usable_cores, args.budget_cpu_s, measure_starts=not args.no_starts)
    except CalibrationError as e:  # a module's own command line, like cli.py
        print(f"calibrate: {e}", file=sys.stderr)
        return 1
    print(json.dumps(c.to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
