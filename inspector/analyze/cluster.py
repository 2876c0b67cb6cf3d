"""Verdicts for a cluster: a merged recording (`inspector merge`, `inspector.record.dask`)
judged one worker at a time by `diagnose` on that worker's part, then as a whole. Pure:
Recordings in, dataclasses out; the text layer words the advice in Dask's own settings.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import cast

import numpy as np
import pandas as pd

from inspector.analyze.diagnose import diagnose
from inspector.analyze.evidence import Fact
from inspector.analyze.model import Diagnosis, ThreadFacts, Verdict
from inspector.analyze.thresholds import BUSY_PROCESS_CORES
from inspector.analyze.vocabulary import AdviceKey, Bound
from inspector.recording import Recording
from inspector.recording.merge import Part, parts

# Work is uneven when the busiest worker used this many times the CPU of the least busy one
# (and at least UNEVEN_MIN_CPU_S): a share that large is not sampling noise.
UNEVEN_RATIO = 2.0
UNEVEN_MIN_CPU_S = 1.0
# The order in which a tie between worker advices is broken (and a worker's kind: its
# advice, or "idle" when little work reached it).
WORKER_KINDS = ("more-processes", "fewer-workers", "threading", "keep", "idle")


@dataclass(frozen=True)
class WorkerVerdict:
    index: int
    label: str                  # the worker's name (Dask's), or its recording's file stem
    host: str
    pids: tuple[int, ...]
    working_threads: int        # threads that wanted the CPU for most of their life
    busy_cores: float           # cores the worker used while it used half a core or more
    cpu_s: float
    bound: Bound
    gil_limited: bool
    parallel_threads: bool
    oversubscribed: bool
    advice: AdviceKey           # what the worker should change, in the vocabulary's words
    clock_offset_s: float
    clock_uncertainty_s: float | None
    diagnosis: Diagnosis

    @property
    def kind(self) -> str:
        """Its advice, or "idle" when little work reached it (nothing to change and bound by
        nothing): workers of one kind are counted together."""
        return "idle" if self.bound == "idle" and self.advice == "keep" else self.advice


@dataclass(frozen=True)
class HostFacts:
    host: str
    cpu_count: int
    workers: tuple[WorkerVerdict, ...]


@dataclass(frozen=True)
class Clocks(Fact):
    """How the parts' clocks were put on one."""

    parts: int
    measured: int               # parts whose offset was measured at collection
    largest_offset_s: float
    worst_uncertainty_s: float


@dataclass(frozen=True)
class ClusterSaid(Fact):
    """The cluster's verdict: what most working workers share."""

    kind: str                   # a WORKER_KINDS value
    alike: int                  # workers of that kind
    workers: int
    hosts: int


@dataclass(frozen=True)
class WorkerSaid(Fact):
    worker: WorkerVerdict


@dataclass(frozen=True)
class UnevenWork(Fact):
    busiest: str
    busiest_cpu_s: float
    quietest: str
    quietest_cpu_s: float


@dataclass(frozen=True)
class ClusterDiagnosis:
    command: tuple[str, ...] | None  # the run that started the workers, where known
    exit_code: int | None
    duration_s: float
    hosts: tuple[HostFacts, ...]
    workers: tuple[WorkerVerdict, ...]
    said: ClusterSaid           # the cluster's verdict, one line
    evidence: tuple[Fact, ...]  # each worker's, then uneven work
    clocks: Clocks
    verdict: Verdict            # the cluster's, as one run's (see cluster_verdict)


@dataclass(frozen=True)
class WorkerSummary:
    """One worker's recording judged where it lies: its verdict and what the cluster's facts
    are combined from. Small (no samples), so that `inspector summary --dask` moves these
    instead of the recordings; `combine_workers` reduces them."""

    verdict: WorkerVerdict
    cpu_count: int              # its host's
    start_unix: float | None    # its recording's start, on the reference clock
    duration_s: float           # its recording's own length
    process_cpu_s: float        # CPU of its processes, as compare counts a run's
    rss_peak_bytes: int


def diagnose_cluster(rec: Recording) -> ClusterDiagnosis:
    """Each worker's verdict (diagnose on its part of the recording) and the cluster's."""
    summaries = [summarise_worker(p) for p in parts(rec)]
    ran = rec.meta.merge is not None and rec.meta.merge.command_ran_workers
    return combine_workers(summaries, rec.duration_s, rec.meta.command if ran else None,
                           rec.meta.exit_code if ran else None)


