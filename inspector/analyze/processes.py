"""Per-process facts: what each process's threads did interval by interval, whether they
competed for one core under a GIL or ran in parallel, and the process's totals. Also the
helpers every judgement shares (working threads, state totals, the bound of a wall clock).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from inspector.analyze import wall as wallmod
from inspector.analyze.model import ProcessFacts
from inspector.analyze.states import STATES
from inspector.analyze.thresholds import (
    BOUND_SHARE,
    BUSY_CPU_SHARE,
    BUSY_PROCESS_CORES,
    GIL_BUSY_SHARE,
    GIL_WAIT_SHARE,
    HUNGRY_CPU_SHARE,
    IDLE_SHARE,
    IDLE_THREAD_CPU_S,
    IDLE_THREAD_SHARE,
    IDLE_THREAD_WAKES,
    MIN_INTERVALS,
    MIN_TIME_SHARE,
    MIN_USABLE_FOR_PROCESSES,
    NEAR_ONE_CORE,
    PARALLEL_CORES,
    PARALLEL_MIN_INTERVALS,
    WANT_CPU_SHARE,
)
from inspector.analyze.vocabulary import Bound
from inspector.analyze.wall import WallTime
from inspector.recording import Recording


@dataclass(frozen=True)
class Contention:
    """What the intervals of one process show about threads competing for the CPU."""

    busy_intervals: int = 0          # the process used >= BUSY_PROCESS_CORES
    contended_intervals: int = 0     # >= 2 threads wanted the CPU
    contended_cores: float = 0.0     # mean cores used in those intervals
    contended_gil_share: float = 0.0  # GIL wait / CPU demand in those intervals
    wanting_threads: int = 0         # most threads wanting the CPU in one interval
    parallel_intervals: int = 0      # > PARALLEL_CORES used by >= 2 threads busy on a CPU
    parallel_cores: float = 0.0      # mean cores used in those intervals
    gil_limited: bool = False
    parallel_threads: bool = False
    # in PARALLEL_MIN_INTERVALS or more, > PARALLEL_CORES threads runnable at once (on a CPU
    # or queued for one, each half the interval or more), and not GIL-limited: none of them
    # waited for a GIL then, whatever cores they got
    runnable_together: bool = False


class ProcessJudge:
    """What every per-process judgement needs, computed once for the recording."""

    def __init__(self, rec: Recording, usable: float) -> None:
        self.rec = rec
        self.usable = usable
        self.proc_cpu = _process_cpu(rec.process_samples)
        self.gil_held = _gil_held_share(getattr(rec, "gil_samples", None))
        self.gil_by_proc = {int(r.proc_id): (bool(r.is_python) and r.python_gil != "disabled")
                            for r in rec.processes.itertuples(index=False)}

    def processes(self, states: pd.DataFrame
                  ) -> tuple[list[ProcessFacts], dict[int, Contention]]:
        facts: list[ProcessFacts] = []
        contention: dict[int, Contention] = {}
        states_of = rows_by_process(states)
        for row in self.rec.processes.itertuples(index=False):
            pid_states = states_of(row.proc_id)
            # its sample times factorized once, for both of its groupings by tick
            ticks = wallmod.tick_codes(pid_states["t_s"].to_numpy())
            held = self.gil_held.get(int(row.proc_id))
            c = _contention(pid_states, self.proc_cpu.get(int(row.proc_id)), self.usable,
                            self.gil_by_proc.get(int(row.proc_id), False), held, ticks)
            contention[int(row.proc_id)] = c
            facts.append(_process_facts(row, self.rec.process_samples, pid_states, c, held,
                                        ticks))
        return facts, contention



def working_rows(states: pd.DataFrame) -> pd.DataFrame:
    """`states` without the threads that never ran (idle listeners, parked workers): their
    waits, from the first sample to the last, bound nothing."""
    keep = working_mask(states)
    return states if keep is None else states[keep]


def working_mask(states: pd.DataFrame) -> np.ndarray | None:
    """The rows working_rows keeps; None: all of them."""
    if states.empty:
        return None
    ran = states["cpu_s"] + states["gil_s"] + states["runqueue_s"]
    per = pd.DataFrame({"ran": ran, "dt": states["dt_s"], "proc_id": states["proc_id"],
                        "tid": states["tid"], "woke": (ran > 0).astype("int64")}
                       ).groupby(["proc_id", "tid"]).sum()
    idle = per[(per["ran"] < IDLE_THREAD_CPU_S) & (per["ran"] < IDLE_THREAD_SHARE * per["dt"])
               & (per["woke"] <= IDLE_THREAD_WAKES)]
    if idle.empty:
        return None
    keys = pd.MultiIndex.from_arrays([states["proc_id"], states["tid"]])
    return np.asarray(~keys.isin(idle.index), dtype=bool)


def rows_by_process(states: pd.DataFrame) -> Callable[[Any], pd.DataFrame]:
    """proc_id -> its rows of `states`. thread_states gives them grouped by process: then
    each process's rows are a slice (a view), not a filtered copy of the whole frame."""
    proc_ids = states["proc_id"].to_numpy()
    if not states["proc_id"].is_monotonic_increasing:
        return lambda proc_id: states[proc_ids == proc_id]

    def rows(proc_id: Any) -> pd.DataFrame:
        lo = np.searchsorted(proc_ids, proc_id, side="left")
        hi = np.searchsorted(proc_ids, proc_id, side="right")
        return states.iloc[lo:hi]

    return rows


