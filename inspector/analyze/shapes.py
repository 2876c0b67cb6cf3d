"""Two shapes of a run that change what a model change could gain: child processes run one
after another while their parent waits for each (they could run at once, if independent),
and a straggler (one worker computing alone at the end of parallel work: no model spreads a
task that is one task). Pure: a Recording's tables and thread_states in, facts out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from inspector.analyze import evidence as ev
from inspector.analyze.predict import Children
from inspector.analyze.wall import PARALLEL, SERIAL, Phase, phase_rows
from inspector.recording import Recording

# Children run one after another are the run's shape when their lives cover at least half of
# it: then what running them at once could gain is most of what any change could.
CHILDREN_SHARE = 0.5
# A worker of a split workload computed in a stretch when it ran a quarter of it or more: on
# a machine others keep busy, two workers side by side may get little more than that each.
WORKER_CPU_SHARE = 0.25
# ... and while they ran, their parent computed little: it waited for each (a pipeline whose
# parent works beside its children is another shape). A tenth of the span, in CPU.
PARENT_CPU_SHARE = 0.1


@dataclass(frozen=True)
class ChildRun:
    parent_pid: int
    children: Children
    start_s: float
    end_s: float


def sequential_children(rec: Recording, wall_s: float) -> ChildRun | None:
    """The longest run of two or more children of one parent that lived one after another
    (each started after the one before it ended, give or take a sampling interval), covering
    CHILDREN_SHARE of the run while the parent waited."""
    procs = rec.processes
    if procs.empty or "parent_proc_id" not in procs.columns or wall_s <= 0:
        return None
    end = procs["end_s"].astype("float64").fillna(rec.duration_s)
    start = procs["start_s"].astype("float64").fillna(0.0)
    cpu = _subtree_cpu(rec)
    best: ChildRun | None = None
    slack = rec.interval_s
    for parent, kids in procs.assign(_start=start, _end=end).groupby("parent_proc_id"):
        if len(kids) < 2:
            continue
        kids = kids.sort_values("_start")
        runs: list[list[int]] = [[]]
        last_end = -np.inf
        for i, (s, e) in enumerate(zip(kids["_start"], kids["_end"])):
            if s < last_end - slack:
                runs.append([])
            runs[-1].append(i)
            last_end = max(last_end, e)
        for run in runs:
            if len(run) < 2:
                continue
            chosen = kids.iloc[run]
            lives = tuple(float(max(0.0, e - s)) for s, e in zip(chosen["_start"], chosen["_end"]))
            span = sum(lives)
            if span < CHILDREN_SHARE * wall_s:
                continue
            lo, hi = float(chosen["_start"].min()), float(chosen["_end"].max())
            if _cpu_between(rec, int(parent), lo, hi) > PARENT_CPU_SHARE * span:
                continue
            found = ChildRun(
                parent_pid=int(procs.loc[procs["proc_id"] == parent, "pid"].iloc[0])
                if (procs["proc_id"] == parent).any() else -1,
                children=Children(lives, tuple(float(cpu.get(int(p), 0.0))
                                               for p in chosen["proc_id"])),
                start_s=lo, end_s=hi)
            if best is None or found.children.span_s > best.children.span_s:
                best = found
    return best


def _subtree_cpu(rec: Recording) -> dict[int, float]:
    """Each process's CPU seconds with its descendants'."""
    ps = rec.process_samples
    if ps.empty:
        return {}
    own = (ps["cpu_user_s"].astype("float64") + ps["cpu_system_s"].astype("float64")
           ).groupby(ps["proc_id"]).max().fillna(0.0).to_dict()
    parent = dict(zip(rec.processes["proc_id"].astype(int),
                      rec.processes["parent_proc_id"]))
    total: dict[int, float] = {int(p): float(c) for p, c in own.items()}
    for p, c in own.items():
        up = parent.get(int(p))
        seen = {int(p)}
        while up is not None and up == up and int(up) not in seen:
            seen.add(int(up))
            total[int(up)] = total.get(int(up), 0.0) + float(c)
            up = parent.get(int(up))
    return total


def _cpu_between(rec: Recording, proc_id: int, lo: float, hi: float) -> float:
    """CPU seconds process `proc_id` used between lo and hi (its own, not its children's)."""
    ps = rec.process_samples
    mine = ps[(ps["proc_id"] == proc_id) & (ps["t_s"] >= lo) & (ps["t_s"] <= hi)]
    if len(mine) < 2:
        return 0.0
    cpu = (mine["cpu_user_s"].astype("float64") + mine["cpu_system_s"].astype("float64"))
    return float(cpu.max() - cpu.min())


@dataclass(frozen=True)
class StragglerTail:
    fact: ev.Straggler
    phase: Phase
    computing_s: float


def straggler(states: pd.DataFrame, phases: tuple[Phase, ...], names: dict[tuple[int, int], str],
              usable_cores: float) -> StragglerTail | None:
    """A serial phase right after a parallel one in which the one thread computing had
    computed in the parallel phase too, beside others: the last task of a split workload."""
    for before, after in zip(phases, phases[1:]):
        if before.kind != PARALLEL or after.kind != SERIAL:
            continue
        tail = phase_rows(states, after)
        busy_tail = _busy(tail, after.duration_s)
        if busy_tail.empty:
            continue
        top = busy_tail.idxmax()
        if busy_tail.get(top, 0.0) < 0.5 * float(tail["cpu_s"].sum()):
            continue
        busy_before = _busy(phase_rows(states, before), before.duration_s)
        if top not in busy_before.index or len(busy_before) < 2:
            continue
        proc_id, tid = top
        rows = tail[(tail["proc_id"] == proc_id) & (tail["tid"] == tid)]
        pid = int(rows["pid"].iloc[0])
        computing = float(tail["cpu_s"].sum())
        fact = ev.Straggler(pid=pid, tid=int(tid), name=names.get((int(proc_id), int(tid))),
                            alone_s=after.duration_s,
                            idle_cores=max(0.0, usable_cores - 1.0))
        return StragglerTail(fact, after, computing)
    return None


def _busy(rows: pd.DataFrame, span_s: float) -> pd.Series:
    """(proc_id, tid) -> CPU seconds, of the threads that computed in `span_s`: on a CPU
    WORKER_CPU_SHARE of it or more (a quarter: on a machine others keep busy, two workers
    computing side by side may get little more than that each)."""
    if rows.empty or span_s <= 0:
        return pd.Series(dtype="float64")
    cpu = rows.groupby(["proc_id", "tid"])["cpu_s"].sum()
    return cpu[cpu >= WORKER_CPU_SHARE * span_s]