def summarise_worker(part: Part) -> WorkerSummary:
    """The map step: a worker's part (of a merged file, or its own recording) judged alone."""
    from inspector.analyze.comparison import cpu_seconds, rss_peak_bytes

    rec = part.recording
    start = rec.meta.start_time_unix
    return WorkerSummary(
        _worker(part), int(rec.meta.cpu_count or 1),
        float(start) - part.clock_offset_s if start is not None else None,
        float(rec.duration_s) - part.shift_s, cpu_seconds(rec), rss_peak_bytes(rec))


def combine_workers(summaries: Sequence[WorkerSummary], duration_s: float | None = None,
                    command: Sequence[str] | None = None, exit_code: int | None = None
                    ) -> ClusterDiagnosis:
    """The reduce step: the cluster's diagnosis from its workers' summaries, the same
    whether they were made from a merged file's parts or on the workers. `duration_s`:
    the merged recording's; None to span the workers' recordings on the reference clock."""
    workers = tuple(s.verdict for s in summaries)
    by_host: dict[str, list[WorkerVerdict]] = {}
    cores: dict[str, int] = {}
    for s in summaries:
        by_host.setdefault(s.verdict.host, []).append(s.verdict)
        cores.setdefault(s.verdict.host, s.cpu_count)
    hosts = tuple(HostFacts(h, cores[h], tuple(ws)) for h, ws in by_host.items())
    said, evidence = _cluster_said(workers, hosts)
    if duration_s is None:
        duration_s = _span_s(summaries)
    return ClusterDiagnosis(tuple(command) if command is not None else None, exit_code,
                            duration_s, hosts, workers, said, evidence, clocks(workers),
                            _as_one_run(workers, said, evidence))


def _span_s(summaries: Sequence[WorkerSummary]) -> float:
    """From the first recording's start to the last one's end, as a merge would put them."""
    starts = [s.start_unix for s in summaries if s.start_unix is not None]
    if not starts:
        return max((s.duration_s for s in summaries), default=0.0)
    t0 = min(starts)
    return max((s.start_unix - t0 if s.start_unix is not None else 0.0) + s.duration_s
               for s in summaries)


def busiest_threads(cd: ClusterDiagnosis, n: int) -> list[tuple[WorkerVerdict, ThreadFacts]]:
    """The `n` threads of the whole cluster that used the most CPU, each with its worker:
    the threads that matter when there are thousands."""
    every = [(w, t) for w in cd.workers for t in w.diagnosis.threads]
    return heapq.nlargest(n, every, key=lambda wt: wt[1].cpu_s)


def _as_one_run(workers: Sequence[WorkerVerdict], said: ClusterSaid,
                evidence: tuple[Fact, ...]) -> Verdict:
    """The cluster's verdict as one run's (compare puts a cluster's row beside single runs):
    what most working workers were bound by, flags any worker showed, and the advice most
    workers got; its evidence, the cluster's sentence and the workers'."""
    working = [w for w in workers if w.bound != "idle"] or list(workers)
    bounds = [w.bound for w in working]
    bound: Bound = max(dict.fromkeys(bounds), key=bounds.count) if bounds else "idle"
    advice: AdviceKey = "keep" if said.kind == "idle" else cast(AdviceKey, said.kind)
    return Verdict(bound=bound, gil_limited=any(w.gil_limited for w in workers),
                   parallel_threads=any(w.parallel_threads for w in workers),
                   oversubscribed=any(w.oversubscribed for w in workers),
                   advice=advice, evidence=(said, *evidence))


def clocks(ps: Sequence[Part] | Sequence[WorkerVerdict]) -> Clocks:
    """How the parts' clocks were put on one: measured offsets and how well, or trusted."""
    measured = [p for p in ps if p.clock_uncertainty_s is not None]
    worst = max((float(p.clock_uncertainty_s or 0.0) for p in measured), default=0.0)
    largest = max((abs(p.clock_offset_s) for p in measured), default=0.0)
    return Clocks(len(ps), len(measured), largest, worst)