def _process_cpu(psamp: pd.DataFrame) -> dict[int, pd.Series]:
    """Per process: cores used in the interval ending at each t_s (measured, /proc stat)."""
    out: dict[int, pd.Series] = {}
    if psamp.empty:
        return out
    for proc_id, g in psamp.groupby("proc_id", sort=False):
        s = (g.set_index("t_s")["cpu_percent"].astype("float64") / 100.0).dropna()
        out[int(proc_id)] = s[~s.index.duplicated()]
    return out


def _gil_held_share(gil: pd.DataFrame | None) -> dict[int, float]:
    """Per process: the share of py-spy --gil samples in which some thread held the GIL."""
    if gil is None or gil.empty or "samples_total" not in gil.columns:
        return {}
    g = gil.dropna(subset=["proc_id"])
    # rows with tid 0 count the samples in which nobody held the GIL (docs/recording-format.md)
    g = g.assign(held=g["samples"].where(g["tid"] != 0, 0))
    runs = g.groupby(["proc_id", "t_s"]).agg(held=("held", "sum"),
                                             total=("samples_total", "max"))
    runs = runs[runs["total"] > 0]
    out: dict[int, float] = {}
    for proc_id, r in runs.groupby(level=0):
        out[int(proc_id)] = float(min(1.0, r["held"].sum() / r["total"].sum()))
    return out


