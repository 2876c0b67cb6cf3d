"""Where the program's wall time went, moment by moment: at each sampling interval, was any
thread of the whole process tree computing (on a CPU, or wanting one: the GIL, the run
queue), or were they all waiting (on I/O, on each other, asleep)? And phases: stretches of
the run whose behaviour differs (parallel, serial, waiting on I/O), each with its share.

Pure functions over `thread_states` (one row per thread per interval) and the process samples.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from inspector.analyze.thresholds import (
    COMPUTING_CORES,
    IO_THREADS,
    MIN_PHASE_S,
    MIN_PHASE_SHARE,
    PARALLEL_CORES,
    SMOOTH_INTERVALS,
)

# Interval labels, as the phases name them.
PARALLEL = "parallel"    # computing on more than one core at once
SERIAL = "serial"        # computing, on one core's worth (one thread, or threads taking turns)
IO = "io"                # nothing computing; waiting on I/O
WAITING = "waiting"      # nothing computing or doing I/O: locks, children, sleeps, imports
LABELS = (PARALLEL, SERIAL, IO, WAITING)


@dataclass(frozen=True)
class WallTime:
    """The run's wall clock split by what the whole tree did at each moment (seconds)."""

    wall_s: float
    computing_s: float          # some thread computed or wanted a CPU
    parallel_s: float           # ... on more than PARALLEL_CORES at once
    io_s: float                 # nothing computed; some thread waited on I/O
    waiting_s: float            # the rest: locks, joins, children's start-up, sleeps
    cores_at_once_mean: float   # cores used at once, mean over the computing intervals
    cores_at_once_peak: float
    busy_processes_mean: float  # processes using half a core or more at once (computing)
    # Of the core time the threads wanted while computing (on a CPU or runnable), the share
    # they got: below 1 when other programs (or too many threads) kept the cores busy.
    core_share: float = 1.0
    # Over the computing moments: threads runnable at once (on a CPU or queued for one, not
    # waiting for the GIL) and processes wanting half a core or more at once. They say how
    # many cores the program's structure could use, whatever the machine gave it.
    runnable_mean: float = 1.0
    wanting_processes_mean: float = 1.0
    io_waits_mean: float = 1.0  # I/O waits in flight at once, over the waiting-on-I/O moments
    # CPU the tree used in the moments it waited on I/O: making each request and reading its
    # answer. Overlapping the waits does not overlap this work on one GIL.
    io_cpu_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 3) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Phase:
    start_s: float
    end_s: float
    kind: str                   # one of LABELS
    share: float                # of the run's wall time
    cores_mean: float           # cores used at once, mean over the phase

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}


