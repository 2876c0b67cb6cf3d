"""Verdicts for a cluster: a merged recording (`inspector merge`, `inspector.dask`) judged one
worker at a time by `diagnose` on that worker's part, then as a whole. Advice in the words of
Dask's own settings (processes=True, nthreads). Pure: Recordings in, dataclasses out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from inspector.analyze.diagnose import BUSY_PROCESS_CORES, Diagnosis, Verdict, diagnose
from inspector.recording import Recording
from inspector.recording.merge import Part, parts

# What a worker should change, by what its diagnosis found (in Dask's settings' words).
WORKER_ADVICE: dict[str, str] = {
    "processes": "use processes=True or nthreads=1 (more worker processes, fewer threads "
                 "each)",
    "fewer-threads": "fewer threads per worker (nthreads): more ran than there were cores",
    "more-threads": "more threads per worker (nthreads) would overlap the waits",
    "keep": "keep nthreads as it is",
    "idle": "little work reached it",
}
# Work is uneven when the busiest worker used this many times the CPU of the least busy one
# (and at least UNEVEN_MIN_CPU_S): a share that large is not sampling noise.
UNEVEN_RATIO = 2.0
UNEVEN_MIN_CPU_S = 1.0


@dataclass(frozen=True)
class WorkerVerdict:
    index: int
    label: str                  # the worker's name (Dask's), or its recording's file stem
    host: str
    pids: tuple[int, ...]
    working_threads: int        # threads that wanted the CPU for most of their life
    busy_cores: float           # cores the worker used while it used half a core or more
    cpu_s: float
    bound: str
    gil_limited: bool
    parallel_threads: bool
    oversubscribed: bool
    advice: str                 # a key of WORKER_ADVICE
    clock_offset_s: float
    clock_uncertainty_s: float | None
    diagnosis: Diagnosis

    def sentence(self) -> str:
        """'worker 3: 4 threads GIL-limited at 1.0 core: use processes=True or nthreads=1'"""
        threads = f"{self.working_threads} thread{'s' if self.working_threads != 1 else ''}"
        if self.gil_limited:
            what = f"{threads} GIL-limited at {self.busy_cores:.1f} core"
        elif self.parallel_threads:
            what = f"{threads} in parallel at {self.busy_cores:.1f} cores"
        elif self.oversubscribed:
            what = f"{threads} oversubscribed its cores"
        elif self.bound == "idle":
            what = "idle"
        else:
            what = f"{threads} {self.bound}-bound at {self.busy_cores:.1f} core"
        return f"worker {self.label}: {what}: {WORKER_ADVICE[self.advice]}"

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "label": self.label, "host": self.host,
                "pids": list(self.pids), "working_threads": self.working_threads,
                "busy_cores": round(self.busy_cores, 3), "cpu_s": round(self.cpu_s, 3),
                "bound": self.bound, "gil_limited": self.gil_limited,
                "parallel_threads": self.parallel_threads,
                "oversubscribed": self.oversubscribed, "advice": self.advice,
                "sentence": self.sentence(), "clock_offset_s": self.clock_offset_s,
                "clock_uncertainty_s": self.clock_uncertainty_s,
                "diagnosis": self.diagnosis.to_dict()}


@dataclass(frozen=True)
class HostFacts:
    host: str
    cpu_count: int
    workers: tuple[WorkerVerdict, ...]


@dataclass(frozen=True)
class ClusterDiagnosis:
    duration_s: float
    hosts: tuple[HostFacts, ...]
    workers: tuple[WorkerVerdict, ...]
    advice: str                 # a key of WORKER_ADVICE: what most workers need
    sentence: str               # the cluster's verdict, one line
    evidence: tuple[str, ...]
    clock_note: str

    def to_dict(self) -> dict[str, Any]:
        return {"duration_s": self.duration_s, "advice": self.advice,
                "sentence": self.sentence, "evidence": list(self.evidence),
                "clock": self.clock_note,
                "hosts": [{"host": h.host, "cpu_count": h.cpu_count,
                           "workers": [w.label for w in h.workers]} for h in self.hosts],
                "workers": [w.to_dict() for w in self.workers]}


def diagnose_cluster(rec: Recording) -> ClusterDiagnosis:
    """Each worker's verdict (diagnose on its part of the recording) and the cluster's."""
    workers = tuple(_worker(p) for p in parts(rec))
    by_host: dict[str, list[WorkerVerdict]] = {}
    for w in workers:
        by_host.setdefault(w.host, []).append(w)
    cores = rec.meta.merge.cpu_count_by_host if rec.meta.merge is not None else {}
    hosts = tuple(HostFacts(h, int(cores.get(h) or ws[0].diagnosis.cpu_count), tuple(ws))
                  for h, ws in by_host.items())
    advice, sentence, evidence = _cluster_verdict(workers, hosts)
    return ClusterDiagnosis(rec.duration_s, hosts, workers, advice, sentence, evidence,
                            clock_note(parts(rec)))


# The concurrency model each worker advice amounts to, in the words a single run's verdict
# uses (compare puts a cluster's row beside single runs).
_MODEL_OF_ADVICE = {"processes": "multiprocessing", "more-threads": "threading"}


def cluster_verdict(cd: ClusterDiagnosis) -> Verdict:
    """The cluster's verdict as one run's: what most workers were bound by, flags any
    worker showed, and the advice most workers got; its evidence, the workers' sentences."""
    working = [w for w in cd.workers if w.bound != "idle"] or list(cd.workers)
    bounds = [w.bound for w in working]
    bound = max(dict.fromkeys(bounds), key=bounds.count) if bounds else "idle"
    return Verdict(bound=bound, gil_limited=any(w.gil_limited for w in cd.workers),
                   parallel_threads=any(w.parallel_threads for w in cd.workers),
                   oversubscribed=any(w.oversubscribed for w in cd.workers),
                   advice=_MODEL_OF_ADVICE.get(cd.advice, "keep"),
                   evidence=(cd.sentence, *cd.evidence))