def _worker(part: Part) -> WorkerVerdict:
    rec = busy_stretch(part.recording)
    diag = diagnose(rec)
    v = diag.verdict
    working = sum(1 for t in diag.threads if t.busy and _demand_s(t.state_s) >= t.state_s.get(
        "io", 0.0) and _demand_s(t.state_s) > 0)
    cpu_s = sum(t.cpu_s for t in diag.threads)
    busy = _busy_cores(rec)
    advice: AdviceKey
    if v.gil_limited:
        advice = "more-processes"
    elif v.oversubscribed:
        advice = "fewer-workers"
    elif v.bound == "io":
        advice = "threading"
    else:
        advice = "keep"
    pids = tuple(int(p) for p in rec.processes["pid"].tolist())
    return WorkerVerdict(part.index, part.label, part.host, pids, working, busy, cpu_s, v.bound,
                         v.gil_limited, v.parallel_threads, v.oversubscribed, advice,
                         part.clock_offset_s, part.clock_uncertainty_s, diag)


def busy_stretch(rec: Recording) -> Recording:
    """The recording from the first to the last interval in which its processes used
    BUSY_PROCESS_CORES or more together: a worker is judged by the stretch it had work, not
    by the idle time before its first task and after its last (a GIL idle then would
    outvote the GIL held all through the work). The whole recording if it never was busy."""
    ps = rec.process_samples
    if ps.empty:
        return rec
    per_t = ps.groupby("t_s")["cpu_percent"].sum(min_count=1) / 100.0
    busy = per_t[per_t >= BUSY_PROCESS_CORES].index
    if len(busy) < 2:
        return rec
    lo = float(busy.min()) - rec.interval_s  # the first busy interval began a sample before
    hi = float(busy.max())

    def within(df: pd.DataFrame) -> pd.DataFrame:
        if df.empty or "t_s" not in df.columns:
            return df
        t = df["t_s"].astype("float64")
        if "duration_s" in df.columns:  # spans and runs: those whose middle lies within
            t = t + df["duration_s"].astype("float64").fillna(0.0) / 2
        return df[(t >= lo) & (t <= hi)].reset_index(drop=True)

    return replace(rec, process_samples=within(ps), thread_samples=within(rec.thread_samples),
                   stacks=within(rec.stacks), gil_samples=within(rec.gil_samples),
                   machine_samples=within(rec.machine_samples))


def _demand_s(state_s: dict[str, float]) -> float:
    return sum(state_s.get(k, 0.0) for k in ("cpu", "gil", "runqueue"))


def _busy_cores(rec: Recording) -> float:
    """Mean cores the worker's processes used together in the intervals in which they used
    BUSY_PROCESS_CORES or more (its idle stretches between tasks left out)."""
    ps = rec.process_samples
    if ps.empty:
        return 0.0
    per_t = ps.groupby("t_s")["cpu_percent"].sum(min_count=1).dropna().to_numpy() / 100.0
    busy = per_t[per_t >= BUSY_PROCESS_CORES]
    return float(np.mean(busy)) if len(busy) else 0.0


def _cluster_said(workers: Sequence[WorkerVerdict], hosts: Sequence[HostFacts]
                  ) -> tuple[ClusterSaid, tuple[Fact, ...]]:
    if not workers:
        return ClusterSaid("idle", 0, 0, len(hosts)), ()
    counts: dict[str, list[WorkerVerdict]] = {}
    for w in workers:
        counts.setdefault(w.kind, []).append(w)
    working = [w for w in workers if w.kind != "idle"]
    # what most working workers need; ties go to the first in WORKER_KINDS' order
    ranked = sorted(counts.items(), key=lambda kv: (kv[0] == "idle", -len(kv[1]),
                                                    WORKER_KINDS.index(kv[0])))
    kind, alike = ranked[0]
    evidence: list[Fact] = [WorkerSaid(w) for w in workers]
    if len(working) >= 2:
        most = max(working, key=lambda w: w.cpu_s)
        least = min(working, key=lambda w: w.cpu_s)
        if most.cpu_s >= UNEVEN_MIN_CPU_S and most.cpu_s >= UNEVEN_RATIO * max(least.cpu_s,
                                                                                 1e-9):
            evidence.append(UnevenWork(most.label, most.cpu_s, least.label, least.cpu_s))
    return ClusterSaid(kind, len(alike), len(workers), len(hosts)), tuple(evidence)