def _contention(st: pd.DataFrame, cores: pd.Series | None, usable_cores: float,
                gil_enabled: bool, gil_held: float | None = None,
                ticks: tuple[np.ndarray, np.ndarray] | None = None) -> Contention:
    if st.empty:
        return Contention()
    dt = st["dt_s"]
    want = (st["cpu_s"] + st["gil_s"] + st["runqueue_s"]) >= WANT_CPU_SHARE * dt
    on_cpu = st["cpu_s"] >= BUSY_CPU_SHARE * dt
    runnable = st["cpu_s"] + st["runqueue_s"]
    per_t = wallmod.by_tick(pd.DataFrame({
        "want": want, "on_cpu": on_cpu, "gil": st["gil_s"],
        "demand": st["cpu_s"] + st["gil_s"] + st["runqueue_s"], "cpu": st["cpu_s"],
        "runnable": runnable, "run_each": runnable >= BUSY_CPU_SHARE * dt,
        "dt": dt}), st["t_s"].to_numpy() if ticks is None else ticks,
        want=("want", "sum"), on_cpu=("on_cpu", "sum"), gil=("gil", "sum"),
        demand=("demand", "sum"), cpu=("cpu", "sum"), runnable=("runnable", "sum"),
        run_each=("run_each", "sum"), dt=("dt", "max"))
    # Measured process CPU where the recorder has it; the threads' sum otherwise.
    measured = cores.reindex(per_t.index) if cores is not None else None
    used = per_t["cpu"] / per_t["dt"]
    if measured is not None:
        used = measured.where(measured.notna(), used)
    busy = used >= BUSY_PROCESS_CORES
    contended = per_t["want"] >= 2
    threads_used = per_t["cpu"] / per_t["dt"]
    parallel = (threads_used > PARALLEL_CORES) & (per_t["on_cpu"] >= 2)
    n_busy = int(busy.sum())
    n_cont = int(contended.sum())
    n_par = int(parallel.sum())
    cont_cores = float(used[contended].mean()) if n_cont else 0.0
    demand = float(per_t["demand"][contended].sum())
    gil_share = float(per_t["gil"][contended].sum()) / demand if demand > 0 else 0.0
    need = max(MIN_INTERVALS, MIN_TIME_SHARE * n_busy)
    gil_limited = (gil_enabled and usable_cores >= MIN_USABLE_FOR_PROCESSES
                   and _cpu_hungry_threads(st) >= 2 and n_cont >= need
                   and cont_cores <= NEAR_ONE_CORE and gil_share >= GIL_WAIT_SHARE
                   and (gil_held is None or gil_held >= GIL_BUSY_SHARE))
    parallel_threads = n_par >= PARALLEL_MIN_INTERVALS
    # A thread waiting for the GIL sleeps on a futex: threads of one process runnable at once
    # each need no GIL then (native code that releases it), though other programs' load may
    # have left them one core (zlib in two threads beside two CPU hogs: 0.86 cores, 0.0 s of
    # GIL waits, both queued for a core).
    together = ((per_t["runnable"] / per_t["dt"] > PARALLEL_CORES) & (per_t["run_each"] >= 2))
    return Contention(
        busy_intervals=n_busy, contended_intervals=n_cont, contended_cores=cont_cores,
        contended_gil_share=gil_share, wanting_threads=int(per_t["want"].max()),
        parallel_intervals=n_par,
        parallel_cores=float(threads_used[parallel].mean()) if n_par else 0.0,
        gil_limited=bool(gil_limited), parallel_threads=bool(parallel_threads),
        runnable_together=not gil_limited and int(together.sum()) >= PARALLEL_MIN_INTERVALS)


def _cpu_hungry_threads(st: pd.DataFrame) -> int:
    """Threads that wanted a CPU most of their life and got one some of it: the threads a
    GIL can hold back. A thread that wakes from I/O and waits for the GIL behind a holder the
    OS preempted wants the CPU too, but runs almost nothing when it gets it."""
    per = pd.DataFrame({"tid": st["tid"], "cpu": st["cpu_s"], "dt": st["dt_s"],
                        "demand": st["cpu_s"] + st["gil_s"] + st["runqueue_s"]}
                       ).groupby("tid").sum()
    hungry = (per["demand"] >= WANT_CPU_SHARE * per["dt"]) & (
        per["cpu"] >= HUNGRY_CPU_SHARE * per["dt"])
    return int(hungry.sum())


def state_totals(st: pd.DataFrame) -> dict[str, float]:
    return {s: round(float(st[f"{s}_s"].sum()), 3) if not st.empty else 0.0 for s in STATES}


def wall_bound(w: WallTime) -> Bound:
    """What the wall clock went to: moments in which something computed (or wanted a CPU)
    against moments in which nothing did and the program waited on I/O. Moments spent
    waiting on itself (locks, sleeps, children starting) count for neither."""
    active = w.computing_s + w.io_s
    if w.wall_s <= 0 or active < IDLE_SHARE * w.wall_s:
        return "idle"
    share = w.computing_s / active
    if share >= BOUND_SHARE:
        return "cpu"
    if share <= 1 - BOUND_SHARE:
        return "io"
    return "mixed"