def intervals(states: pd.DataFrame, process_samples: pd.DataFrame | None = None,
              coded: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """One row per sampling tick of the whole tree: t_s, dt_s, demand (cores wanted),
    cores (cores used at once: the processes' measured CPU where sampled, else the threads'),
    io, lock, sleep (threads' worth of each wait), busy_processes and the interval's label.
    `coded`: the rows' tick_codes, where the caller has them (codes into more times than
    the rows have are fine: only those the rows have make rows)."""
    if states.empty:
        return pd.DataFrame(columns=["t_s", "dt_s", "demand", "cores", "io", "lock", "sleep",
                                     "cpu", "rq", "busy_processes", "wanting_processes",
                                     "runnable", "label"])
    # Waiting for a core counts as wanting one in the share of its other time the thread
    # wanted one (ran, or waited for the GIL) rather than blocked (I/O, a lock, a sleep):
    # what it would have done with the core, at any sampling interval. A thread that only
    # computes wants all of its wait; an I/O thread woken for a byte on a busy machine
    # queues for a core too, but would run for microseconds and block again: other programs'
    # load must not make its waits look like work. (Queued all the interval: all of it.)
    wants = states["cpu_s"] + states["gil_s"]
    blocked = states["io_s"] + states["lock_s"] + states["sleep_s"] + states["other_s"]
    queued = states["runqueue_s"] * (wants / (wants + blocked)).where(wants + blocked > 0, 1.0)
    demand = states["cpu_s"] + states["gil_s"] + queued
    if "importing" in states.columns:  # importing modules is start-up, not the work
        demand = demand.where(~states["importing"].to_numpy(dtype=bool), 0.0)
    if "startup_s" in states.columns:  # nor is the interpreter's start before its first work
        dt_all = states["dt_s"].where(states["dt_s"] > 0)
        demand = demand * (1.0 - (states["startup_s"] / dt_all).fillna(0.0)).clip(lower=0.0)
    per_t = pd.DataFrame({
        "dt": states["dt_s"].to_numpy(),
        "demand": demand.to_numpy(), "cpu": states["cpu_s"].to_numpy(),
        "io": states["io_s"].to_numpy(), "lock": states["lock_s"].to_numpy(),
        "sleep": states["sleep_s"].to_numpy(), "rq": states["runqueue_s"].to_numpy(),
    })
    tick, ticks = tick_codes(states["t_s"].to_numpy()) if coded is None else coded
    proc, _ = pd.factorize(states["proc_id"].to_numpy(), sort=True)
    # (tick, process) pairs as one code, in the order of ticks then processes
    pair, pairs = pd.factorize(np.where((tick >= 0) & (proc >= 0),
                                        tick * (int(proc.max(initial=0)) + 1) + proc, -1),
                               sort=True)
    pairs_tick = pairs // (int(proc.max(initial=0)) + 1)
    by_proc = per_t.groupby(_groups(pair, len(pairs)), observed=True, sort=True).agg(
        cpu=("cpu", "sum"), dt=("dt", "max"), demand=("demand", "sum"))
    held = by_proc.index.to_numpy(dtype=np.intp)  # the pairs that have rows (all of them)
    busy = np.bincount(pairs_tick[held][(by_proc["cpu"] >= 0.5 * by_proc["dt"]).to_numpy()],
                       minlength=len(ticks))
    wanting = np.bincount(
        pairs_tick[held][(by_proc["demand"] >= 0.5 * by_proc["dt"]).to_numpy()],
        minlength=len(ticks))
    g = by_tick(per_t, (tick, ticks), dt_s=("dt", "max"), demand=("demand", "sum"),
                cpu=("cpu", "sum"), io=("io", "sum"), lock=("lock", "sum"),
                sleep=("sleep", "sum"), rq=("rq", "sum"))
    seen = np.searchsorted(ticks, g.index.to_numpy())
    busy, wanting = pd.Series(busy[seen], index=g.index), pd.Series(wanting[seen], index=g.index)
    dt = g["dt_s"].where(g["dt_s"] > 0)
    out = pd.DataFrame({"t_s": g.index.to_numpy(dtype="float64"),
                        "dt_s": g["dt_s"].to_numpy()})
    for col in ("demand", "io", "lock", "sleep", "cpu", "rq"):
        out[col] = (g[col] / dt).fillna(0.0).to_numpy()
    threads_cores = (g["cpu"] / dt).fillna(0.0)
    measured = _measured_cores(process_samples, g.index)
    cores = threads_cores if measured is None else measured.where(measured.notna(),
                                                                   threads_cores)
    out["cores"] = cores.to_numpy(dtype="float64")
    out["busy_processes"] = busy.to_numpy()
    out["wanting_processes"] = wanting.to_numpy()
    # Runnable at once (on a CPU or queued for one; not waiting for the GIL): what the tree
    # could run in parallel given free cores, whatever other programs left it.
    out["runnable"] = ((g["cpu"] + g["rq"]) / dt).fillna(0.0).to_numpy()
    out["label"] = _labels(out)
    return out


def tick_codes(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's sample time as a code into the distinct times, sorted (NaN: -1), and those
    times: grouping rows by the codes gives what grouping them by the times does (the same
    groups, in the same order, each summed in row order), with the floats hashed once."""
    codes, uniques = pd.factorize(t)
    order = np.argsort(uniques, kind="stable")
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order), dtype=np.intp)
    if len(rank):
        codes = np.where(codes >= 0, rank[np.maximum(codes, 0)], -1)
    return codes, np.asarray(uniques)[order]


def by_tick(frame: pd.DataFrame, t: np.ndarray | tuple[np.ndarray, np.ndarray],
            **aggregates: Any) -> pd.DataFrame:
    """`frame.groupby(t).agg(**aggregates)` for rows' sample times `t` (or their
    tick_codes), as pandas gives it (index `t_s`, sorted), at a fraction of the cost."""
    tick, ticks = tick_codes(t) if isinstance(t, np.ndarray) else t
    g = frame.groupby(_groups(tick, len(ticks)), observed=True, sort=True).agg(**aggregates)
    g.index = pd.Index(ticks[g.index.to_numpy(dtype=np.intp)], dtype="float64", name="t_s")
    return g


def _groups(codes: np.ndarray, n: int) -> pd.Categorical:
    """Dense codes as a categorical, which pandas groups by without hashing them again."""
    return pd.Categorical.from_codes(codes, categories=pd.RangeIndex(n))


def _measured_cores(process_samples: pd.DataFrame | None, ticks: pd.Index
                    ) -> pd.Series | None:
    """The tree's cores used at each tick, summed over processes from /proc/PID/stat."""
    if process_samples is None or process_samples.empty \
            or "cpu_percent" not in process_samples.columns:
        return None
    ps = process_samples[["t_s", "cpu_percent"]].dropna()
    if ps.empty:
        return None
    summed = ps.groupby("t_s")["cpu_percent"].sum() / 100.0
    return summed.reindex(ticks)


def _labels(iv: pd.DataFrame) -> np.ndarray:
    computing = iv["demand"].to_numpy() >= COMPUTING_CORES
    parallel = computing & (np.maximum(iv["cores"].to_numpy(), iv["runnable"].to_numpy())
                            > PARALLEL_CORES)
    io = ~computing & (iv["io"].to_numpy() >= IO_THREADS)
    return np.select([parallel, computing, io], [PARALLEL, SERIAL, IO], default=WAITING)


def wall_time(iv: pd.DataFrame) -> WallTime:
    """Totals of `intervals(...)`: where the wall clock went."""
    if iv.empty:
        return WallTime(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    dt = iv["dt_s"].to_numpy(dtype="float64")
    label = iv["label"].to_numpy()
    computing = (label == PARALLEL) | (label == SERIAL)
    cores = iv["cores"].to_numpy(dtype="float64")
    busy = iv["busy_processes"].to_numpy(dtype="float64")
    weight = dt[computing]
    return WallTime(
        wall_s=float(dt.sum()),
        computing_s=float(weight.sum()),
        parallel_s=float(dt[label == PARALLEL].sum()),
        io_s=float(dt[label == IO].sum()),
        waiting_s=float(dt[label == WAITING].sum()),
        cores_at_once_mean=_weighted(cores[computing], weight),
        cores_at_once_peak=float(cores.max()) if len(cores) else 0.0,
        busy_processes_mean=_weighted(busy[computing], weight),
        core_share=_core_share(iv, computing),
        runnable_mean=_weighted(iv["runnable"].to_numpy(dtype="float64")[computing], weight),
        wanting_processes_mean=_weighted(
            iv["wanting_processes"].to_numpy(dtype="float64")[computing], weight),
        io_waits_mean=_weighted(iv["io"].to_numpy(dtype="float64")[label == IO],
                                dt[label == IO]),
        io_cpu_s=(float((iv["cpu"].to_numpy(dtype="float64")[label == IO]
                         * dt[label == IO]).sum()) if "cpu" in iv.columns else 0.0),
    )


def _core_share(iv: pd.DataFrame, computing: np.ndarray) -> float:
    if "cpu" not in iv.columns:
        return 1.0
    cpu = float(iv["cpu"].to_numpy()[computing].sum())
    rq = float(iv["rq"].to_numpy()[computing].sum())
    return cpu / (cpu + rq) if cpu + rq > 0 else 1.0


def _weighted(values: np.ndarray, weights: np.ndarray) -> float:
    total = float(weights.sum())
    return float((values * weights).sum() / total) if total > 0 else 0.0


def phases(iv: pd.DataFrame) -> list[Phase]:
    """The run cut where its behaviour changes for long enough; one phase when it never does.
    Labels are smoothed by a majority vote over SMOOTH_INTERVALS, then stretches shorter
    than MIN_PHASE_SHARE of the run (and MIN_PHASE_S) join the neighbour they touch longest."""
    if iv.empty:
        return []
    t = iv["t_s"].to_numpy(dtype="float64")
    dt = iv["dt_s"].to_numpy(dtype="float64")
    cores = iv["cores"].to_numpy(dtype="float64")
    labels = _smooth(iv["label"].to_numpy())
    # runs of equal labels: [start row, end row)
    cut = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    bounds = list(zip(np.r_[0, cut], np.r_[cut, len(labels)]))
    runs: list[tuple[int, int, str]] = [(int(a), int(b), str(labels[a])) for a, b in bounds]
    wall = float(dt.sum())
    floor = max(MIN_PHASE_S, MIN_PHASE_SHARE * wall)
    while len(runs) > 1:
        lengths = [float(dt[a:b].sum()) for a, b, _ in runs]
        i = int(np.argmin(lengths))
        if lengths[i] >= floor:
            break
        # fold the shortest into its longer neighbour
        if i == 0:
            j = 1
        elif i == len(runs) - 1:
            j = i - 1
        else:
            j = i - 1 if lengths[i - 1] >= lengths[i + 1] else i + 1
        lo, hi = min(i, j), max(i, j)
        keep = runs[j][2]
        runs[lo:hi + 1] = [(runs[lo][0], runs[hi][1], keep)]
        # neighbours of the same kind become one
        merged: list[tuple[int, int, str]] = []
        for r in runs:
            if merged and merged[-1][2] == r[2]:
                merged[-1] = (merged[-1][0], r[1], r[2])
            else:
                merged.append(r)
        runs = merged
    out: list[Phase] = []
    for a, b, kind in runs:
        d = dt[a:b]
        out.append(Phase(start_s=float(t[a] - dt[a]), end_s=float(t[b - 1]), kind=kind,
                         share=float(d.sum() / wall) if wall > 0 else 0.0,
                         cores_mean=_weighted(cores[a:b], d)))
    return out


def _smooth(labels: np.ndarray) -> np.ndarray:
    """Each label replaced by the most common one in a centred window (ties keep it)."""
    n = len(labels)
    if n < SMOOTH_INTERVALS:
        return labels
    half = SMOOTH_INTERVALS // 2
    codes = np.array([LABELS.index(x) for x in labels])
    counts = np.zeros((len(LABELS), n))
    for k in range(len(LABELS)):
        hits = np.r_[0, np.cumsum(codes == k)]
        lo = np.clip(np.arange(n) - half, 0, n)
        hi = np.clip(np.arange(n) + half + 1, 0, n)
        counts[k] = hits[hi] - hits[lo]
    best = counts.argmax(axis=0)
    own = counts[codes, np.arange(n)]
    keep_own = own >= counts.max(axis=0)
    return np.array(LABELS, dtype=object)[np.where(keep_own, codes, best)]


def phase_rows(states: pd.DataFrame, phase: Phase) -> pd.DataFrame:
    """The rows of `states` whose interval ends inside `phase`."""
    t = states["t_s"]
    return states[(t > phase.start_s + 1e-9) & (t <= phase.end_s + 1e-9)]