def clock_note(ps: Sequence[Part]) -> str:
    """How the parts' clocks were put on one: measured offsets and how well, or trusted."""
    if len(ps) < 2:
        return "one recording: one clock"
    measured = [p for p in ps if p.clock_uncertainty_s is not None]
    if not measured:
        return ("wall clocks as recorded (no offset measured: hosts kept in step by NTP "
                "usually agree within a few milliseconds)")
    worst = max(float(p.clock_uncertainty_s or 0.0) for p in measured)
    largest = max(abs(p.clock_offset_s) for p in measured)
    return (f"wall clocks corrected by offsets measured at collection (largest "
            f"{largest * 1e3:.1f} ms), each within +-{worst * 1e3:.1f} ms (half the round "
            f"trip of the best of several clock reads)")


def _worker(part: Part) -> WorkerVerdict:
    rec = busy_stretch(part.recording)
    diag = diagnose(rec)
    v = diag.verdict
    working = sum(1 for t in diag.threads if t.busy and _demand_s(t.state_s) >= t.state_s.get(
        "io", 0.0) and _demand_s(t.state_s) > 0)
    cpu_s = sum(t.cpu_s for t in diag.threads)
    busy = _busy_cores(rec)
    if v.gil_limited:
        advice = "processes"
    elif v.oversubscribed:
        advice = "fewer-threads"
    elif v.bound == "idle":
        advice = "idle"
    elif v.bound == "io":
        advice = "more-threads"
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


def _cluster_verdict(workers: Sequence[WorkerVerdict], hosts: Sequence[HostFacts]
                     ) -> tuple[str, str, tuple[str, ...]]:
    if not workers:
        return "idle", "no worker was recorded", ()
    counts: dict[str, list[WorkerVerdict]] = {}
    for w in workers:
        counts.setdefault(w.advice, []).append(w)
    working = [w for w in workers if w.advice != "idle"]
    # what most working workers need; ties go to the first in WORKER_ADVICE's order
    ranked = sorted(counts.items(), key=lambda kv: (kv[0] == "idle", -len(kv[1]),
                                                    list(WORKER_ADVICE).index(kv[0])))
    advice, alike = ranked[0]
    n, total = len(alike), len(workers)
    what = {"processes": "GIL-limited", "fewer-threads": "oversubscribed",
            "more-threads": "I/O-bound", "keep": "not held back by the GIL",
            "idle": "idle"}[advice]
    sentence = (f"cluster: {n} of {total} worker{'s' if total != 1 else ''} on "
                f"{len(hosts)} host{'s' if len(hosts) != 1 else ''} {what}: "
                f"{WORKER_ADVICE[advice]}")
    evidence = [w.sentence() for w in workers]
    if len(working) >= 2:
        most = max(working, key=lambda w: w.cpu_s)
        least = min(working, key=lambda w: w.cpu_s)
        if most.cpu_s >= UNEVEN_MIN_CPU_S and most.cpu_s >= UNEVEN_RATIO * max(least.cpu_s,
                                                                                 1e-9):
            evidence.append(f"work was uneven: worker {most.label} used {most.cpu_s:.1f} s "
                            f"of CPU, worker {least.label} {least.cpu_s:.1f} s")
    return advice, sentence, tuple(evidence)