def _process_facts(row: Any, psamp: pd.DataFrame, st: pd.DataFrame, c: Contention,
                   gil_held: float | None, ticks: tuple[np.ndarray, np.ndarray]
                   ) -> ProcessFacts:
    ps = psamp[psamp["proc_id"] == row.proc_id] if not psamp.empty else psamp
    threads_peak = int(ps["num_threads"].max()) if not ps.empty and ps["num_threads"].notna(
    ).any() else 0
    pct = ps["cpu_percent"].dropna() if not ps.empty else pd.Series(dtype="float64")
    cpu_mean = _mean_cpu_percent(ps, row)
    rss = ps["rss_bytes"].dropna() if not ps.empty else pd.Series(dtype="float64")
    end_s = row.end_s if row.end_s is not None and not pd.isna(row.end_s) else (
        float(ps["t_s"].max()) if not ps.empty else float(row.start_s or 0.0))
    totals = state_totals(st)
    exit_code = None if row.exit_code is None or pd.isna(row.exit_code) else int(row.exit_code)
    return ProcessFacts(
        proc_id=int(row.proc_id), pid=int(row.pid),
        ppid=None if row.ppid is None or pd.isna(row.ppid) else int(row.ppid),
        cmdline=tuple(str(a) for a in (row.cmdline or ())), python=bool(row.is_python),
        python_version=row.python_version if isinstance(row.python_version, str) else None,
        python_gil=row.python_gil if isinstance(row.python_gil, str) else None,
        threads_peak=threads_peak, cpu_percent_mean=round(cpu_mean, 1),
        cpu_percent_peak=round(float(pct.max()), 1) if len(pct) else 0.0,
        rss_peak_bytes=int(rss.max()) if len(rss) else 0,
        start_s=round(float(row.start_s or 0.0), 3), end_s=round(float(end_s), 3),
        exit_code=exit_code,
        gil_held_share=None if gil_held is None else round(gil_held, 3),
        bound=wall_bound(wallmod.wall_time(_working_intervals(st, ps, ticks))),
        gil_limited=c.gil_limited,
        parallel_threads=c.parallel_threads, state_s=totals,
        threads_runnable_together=c.runnable_together)


def _working_intervals(st: pd.DataFrame, ps: pd.DataFrame,
                       ticks: tuple[np.ndarray, np.ndarray]) -> pd.DataFrame:
    """wall.intervals of the process's working rows, their ticks coded as all its rows'
    are (by_tick groups by the codes the rows have: the same groups, sums and times)."""
    keep = working_mask(st)
    if keep is None:
        return wallmod.intervals(st, ps, ticks)
    return wallmod.intervals(st[keep], ps, (ticks[0][keep], ticks[1]))


def _mean_cpu_percent(ps: pd.DataFrame, row: Any) -> float:
    """CPU over the process's recorded life, in percent of one core."""
    if ps.empty:
        return 0.0
    ps = ps.sort_values("t_s")
    cpu = (ps["cpu_user_s"].astype("float64") + ps["cpu_system_s"].astype("float64")).dropna()
    if cpu.empty:
        return 0.0
    t = ps.loc[cpu.index, "t_s"].astype("float64")
    start = float(row.start_s) if row.start_s is not None and not pd.isna(row.start_s) else None
    if start is not None and start >= 0 and start < float(t.iloc[0]):
        # born while we watched: its cumulative CPU at the first sample is all its own
        used, span = float(cpu.iloc[-1]), float(t.iloc[-1]) - start
    else:
        used, span = float(cpu.iloc[-1] - cpu.iloc[0]), float(t.iloc[-1] - t.iloc[0])
    return used / span * 100.0 if span > 0 else 0.0
