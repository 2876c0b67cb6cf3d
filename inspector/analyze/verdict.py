"""The run's verdict: what bounds it, whether the GIL capped it, whether threads ran in
parallel or queued for cores, and the advice, each with its evidence as facts (in reading
order: cores, phases, the wall clock, the GIL, parallel threads, locks, oversubscription, the
advice, blocked event loops).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from inspector.analyze import evidence as ev
from inspector.analyze.advice import Fix, choose
from inspector.analyze.eventloop import LoopBlock
from inspector.analyze.evidence import Cores, Fact
from inspector.analyze.frames import stack_facts
from inspector.analyze.locks import LockContention
from inspector.analyze.model import ProcessFacts, Verdict
from inspector.analyze.predict import Prediction
from inspector.analyze.processes import Contention, state_totals, wall_bound, working_rows
from inspector.analyze.thresholds import (
    BUSY_PROCESS_CORES,
    MANY_WAITS,
    MIN_INTERVALS,
    MIN_USABLE_FOR_PROCESSES,
    NEAR_ONE_CORE,
    OVERSUB_EXTRA_RUNNABLE,
    OVERSUB_RUNQUEUE_SHARE,
    OVERSUB_TIME_SHARE,
    SLOW_WAIT_S,
    WANT_CPU_SHARE,
)
from inspector.analyze.vocabulary import Bound
from inspector.analyze.wall import Phase, WallTime, by_tick

# The most blocked-loop and starved-loop facts the evidence lists (the rest are in the
# diagnosis's event_loop_blocks and loop_starved).
MAX_BLOCKS_SAID = 5
MAX_STARVED_SAID = 3


@dataclass(frozen=True)
class VerdictInputs:
    """What the verdict is judged on: the rows of the run (or of its costliest phase) and
    what was found in them."""

    states: pd.DataFrame
    processes: list[ProcessFacts]
    contention: dict[int, Contention]
    blocks: tuple[LoopBlock, ...]
    starved: list[LoopBlock]
    cores: Cores
    wall: WallTime
    locks: LockContention | None
    phases: tuple[Phase, ...]
    focus: Phase | None
    stacks: pd.DataFrame
    predicted: Mapping[str, Prediction | str]
    unknown: str | None = None       # why the evidence cannot carry a prediction
    shape: tuple[Fact, ...] = ()     # what the run's shape adds: children, stragglers


def verdict(x: VerdictInputs) -> Verdict:
    """The run's verdict (or its costliest phase's) with its evidence."""
    if x.states.empty:
        return Verdict(bound="idle", gil_limited=False, parallel_threads=False,
                       oversubscribed=False, advice="unknown",
                       evidence=(ev.NothingMeasured(),
                                 ev.Advised("unknown", (ev.CannotPredict(
                                     x.unknown or "nothing was measured"),))))
    totals = state_totals(x.states)
    bound = wall_bound(x.wall)
    evidence: list[Fact] = []
    if x.cores.limited:
        evidence.append(ev.CoresLimited(x.cores))
    if x.focus is not None:
        evidence.append(ev.PhasesSeen(x.phases, x.focus))
    evidence.append(ev.WallSplit(x.wall, bound))
    evidence.append(ev.StateTotals(totals))
    gil_procs = [p for p in x.processes if p.gil_limited]
    par_procs = [p for p in x.processes if p.parallel_threads]
    for p in gil_procs:
        c = x.contention[p.proc_id]
        evidence.append(ev.GilCapped(p.pid, c.wanting_threads, c.contended_cores, x.cores,
                                     c.contended_gil_share, p.gil_held_share))
    evidence += [ev.FreeThreaded(p.pid) for p in x.processes
                 if p.python and p.python_gil == "disabled"]
    for p in par_procs:
        c = x.contention[p.proc_id]
        evidence.append(ev.ThreadsParallel(p.pid, c.parallel_cores, c.parallel_intervals,
                                           p.gil_held_share))
    if x.locks is not None:
        evidence.append(ev.LockQueue(x.locks.threads, x.locks.share, x.locks.line))
    over, over_share, runnable = oversubscription(x.states, x.cores.usable)
    if over:
        evidence.append(ev.Oversubscribed(runnable, x.cores, over_share))
    evidence += x.shape
    situation, fixes = _situation(x, totals, bound, bool(gil_procs), bool(par_procs), over)
    chosen = choose(x.predicted, fixes, situation, x.unknown)
    advice = chosen.advice
    evidence.append(ev.Advised(advice, chosen.why))
    evidence += [ev.LoopBlocked(b) for b in x.blocks[:MAX_BLOCKS_SAID]]
    evidence += [ev.LoopStarved(b) for b in x.starved[:MAX_STARVED_SAID]]
    return Verdict(bound=bound, gil_limited=bool(gil_procs), parallel_threads=bool(par_procs),
                   oversubscribed=over, advice=advice, evidence=tuple(evidence))


def _situation(x: VerdictInputs, totals: dict[str, float], bound: Bound, gil_limited: bool,
               parallel: bool, over: bool) -> tuple[Fact, list[Fix]]:
    """What the run's shape is, in one fact the advice stands beside, and the fixes that are
    no model change which the evidence names."""
    states, cores, wall = x.states, x.cores, x.wall
    fixes: list[Fix] = []
    if x.locks is not None and x.locks.lock_s >= totals["gil"]:
        held: Fact = ev.LockHeldWhileWorking(x.locks.threads)
        return held, [Fix("shorter-lock", held)]
    blocking = [b for b in x.blocks if b.confidence == "confirmed"]
    unblock = bool(blocking) and bound in ("io", "mixed", "idle")
    if unblock:
        calls = sorted({b.blocking_call or b.function for b in blocking})
        # An idle run's waits are sleeps or waits on itself, which no model overlaps: made
        # non-blocking, the loop's other tasks would run meanwhile, by how much the
        # recording cannot tell (it does not show how many tasks waited).
        gain = x.predicted.get("asyncio") if bound != "idle" else None
        fixes.append(Fix("unblock-loop", ev.BlockingCoroutines(tuple(calls)),
                         gain if isinstance(gain, Prediction) else None, replaces="asyncio"))
    if over:
        fixes.append(Fix("fewer-workers", ev.TooManyWorkers(cores)))
    one_thread = x.predicted.get("asyncio")
    if gil_limited and isinstance(one_thread, Prediction):
        # For Python threads taking turns on a GIL the asyncio model's gain is one thread's:
        # CPU work gains nothing from an event loop, and the advice says what it is. Alike
        # with processes, it stands where asyncio stood, after them: processes skip the
        # turns too (a GIL each) and use the cores besides, so their gain leans less on the
        # turns' cost, the least certain term (a quiet demo run's threads, predicted 1.81x
        # on one thread against processes' 1.9x, measured 1.2x against 1.74x).
        turns = max((x.contention[p.proc_id].wanting_threads for p in x.processes
                     if p.gil_limited), default=2)
        fixes.append(Fix("fewer-workers", ev.GilTurns(turns), one_thread, replaces="asyncio",
                         way="one thread of Python a process", place="asyncio"))
    children = [f for f in x.shape if isinstance(f, ev.ChildrenOneAfterAnother)]
    if children:
        return ev.ChildrenCouldOverlap(children[0].children), fixes
    if gil_limited:
        return ev.GilWaitsCap(cores), fixes
    if unblock:
        return fixes[0].why, fixes
    if bound == "io":
        return _io_situation(x.stacks, working_rows(states)), fixes
    if bound == "mixed":
        return ev.NeitherDominates(), fixes
    if bound != "cpu":
        return ev.MostlyWaitedOnItself(), fixes
    cores_used = wall.cores_at_once_mean
    demand = totals["cpu"] + totals["gil"] + totals["runqueue"]
    if over:
        return ev.TooManyWorkers(cores), fixes
    one_at_a_time = (not parallel and cores_used <= NEAR_ONE_CORE
                     and wall.busy_processes_mean < 1.5 and _mean_wanting(states) < 1.5)
    if one_at_a_time and cores.usable < MIN_USABLE_FOR_PROCESSES:
        return ev.OneUsableCore(cores), fixes
    if one_at_a_time:
        turns = wall.busy_processes_mean >= 0.5 and _busy_process_count(states) > 1
        return ev.OneAtATime(turns, cores_used, cores), fixes
    if demand > 0 and totals["runqueue"] / demand >= OVERSUB_RUNQUEUE_SHARE:
        return ev.CoresWereBusy(totals["runqueue"]), fixes
    return ev.UsesTheCores(cores_used, cores), fixes


def _busy_process_count(states: pd.DataFrame) -> int:
    """Processes that computed (half a CPU second or more) at some point of the run."""
    if states.empty:
        return 0
    cpu = states.groupby("proc_id")["cpu_s"].sum()
    return int((cpu >= 0.5).sum())


def _mean_wanting(states: pd.DataFrame) -> float:
    """Mean number of threads wanting the CPU in the intervals where any did."""
    if states.empty:
        return 0.0
    want = (states["cpu_s"] + states["gil_s"] + states["runqueue_s"]) >= (
        WANT_CPU_SHARE * states["dt_s"])
    per_t = want.groupby(states["t_s"]).sum()
    per_t = per_t[per_t > 0]
    return float(per_t.mean()) if len(per_t) else 0.0


def oversubscription(states: pd.DataFrame, cores: float) -> tuple[bool, float, float]:
    """(oversubscribed, its share of the busy intervals, threads runnable at once then)."""
    if states.empty:
        return False, 0.0, 0.0
    per_t = by_tick(states, states["t_s"].to_numpy(), cpu=("cpu_s", "sum"),
                    rq=("runqueue_s", "sum"), dt=("dt_s", "max"))
    runnable = (per_t["cpu"] + per_t["rq"]) / per_t["dt"]
    rq_share = per_t["rq"] / (per_t["cpu"] + per_t["rq"]).where(lambda s: s > 0)
    busy = per_t["cpu"] / per_t["dt"] >= BUSY_PROCESS_CORES
    over = (runnable >= cores + OVERSUB_EXTRA_RUNNABLE) & (rq_share >= OVERSUB_RUNQUEUE_SHARE)
    n_busy = int(busy.sum())
    n_over = int((over & busy).sum())
    if n_busy == 0:
        return False, 0.0, 0.0
    share = n_over / n_busy
    mean_runnable = float(runnable[over & busy].mean()) if n_over else 0.0
    return (n_over >= MIN_INTERVALS and share >= OVERSUB_TIME_SHARE), share, mean_runnable


def _io_situation(stacks: pd.DataFrame, states: pd.DataFrame) -> Fact:
    if uses_asyncio(stacks):
        return ev.LoopOverlapsWaits()
    io = states["io_s"] >= 0.5 * states["dt_s"]
    concurrent = states[io].groupby("t_s").size()
    peak = int(concurrent.max()) if len(concurrent) else 0
    waits = io_waits(states[["proc_id", "tid", "t_s", "dt_s"]].assign(io=io))
    slow = [w for w in waits if w >= SLOW_WAIT_S]
    typical = float(np.median(waits)) if waits else 0.0
    if peak >= MANY_WAITS and len(slow) >= len(waits) / 2:
        return ev.ManySlowWaits(peak, typical)
    if peak >= 2:
        return ev.ThreadsOverlapWaits(peak, typical)
    if len(slow) >= MANY_WAITS:
        return ev.SlowWaitsInSequence(len(slow), typical)
    return ev.OneThreadWaits(len(waits), typical)


def uses_asyncio(stacks: pd.DataFrame) -> bool:
    """Some stack shows a running asyncio event loop."""
    if stacks.empty:
        return False
    return any(stack_facts(t).in_loop for t in stacks["stack"].unique())


def io_waits(df: pd.DataFrame) -> list[float]:
    """Lengths of runs of consecutive I/O-waiting intervals, per thread."""
    out: list[float] = []
    for _, g in df.sort_values(["proc_id", "tid", "t_s"]).groupby(["proc_id", "tid"]):
        run = 0.0
        for is_io, dt in zip(g["io"], g["dt_s"]):
            if is_io:
                run += float(dt)
            elif run:
                out.append(run)
                run = 0.0
        if run:
            out.append(run)
    return out
