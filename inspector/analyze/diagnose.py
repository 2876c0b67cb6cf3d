"""Verdicts from a recording: what bounds the program (CPU, I/O), whether the GIL capped its
threads, whether threads really ran in parallel, whether there were more runnable threads than
cores, blocked asyncio loops, and which concurrency model fits - each with its numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from inspector.analyze import wall as wallmod
from inspector.analyze.eventloop import LoopBlock, judge_blocks, loop_blocks
from inspector.analyze.frames import stack_facts
from inspector.analyze.locks import LockContention, lock_contention
from inspector.analyze.predict import (
    DEFAULT_IO_CONCURRENCY,
    Prediction,
    PredictionInputs,
    Segment,
    predict,
)
from inspector.analyze.states import STATE_COLUMNS, STATES, thread_states
from inspector.analyze.wall import Phase, WallTime
from inspector.recording import Recording

# -- thresholds (each a rule of thumb with its reason; docs/diagnosis.md has the long form) --
# A thread "wants the CPU" in an interval when at least half of it went to running, waiting for
# a core or waiting for the GIL: it would have run most of the time if it could.
WANT_CPU_SHARE = 0.5
# A thread is "busy on a CPU" in an interval when it ran at least half of it.
BUSY_CPU_SHARE = 0.5
# "Near one core": a GIL-bound process measures 1.0 core plus switching overhead and sampling
# jitter; anything up to a quarter more is still one core's worth of Python.
NEAR_ONE_CORE = 1.25
# Really parallel: the threads' own CPU (schedstat, nanoseconds) clearly above one core, with
# two or more threads each on a CPU half the interval or more. GIL-bound threads sum to one
# core at most, so a few such intervals prove it: PARALLEL_MIN_INTERVALS (0.3 s at the
# default interval) in a row or not, whatever share of the run they are (a machine busy with
# other programs may leave few).
PARALLEL_CORES = 1.3
PARALLEL_MIN_INTERVALS = 3
# The GIL wait is "large" when it is at least a quarter of what the threads wanted to run:
# removing it would then speed them up by a third or more.
GIL_WAIT_SHARE = 0.25
# py-spy --gil (gil_samples): a GIL that caps threads is held nearly all the time; if it was
# free for more than 40% of the samples, it was not what held the threads back.
GIL_BUSY_SHARE = 0.6
# A verdict about contention needs more than a blip: at least this share of the process's
# CPU-busy time (and MIN_INTERVALS intervals) must show it.
MIN_TIME_SHARE = 0.25
MIN_INTERVALS = 3
# A process (or run) is busy in an interval when it used at least half a core.
BUSY_PROCESS_CORES = 0.5
# Bound: CPU demand (on a CPU + waiting for the GIL) versus I/O waits; two thirds or more on
# one side names it, in between it is mixed. Run-queue waits are left out: they grow with the
# load other programs put on the machine, which says nothing about what this program needs.
BOUND_SHARE = 2 / 3
# Idle: CPU demand plus I/O waits below a tenth of the wall time of one thread - nothing
# inside or outside the program kept it busy (sleeps, timers, waits on itself).
IDLE_SHARE = 0.1
# Oversubscribed: at least one whole runnable thread more than there are cores, and each
# runnable thread waited a quarter of its time or more for a core...
OVERSUB_EXTRA_RUNNABLE = 1.0
OVERSUB_RUNQUEUE_SHARE = 0.25
# ...for at least this share of the intervals in which the program was busy.
OVERSUB_TIME_SHARE = 0.3
# I/O waits: a wait of a tenth of a second or more is slow (a network round trip to another
# service, not a local disk or loopback read), and concurrent.futures' default thread pool
# stops growing at 32 workers (min(32, cpus + 4)): more slow waits at once than that are
# "many", the case asyncio's one thread and cheap tasks are made for.
SLOW_WAIT_S = 0.1
MANY_WAITS = 32
# A thread is CPU-hungry when it ran at least this share of its life (besides wanting the CPU
# most of it): GIL-bound threads each get 1/N of a core (4 threads on a loaded machine:
# ~5-25%); a thread that only wakes from I/O to answer runs well under 1%.
HUNGRY_CPU_SHARE = 0.02
# Processes only help where there is more than one core to use: with fewer usable cores than
# this (affinity, a cgroup quota), a second process would share the one core.
MIN_USABLE_FOR_PROCESSES = 1.5
# A thread that never ran: less CPU than this over its whole life (and than IDLE_THREAD_SHARE
# of it) - an idle listener or a parked worker, blocked from start to end. Its waits say
# nothing about what bounds the program (a fetcher waking once a second uses ~0.2%).
IDLE_THREAD_CPU_S = 0.002
IDLE_THREAD_SHARE = 0.001
# ...and it ran (schedstat moved, by however little) in at most this many of its intervals:
# its start, its end. A thread woken every 50 ms to read a byte uses microseconds each time,
# but runs in nearly every interval: it waits for its input, it is not idle.
IDLE_THREAD_WAKES = 2
# Waiting for a core worth explaining: a tenth of the wall time in thread-seconds.
RUNQUEUE_NOTE_SHARE = 0.1
# Syscalls that wait on a disk, not a socket or pipe: an event loop cannot overlap them.
DISK_SYSCALLS = frozenset({"fsync", "fdatasync", "pread64", "pwrite64", "preadv", "pwritev",
                           "io_getevents", "io_uring_enter", "openat", "sync_file_range"})


@dataclass(frozen=True)
class ProcessFacts:
    proc_id: int
    pid: int
    ppid: int | None
    cmdline: tuple[str, ...]
    python: bool
    python_version: str | None
    python_gil: str | None
    threads_peak: int
    cpu_percent_mean: float
    cpu_percent_peak: float
    rss_peak_bytes: int
    start_s: float
    end_s: float
    exit_code: int | None
    gil_held_share: float | None    # of py-spy --gil samples, some thread held the GIL
    bound: str
    gil_limited: bool
    parallel_threads: bool
    state_s: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cmdline"] = list(self.cmdline)
        return d


@dataclass(frozen=True)
class ThreadFacts:
    proc_id: int
    pid: int
    tid: int
    name: str | None
    cpu_s: float
    state_s: dict[str, float]
    sampled_s: float
    busy: bool                      # wanted the CPU or waited on I/O for most of its life
    top_frames: tuple[tuple[str, float], ...]  # (frame, seconds) where py-spy saw it most

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["top_frames"] = [{"frame": f, "seconds": s} for f, s in self.top_frames]
        return d


@dataclass(frozen=True)
class Verdict:
    bound: str
    gil_limited: bool
    parallel_threads: bool
    oversubscribed: bool
    advice: str
    evidence: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["evidence"] = list(self.evidence)
        return d


@dataclass(frozen=True)
class PeakProcess:
    pid: int
    ppid: int | None
    name: str
    python: bool
    threads: int
    cmdline: tuple[str, ...]
    thread_names: tuple[str, ...] = ()   # of the threads alive then, as far as recorded


@dataclass(frozen=True)
class Diagnosis:
    command: tuple[str, ...]
    exit_code: int | None
    duration_s: float
    cpu_count: int
    process_count: int
    peak_threads: int
    htop_rows_peak: int
    processes: tuple[ProcessFacts, ...]
    threads: tuple[ThreadFacts, ...]
    verdict: Verdict
    event_loop_blocks: tuple[LoopBlock, ...]
    peak_t_s: float | None = None
    peak_processes: tuple[PeakProcess, ...] = ()
    intervals: int = 0                  # thread-sample intervals analysed
    stacks_enabled: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Added with issue 12 (the JSON gains these keys; none changed):
    usable_cores: float = 0.0           # cores the program could use (affinity, cgroup quota)
    cores_limited_by: str | None = None
    wall: WallTime | None = None        # the run's wall clock by what the tree did
    phases: tuple[Phase, ...] = ()      # two or more when the behaviour changed
    verdict_phase: Phase | None = None  # the phase the verdict and advice address
    lock_contention: LockContention | None = None
    loop_starved: tuple[LoopBlock, ...] = ()  # loop stretches starved of CPU, not blocked
    predicted: dict[str, Prediction | str] = field(default_factory=dict)
    recorder_cores: float | None = None  # mean cores the recorder and py-spy took
    other_cores: float | None = None     # mean cores other programs took meanwhile
    gil_waits_by_address_share: float | None = None  # of futex waits, told by the address

    @property
    def cores_sentence(self) -> str:
        usable = f"{self.usable_cores:g}"
        if self.cores_limited_by and self.usable_cores < self.cpu_count:
            return (f"{self.cpu_count} cores on this machine, {usable} usable by this "
                    f"program ({self.cores_limited_by})")
        return f"{self.cpu_count} cores on this machine, all usable by this program"

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": list(self.command),
            "exit_code": self.exit_code,
            "duration_s": self.duration_s,
            "cpu_count": self.cpu_count,
            "process_count": self.process_count,
            "peak_threads": self.peak_threads,
            "htop_rows_peak": self.htop_rows_peak,
            "processes": [p.to_dict() for p in self.processes],
            "threads": [t.to_dict() for t in self.threads],
            "verdict": self.verdict.to_dict(),
            "event_loop_blocks": [b.to_dict() for b in self.event_loop_blocks],
            "peak_t_s": self.peak_t_s,
            "peak_processes": [
                {**asdict(p), "cmdline": list(p.cmdline), "thread_names": list(p.thread_names)}
                for p in self.peak_processes],
            "intervals": self.intervals,
            "stacks_enabled": self.stacks_enabled,
            "notes": list(self.notes),
            "usable_cores": self.usable_cores,
            "cores_limited_by": self.cores_limited_by,
            "cores": self.cores_sentence,
            "wall": self.wall.to_dict() if self.wall is not None else None,
            "phases": [ph.to_dict() for ph in self.phases],
            "verdict_phase": (self.verdict_phase.to_dict()
                              if self.verdict_phase is not None else None),
            "lock_contention": (self.lock_contention.to_dict()
                                if self.lock_contention is not None else None),
            "loop_starved": [b.to_dict() for b in self.loop_starved],
            "predicted": {m: (p.to_dict() if isinstance(p, Prediction)
                              else {"speedup": None, "reason": p})
                          for m, p in self.predicted.items()},
            "recorder_cores": _round(self.recorder_cores),
            "other_cores": _round(self.other_cores),
            "gil_waits_by_address_share": _round(self.gil_waits_by_address_share),
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


# -- the analysis ------------------------------------------------------------------------------

def diagnose(rec: Recording, states: pd.DataFrame | None = None,
             io_concurrency: int = DEFAULT_IO_CONCURRENCY) -> Diagnosis:
    """Everything the summary and explain commands say, with the numbers behind it.
    `io_concurrency`: the waits in flight the predictions assume for threads and asyncio."""
    if states is None:
        states = thread_states(rec)
    cpu_count = max(1, rec.cpu_count)
    usable = min(float(cpu_count), rec.usable_cores)
    procs = rec.processes
    psamp = rec.process_samples
    candidates, starved = judge_blocks(loop_blocks(rec.stacks), rec.stacks, states)
    blocks = tuple(candidates)
    notes: list[str] = []
    if states.empty:
        notes.append("no thread samples: the program ended before the first two samples, "
                     "or the recording was cut short")
    stacks_enabled = bool(rec.meta.stacks.enabled) and not rec.stacks.empty
    by_address = _address_share(states)
    if not stacks_enabled and procs["is_python"].any() and not by_address:
        notes.append("no Python stacks and no futex addresses: GIL waits cannot be told "
                     "from lock waits (they are counted as lock waits)")
    notes += _py_spy_failures(rec)

    ctx = _Context(rec, usable)
    process_facts, contention = ctx.processes(states)
    working = _working_rows(states)
    iv = wallmod.intervals(working, psamp)
    wall = wallmod.wall_time(iv)
    phases = tuple(wallmod.phases(iv))
    focus: Phase | None = None
    v_states, v_procs, v_contention, v_wall = states, process_facts, contention, wall
    if len(phases) >= 2:
        focus = max(phases, key=lambda ph: ph.share)
        v_states = wallmod.phase_rows(states, focus)
        v_procs, v_contention = ctx.processes(v_states)
        v_wall = wallmod.wall_time(wallmod.intervals(_working_rows(v_states), psamp))
    locks = lock_contention(v_states) if by_address else None
    recorder, others = _machine_load(rec, iv)
    verdict = _verdict(rec, v_states, v_procs, v_contention, blocks, _Cores(cpu_count, usable,
                       rec.cores_limited_by), v_wall, locks, phases, focus, starved)
    share = _recorder_share_of_queueing(states, recorder, others, wall)
    if share is not None:
        verdict = replace(verdict, evidence=(*verdict.evidence, share))
    predicted = predict(PredictionInputs(
        segments=_segments(ctx, states, psamp, phases, process_facts, wall),
        usable_cores=usable, recorder_cores=recorder or 0.0, other_cores=others or 0.0,
        io_concurrency=io_concurrency, socket_waits=_socket_waits(working)))
    thread_facts = _thread_facts(rec, states)
    peak_t, peak_threads, peak_procs = _peak(rec)
    return Diagnosis(
        command=rec.meta.command,
        exit_code=rec.meta.exit_code,
        duration_s=round(rec.duration_s, 3),
        cpu_count=cpu_count,
        process_count=int(len(procs)),
        peak_threads=peak_threads,
        htop_rows_peak=peak_threads,  # htop's defaults: one row per thread, main thread included
        processes=tuple(process_facts),
        threads=tuple(thread_facts),
        verdict=verdict,
        event_loop_blocks=blocks,
        peak_t_s=peak_t,
        peak_processes=peak_procs,
        intervals=int(len(states)),
        stacks_enabled=stacks_enabled,
        notes=tuple(notes),
        usable_cores=round(usable, 3),
        cores_limited_by=rec.cores_limited_by if usable < cpu_count else None,
        wall=wall, phases=phases if len(phases) >= 2 else (), verdict_phase=focus,
        lock_contention=locks, loop_starved=tuple(starved), predicted=predicted,
        recorder_cores=recorder, other_cores=others, gil_waits_by_address_share=by_address,
    )


def _py_spy_failures(rec: Recording) -> list[str]:
    """Why py-spy could not sample a process, in py-spy's words as the recorder stored them;
    a failed run that a retry made good (the process has stacks) is left out."""
    p = rec.problems
    if p.empty or "source" not in p.columns:
        return []
    sampled = set(rec.stacks["pid"].dropna().astype(int)) if not rec.stacks.empty else set()
    notes: list[str] = []
    for r in p[(p["source"] == "py-spy") & p["kind"].isin(["run-failed", "gave-up"])
               ].itertuples(index=False):
        pid = int(r.pid) if pd.notna(r.pid) else None
        if r.kind == "run-failed" and pid in sampled:
            continue
        note = f"py-spy could not sample pid {pid}: {r.detail}"
        if note not in notes:
            notes.append(note)
    return notes


def _segments(ctx: _Context, states: pd.DataFrame, psamp: pd.DataFrame,
              phases: tuple[Phase, ...], facts: list[ProcessFacts], wall: WallTime
              ) -> tuple[Segment, ...]:
    """The stretches predicted on their own: each phase, or the whole run. Python work holds
    the GIL unless the stretch showed threads in parallel (native code) or no GIL."""
    def holds_gil(procs: list[ProcessFacts]) -> bool:
        return any(p.python for p in procs) and not any(
            p.parallel_threads or p.python_gil == "disabled" for p in procs)

    if len(phases) < 2:
        return (Segment(wall, holds_gil(facts)),)
    out = []
    for ph in phases:
        rows = wallmod.phase_rows(states, ph)
        procs, _ = ctx.processes(rows)
        seg_wall = wallmod.wall_time(wallmod.intervals(_working_rows(rows), psamp))
        out.append(Segment(seg_wall, holds_gil(procs), ph.kind))
    return tuple(out)


@dataclass(frozen=True)
class _Cores:
    machine: int
    usable: float
    limited_by: str | None

    def of(self) -> str:
        """'2' or '1 usable (affinity) of 2', for evidence sentences."""
        if self.usable < self.machine:
            return f"{self.usable:g} usable ({self.limited_by or 'limited'}) of {self.machine}"
        return f"{self.machine}"


class _Context:
    """What every per-process judgement needs, computed once for the recording."""

    def __init__(self, rec: Recording, usable: float) -> None:
        self.rec = rec
        self.usable = usable
        self.proc_cpu = _process_cpu(rec.process_samples)
        self.gil_held = _gil_held_share(getattr(rec, "gil_samples", None))
        self.gil_by_proc = {int(r.proc_id): (bool(r.is_python) and r.python_gil != "disabled")
                            for r in rec.processes.itertuples(index=False)}

    def processes(self, states: pd.DataFrame
                  ) -> tuple[list[ProcessFacts], dict[int, _Contention]]:
        facts: list[ProcessFacts] = []
        contention: dict[int, _Contention] = {}
        states_of = _rows_by_process(states)
        for row in self.rec.processes.itertuples(index=False):
            pid_states = states_of(row.proc_id)
            held = self.gil_held.get(int(row.proc_id))
            c = _contention(pid_states, self.proc_cpu.get(int(row.proc_id)), self.usable,
                            self.gil_by_proc.get(int(row.proc_id), False), held)
            contention[int(row.proc_id)] = c
            facts.append(_process_facts(row, self.rec.process_samples, pid_states, c, held))
        return facts, contention


def _working_rows(states: pd.DataFrame) -> pd.DataFrame:
    """`states` without the threads that never ran (idle listeners, parked workers): their
    waits, from the first sample to the last, bound nothing."""
    if states.empty:
        return states
    ran = states["cpu_s"] + states["gil_s"] + states["runqueue_s"]
    per = pd.DataFrame({"ran": ran, "dt": states["dt_s"], "proc_id": states["proc_id"],
                        "tid": states["tid"], "woke": (ran > 0).astype("int64")}
                       ).groupby(["proc_id", "tid"]).sum()
    idle = per[(per["ran"] < IDLE_THREAD_CPU_S) & (per["ran"] < IDLE_THREAD_SHARE * per["dt"])
               & (per["woke"] <= IDLE_THREAD_WAKES)]
    if idle.empty:
        return states
    keys = pd.MultiIndex.from_arrays([states["proc_id"], states["tid"]])
    return states[~keys.isin(idle.index)]


def _address_share(states: pd.DataFrame) -> float | None:
    """Of the intervals with GIL or lock waits, the share told apart by the futex's address
    (None when none was: an older recording, another architecture, no ptrace)."""
    if states.empty or "futex_basis" not in states.columns:
        return None
    waits = states[(states["gil_s"] + states["lock_s"]) > 0]
    if waits.empty:
        return None
    share = float((waits["futex_basis"] == "address").mean())
    return share if share > 0 else None


def _machine_load(rec: Recording, iv: pd.DataFrame) -> tuple[float | None, float | None]:
    """Mean cores the recorder (with py-spy) took, and other programs, over the run."""
    ms = getattr(rec, "machine_samples", None)
    if ms is None or ms.empty or iv.empty:
        return None, None
    ms = ms.dropna(subset=["busy_cores"])
    if ms.empty:
        return None, None
    recorder = float(ms["recorder_cores"].mean())
    tree = float((iv["cores"] * iv["dt_s"]).sum() / iv["dt_s"].sum()) if iv["dt_s"].sum() else 0.0
    others = max(0.0, float(ms["busy_cores"].mean()) - recorder - tree)
    return recorder, others


def _recorder_share_of_queueing(states: pd.DataFrame, recorder: float | None,
                                others: float | None, wall: WallTime) -> str | None:
    """Who took the cores the program waited for: a sentence when its threads waited for a
    core for a noticeable part of the run and the recording measured the machine. The
    waiting is shared out in proportion to the cores the recorder and other programs used
    (an estimate: the scheduler does not say who ran instead)."""
    if recorder is None or others is None or states.empty or wall.wall_s <= 0:
        return None
    queued = float(states["runqueue_s"].sum())
    if queued < RUNQUEUE_NOTE_SHARE * wall.wall_s:
        return None
    taken = recorder + others
    ours = queued * recorder / taken if taken > 0 else 0.0
    return (f"threads waited {queued:.1f} s for a core; meanwhile the recorder and its py-spy "
            f"runs used {recorder:.2f} cores on average and other programs {others:.2f}: about "
            f"{ours:.1f} s of that wait is the recorder's share")


def _socket_waits(states: pd.DataFrame) -> bool:
    """Whether the I/O waits were on sockets or pipes (an event loop can overlap those), not
    on disks (state D, or file reads: an event loop cannot)."""
    if states.empty:
        return True
    io = states[states["io_s"] > 0]
    if io.empty:
        return True
    disk = io["syscall_name"].astype(object).isin(DISK_SYSCALLS)
    return float(io.loc[disk, "io_s"].sum()) < 0.5 * float(io["io_s"].sum())


def _rows_by_process(states: pd.DataFrame) -> Callable[[Any], pd.DataFrame]:
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


@dataclass(frozen=True)
class _Contention:
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
                gil_enabled: bool, gil_held: float | None = None) -> _Contention:
    if st.empty:
        return _Contention()
    dt = st["dt_s"]
    want = (st["cpu_s"] + st["gil_s"] + st["runqueue_s"]) >= WANT_CPU_SHARE * dt
    on_cpu = st["cpu_s"] >= BUSY_CPU_SHARE * dt
    per_t = pd.DataFrame({
        "want": want, "on_cpu": on_cpu, "gil": st["gil_s"],
        "demand": st["cpu_s"] + st["gil_s"] + st["runqueue_s"], "cpu": st["cpu_s"],
        "dt": dt, "t_s": st["t_s"],
    }).groupby("t_s").agg(want=("want", "sum"), on_cpu=("on_cpu", "sum"), gil=("gil", "sum"),
                          demand=("demand", "sum"), cpu=("cpu", "sum"), dt=("dt", "max"))
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
    return _Contention(
        busy_intervals=n_busy, contended_intervals=n_cont, contended_cores=cont_cores,
        contended_gil_share=gil_share, wanting_threads=int(per_t["want"].max()),
        parallel_intervals=n_par,
        parallel_cores=float(threads_used[parallel].mean()) if n_par else 0.0,
        gil_limited=bool(gil_limited), parallel_threads=bool(parallel_threads))


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


def _state_totals(st: pd.DataFrame) -> dict[str, float]:
    return {s: round(float(st[f"{s}_s"].sum()), 3) if not st.empty else 0.0 for s in STATES}


def _wall_bound(w: WallTime) -> str:
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


def _process_facts(row: Any, psamp: pd.DataFrame, st: pd.DataFrame, c: _Contention,
                   gil_held: float | None) -> ProcessFacts:
    ps = psamp[psamp["proc_id"] == row.proc_id] if not psamp.empty else psamp
    threads_peak = int(ps["num_threads"].max()) if not ps.empty and ps["num_threads"].notna(
    ).any() else 0
    pct = ps["cpu_percent"].dropna() if not ps.empty else pd.Series(dtype="float64")
    cpu_mean = _mean_cpu_percent(ps, row)
    rss = ps["rss_bytes"].dropna() if not ps.empty else pd.Series(dtype="float64")
    end_s = row.end_s if row.end_s is not None and not pd.isna(row.end_s) else (
        float(ps["t_s"].max()) if not ps.empty else float(row.start_s or 0.0))
    totals = _state_totals(st)
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
        bound=_wall_bound(wallmod.wall_time(wallmod.intervals(_working_rows(st), ps))),
        gil_limited=c.gil_limited,
        parallel_threads=c.parallel_threads, state_s=totals)


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


def _thread_facts(rec: Recording, states: pd.DataFrame) -> list[ThreadFacts]:
    out: list[ThreadFacts] = []
    frames = _top_frames(rec.stacks)
    names = {(int(r.proc_id), int(r.tid)): r.name for r in rec.threads.itertuples(index=False)}
    if states.empty:
        sums = pd.DataFrame(columns=["proc_id", "tid", "pid", "dt_s", *STATE_COLUMNS])
    else:
        sums = states.groupby(["proc_id", "tid"], sort=True).agg(
            pid=("pid", "first"), dt_s=("dt_s", "sum"),
            **{c: (c, "sum") for c in STATE_COLUMNS}).reset_index()
    seen = set()
    for r in sums.itertuples(index=False):
        key = (int(r.proc_id), int(r.tid))
        seen.add(key)
        st = {s: round(float(getattr(r, f"{s}_s")), 3) for s in STATES}
        active = st["cpu"] + st["gil"] + st["runqueue"] + st["io"]
        out.append(ThreadFacts(
            proc_id=key[0], pid=int(r.pid), tid=key[1], name=_str(names.get(key)),
            cpu_s=st["cpu"], state_s=st, sampled_s=round(float(r.dt_s), 3),
            busy=bool(r.dt_s > 0 and active >= 0.5 * float(r.dt_s)),
            top_frames=frames.get((int(r.pid), key[1]), ())))
    for t in rec.threads.itertuples(index=False):
        key = (int(t.proc_id), int(t.tid))
        if key in seen:
            continue
        zero = {s: 0.0 for s in STATES}
        out.append(ThreadFacts(key[0], int(t.pid), key[1], _str(t.name), 0.0, zero, 0.0,
                               False, frames.get((int(t.pid), key[1]), ())))
    out.sort(key=lambda f: (f.proc_id, f.tid))
    return out


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _top_frames(stacks: pd.DataFrame, n: int = 3) -> dict[tuple[int, int], tuple]:
    """Per thread, the frames py-spy saw on top longest (the program's own frame where
    there is one, so time in a C call is charged to the line that made it)."""
    if stacks.empty:
        return {}
    keyed: dict[tuple[int, int], dict[str, float]] = {}
    per_stack = stacks.groupby(["pid", "tid", "stack"], sort=False)["duration_s"].sum()
    for (pid, tid, text), d in per_stack.items():
        facts = stack_facts(text)
        frame = facts.user_leaf or facts.leaf
        if frame is None:
            continue
        acc = keyed.setdefault((int(pid), int(tid)), {})
        acc[frame] = acc.get(frame, 0.0) + float(d)
    return {k: tuple((f, round(s, 3)) for f, s in sorted(v.items(), key=lambda kv: -kv[1])[:n])
            for k, v in keyed.items()}


# -- the run's verdict ------------------------------------------------------------------------

def _verdict(rec: Recording, states: pd.DataFrame, processes: list[ProcessFacts],
             contention: dict[int, _Contention], blocks: tuple[LoopBlock, ...],
             cores: _Cores, wall: WallTime, locks: LockContention | None,
             phases: tuple[Phase, ...], focus: Phase | None,
             starved: list[LoopBlock]) -> Verdict:
    """The run's verdict (or its costliest phase's), its evidence in reading order: the
    cores, the phases, where the wall time went, the GIL, threads in parallel, locks,
    oversubscription, the advice, blocked event loops."""
    if states.empty:
        return Verdict(bound="idle", gil_limited=False, parallel_threads=False,
                       oversubscribed=False, advice="keep",
                       evidence=("no samples: nothing was measured, so nothing is claimed",))
    totals = _state_totals(states)
    bound = _wall_bound(wall)
    evidence: list[str] = []
    if cores.usable < cores.machine:
        evidence.append(f"{cores.machine} cores on this machine, {cores.usable:g} usable by "
                        f"this program ({cores.limited_by or 'limited'})")
    if focus is not None:
        evidence.append(
            "phases: " + ", ".join(f"{ph.start_s:.1f}-{ph.end_s:.1f} s {ph.kind} "
                                   f"({ph.share:.0%}, {ph.cores_mean:.2f} cores)"
                                   for ph in phases)
            + f"; the verdict is the {focus.kind} phase's, the costliest")
    evidence.append(
        f"of {wall.wall_s:.1f} s, something computed in {wall.computing_s:.1f} s (on "
        f"{wall.cores_at_once_mean:.2f} cores at once on average), the program waited on "
        f"I/O with nothing computing in {wall.io_s:.1f} s and on itself (locks, sleeps, "
        f"children) in {wall.waiting_s:.1f} s -> {bound}")
    evidence.append(
        f"threads spent {totals['cpu']:.1f} s on a CPU, {totals['runqueue']:.1f} s waiting "
        f"for a core, {totals['gil']:.1f} s waiting for the GIL, {totals['io']:.1f} s waiting "
        f"for I/O, {totals['lock']:.1f} s waiting on locks/queues/joins/children and "
        f"{totals['sleep']:.1f} s sleeping")
    gil_procs = [p for p in processes if p.gil_limited]
    par_procs = [p for p in processes if p.parallel_threads]
    evidence += _gil_evidence(gil_procs, contention, cores)
    evidence += [f"pid {p.pid} runs a free-threaded Python (no GIL): its threads can use "
                 "several cores" for p in processes if p.python and p.python_gil == "disabled"]
    evidence += _parallel_evidence(par_procs, contention)
    if locks is not None:
        evidence.append(
            f"{locks.threads} threads spent {locks.share:.0%} of their time queued on "
            f"a lock their own code takes" + (f" (most at {locks.line})" if locks.line else ""))
    over, over_share, runnable = _oversubscription(states, cores.usable)
    if over:
        evidence.append(
            f"{runnable:.1f} threads were runnable on average on {cores.of()} cores in "
            f"{over_share:.0%} of the busy time: they waited for a core (run queue)")
    advice, why = _advice(rec, states, blocks, totals, wall, bound, bool(gil_procs),
                          bool(par_procs), over, cores, locks)
    evidence.append(f"advice {advice}: {why}")
    evidence += [_block_sentence(b) for b in blocks[:5]]
    evidence += [f"asyncio loop (pid {b.pid}, tid {b.tid}) was starved of CPU for "
                 f"{b.duration_s:.2f} s at {b.start_s:.2f} s (waiting for the GIL or a core "
                 "inside a callback): not a block by the task, but other threads took its CPU"
                 for b in starved[:3]]
    return Verdict(bound=bound, gil_limited=bool(gil_procs), parallel_threads=bool(par_procs),
                   oversubscribed=over, advice=advice, evidence=tuple(evidence))


def _block_sentence(b: LoopBlock) -> str:
    if b.confidence == "confirmed":
        call = f" in {b.blocking_call}" if b.blocking_call else ""
        return (f"asyncio loop (pid {b.pid}, tid {b.tid}) blocked {b.duration_s:.2f} s at "
                f"{b.start_s:.2f} s{call}, called from {b.function}: await a non-blocking "
                "version, or run it with asyncio.to_thread / loop.run_in_executor")
    return (f"asyncio loop (pid {b.pid}, tid {b.tid}) possibly blocked {b.duration_s:.2f} s at "
            f"{b.start_s:.2f} s computing in {b.function}: the samples cannot tell one long "
            "callback from short ones that yield between samples; if it is one, move it to a "
            "process (run_in_executor) or split it")


def _gil_evidence(gil_procs: list[ProcessFacts], contention: dict[int, _Contention],
                  cores: _Cores) -> list[str]:
    out = []
    for p in gil_procs:
        c = contention[p.proc_id]
        out.append(
            f"pid {p.pid}: up to {c.wanting_threads} threads wanted the CPU at once, yet the "
            f"process used {c.contended_cores:.2f} cores (of {cores.of()}); GIL waits were "
            f"{c.contended_gil_share:.0%} of their CPU demand"
            + (f"; py-spy saw the GIL held in {p.gil_held_share:.0%} of its samples"
               if p.gil_held_share is not None else "")
            + " -> the GIL capped it")
    return out


def _parallel_evidence(par_procs: list[ProcessFacts], contention: dict[int, _Contention]
                       ) -> list[str]:
    out = []
    for p in par_procs:
        c = contention[p.proc_id]
        out.append(
            f"pid {p.pid}: threads ran at once, {c.parallel_cores:.2f} cores in "
            f"{c.parallel_intervals} intervals (native code releasing the GIL, or no GIL)"
            + (f"; the GIL was held in only {p.gil_held_share:.0%} of py-spy's samples"
               if p.gil_held_share is not None else ""))
    return out


def _advice(rec: Recording, states: pd.DataFrame, blocks: tuple[LoopBlock, ...],
            totals: dict[str, float], wall: WallTime, bound: str, gil_limited: bool,
            parallel: bool, over: bool, cores: _Cores, locks: LockContention | None
            ) -> tuple[str, str]:
    """The concurrency model that fits (a key of vocabulary.ADVICE), and why."""
    if locks is not None and locks.lock_s >= totals["gil"]:
        return "keep", (f"{locks.threads} threads take turns on a lock held while they work "
                        "or wait; more threads or processes would queue on it too: hold it "
                        "for less time (not across I/O or long computations)")
    if gil_limited:
        return "multiprocessing", ("CPU-bound Python threads wait for the GIL; processes (or "
                                   f"native code that releases the GIL) use all {cores.of()} "
                                   "cores")
    blocking = [b for b in blocks if b.confidence == "confirmed"]
    if blocking and bound in ("io", "mixed"):
        calls = sorted({b.blocking_call or b.function for b in blocking})
        return "asyncio", (f"the coroutines make blocking calls ({', '.join(calls[:3])}) that "
                           "stall the event loop: every other task waits meanwhile; use "
                           "non-blocking versions (asyncio streams, aiohttp, "
                           "asyncio.create_subprocess_exec) or asyncio.to_thread")
    if bound == "io":
        return _io_advice(rec, _working_rows(states), blocks)
    if bound == "mixed":
        return "keep", "neither CPU nor I/O dominates; look at the threads below for the slow part"
    if bound != "cpu":
        return "keep", "the program mostly slept or waited on itself"
    cores_used = wall.cores_at_once_mean
    demand = totals["cpu"] + totals["gil"] + totals["runqueue"]
    if over:
        return "keep", (f"the model fits, but use about {cores.usable:g} workers (one per "
                        "usable core) instead of more")
    one_at_a_time = (not parallel and cores_used <= NEAR_ONE_CORE
                     and wall.busy_processes_mean < 1.5 and _mean_wanting(states) < 1.5)
    if one_at_a_time and cores.usable < MIN_USABLE_FOR_PROCESSES:
        return "keep", (f"one core's worth of work at a time, and {cores.usable:g} usable core "
                        f"({cores.limited_by or 'limited'}): processes would share it, not be "
                        "faster")
    if one_at_a_time:
        who = ("one process at a time computes" if wall.busy_processes_mean >= 0.5
               and _busy_process_count(states) > 1 else "one thread computes")
        return "multiprocessing", (f"{who}, on {cores_used:.2f} of {cores.of()} cores; split "
                                   "the work over processes (run them at once) to use the "
                                   "others")
    if demand > 0 and totals["runqueue"] / demand >= OVERSUB_RUNQUEUE_SHARE:
        return "keep", (f"the threads could run at once but waited {totals['runqueue']:.1f} s "
                        "for a core: the machine's cores were busy (with other programs, if "
                        "not with these)")
    return "keep", f"CPU-bound and using {cores_used:.2f} of {cores.of()} cores already"


def _busy_process_count(states: pd.DataFrame) -> int:
    """Processes that computed (a CPU second or more) at some point of the run."""
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


def _oversubscription(states: pd.DataFrame, cores: float) -> tuple[bool, float, float]:
    if states.empty:
        return False, 0.0, 0.0
    per_t = states.groupby("t_s").agg(cpu=("cpu_s", "sum"), rq=("runqueue_s", "sum"),
                                      dt=("dt_s", "max"))
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


def _io_advice(rec: Recording, states: pd.DataFrame, blocks: tuple[LoopBlock, ...]
               ) -> tuple[str, str]:
    if _uses_asyncio(rec.stacks):
        return "keep", "an asyncio event loop already overlaps the waits"
    io = states["io_s"] >= 0.5 * states["dt_s"]
    concurrent = states[io].groupby("t_s").size()
    peak = int(concurrent.max()) if len(concurrent) else 0
    waits = _io_waits(states[["proc_id", "tid", "t_s", "dt_s"]].assign(io=io))
    slow = [w for w in waits if w >= SLOW_WAIT_S]
    typical = float(np.median(waits)) if waits else 0.0
    if peak >= MANY_WAITS and len(slow) >= len(waits) / 2:
        return "asyncio", (f"up to {peak} slow I/O waits at once (typically {typical:.2f} s): "
                           "more than a thread pool should hold")
    if peak >= 2:
        return "keep", (f"threads overlap their I/O waits: up to {peak} threads waited at "
                        f"once, each for stretches of typically {typical:.2f} s")
    if len(slow) >= MANY_WAITS:
        return "asyncio", (f"{len(slow)} slow I/O waits one after another "
                           f"(typically {typical:.2f} s): overlap them")
    return "threading", (f"one thread waits for I/O, {len(waits)} waits one after another "
                         f"(typically {typical:.2f} s): a few threads would overlap them")


def _uses_asyncio(stacks: pd.DataFrame) -> bool:
    if stacks.empty:
        return False
    return any(stack_facts(t).in_loop for t in stacks["stack"].unique())


def _io_waits(df: pd.DataFrame) -> list[float]:
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


def _peak(rec: Recording) -> tuple[float | None, int, tuple[PeakProcess, ...]]:
    """The sample with the most OS threads alive, all processes together."""
    ps = rec.process_samples
    if ps.empty or not ps["num_threads"].notna().any():
        n = int(len(rec.threads)) if not rec.threads.empty else 0
        return None, n, ()
    per_t = ps.groupby("t_s")["num_threads"].sum()
    t_peak = float(per_t.idxmax())
    at = ps[ps["t_s"] == t_peak]
    procs = rec.processes.set_index("proc_id")
    th = rec.threads
    peak: list[PeakProcess] = []
    for r in at.itertuples(index=False):
        p = procs.loc[r.proc_id] if r.proc_id in procs.index else None
        cmd = tuple(str(a) for a in (p["cmdline"] if p is not None else ()) or ())
        names: tuple[str, ...] = ()
        if not th.empty:
            mine = th[th["proc_id"] == r.proc_id]
            start = mine["start_s"].astype("float64").fillna(-np.inf)
            end = mine["end_s"].astype("float64").fillna(np.inf)
            alive = mine[(start <= t_peak + 1e-6) & (end >= t_peak - 1e-6)]
            names = tuple(str(n) if isinstance(n, str) else str(tid)
                          for n, tid in zip(alive["name"], alive["tid"]))
        peak.append(PeakProcess(
            pid=int(r.pid),
            ppid=None if p is None or pd.isna(p["ppid"]) else int(p["ppid"]),
            name=str(p["name"]) if p is not None and isinstance(p["name"], str) else "?",
            python=bool(p["is_python"]) if p is not None else False,
            threads=int(r.num_threads) if not pd.isna(r.num_threads) else 0, cmdline=cmd,
            thread_names=names))
    return round(t_peak, 3), int(per_t.max()), tuple(peak)
