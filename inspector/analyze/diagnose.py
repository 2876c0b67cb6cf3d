"""Verdicts from a recording: what bounds the program (CPU, I/O), whether the GIL capped its
threads, whether threads really ran in parallel, whether there were more runnable threads than
cores, blocked asyncio loops, and which concurrency model fits - each with its evidence.
`diagnose()` puts together what processes.py, threads.py, verdict.py and predict.py find.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pandas as pd

from inspector.analyze import evidence as ev
from inspector.analyze import wall as wallmod
from inspector.analyze.advice import contradictions
from inspector.analyze.capacity import Machine, capacity_of
from inspector.analyze.eventloop import LoopBlock, judge_blocks, loop_blocks
from inspector.analyze.evidence import Cores, Fact
from inspector.analyze.frames import parse_frame, stack_facts
from inspector.analyze.locks import LockContention, lock_contention
from inspector.analyze.model import Diagnosis, ProcessFacts
from inspector.analyze.predict import PredictionInputs, Segment, io_concurrency_of, predict
from inspector.analyze.processes import ProcessJudge, working_rows
from inspector.analyze.shapes import ChildRun, StragglerTail, sequential_children, straggler
from inspector.analyze.states import each_distinct, thread_states
from inspector.analyze.threads import peak, thread_facts
from inspector.analyze.thresholds import (
    DISK_SYSCALLS,
    MIN_INTERVALS,
    RUNQUEUE_NOTE_SHARE,
    STARTING_SHARE,
)
from inspector.analyze.usable import usable_cores_over_time, usable_cores_summary
from inspector.analyze.verdict import VerdictInputs, verdict
from inspector.analyze.wall import Phase, WallTime
from inspector.recording import Recording

# Set (to anything) in the environment, diagnose() raises AssertionError when its advice
# contradicts its predictions: the test suite sets it, so every recording it diagnoses, by
# any command, is checked (tests/conftest.py).
SELF_CHECK_ENV = "INSPECTOR_SELF_CHECK"


def diagnose(rec: Recording, states: pd.DataFrame | None = None,
             io_concurrency: int | None = None, spawns: bool | None = None,
             loops: tuple[list[LoopBlock], list[LoopBlock]] | None = None,
             machine: Machine | None = None) -> Diagnosis:
    """Everything the summary and explain commands say, with the numbers behind it.
    `io_concurrency`: the waits in flight the predictions overlap for threads and asyncio
    (None: the program's own where it overlapped its waits, else an assumption, said so).
    `spawns`: whether the model's processes would start by spawn (or forkserver, or loky's
    exec) rather than fork (None: as the program's Python starts them by default).
    `loops`: the event-loop blocks and starved loops judged already (a streamed recording's,
    on its windows' own spans: analyze/fold.py); None: judged here on `rec.stacks`.
    `machine`: the machine as several calibrations measured it (a comparison's recordings,
    analyze/capacity.py machine()); None: the recording's own calibration."""
    if states is None:
        states = thread_states(rec)
    cpu_count = max(1, rec.cpu_count)
    usable_now, limited_by = usable_cores_summary(rec)
    usable = min(float(cpu_count), usable_now)
    procs = rec.processes
    psamp = rec.process_samples
    candidates, starved = loops if loops is not None else judge_blocks(
        loop_blocks(rec.stacks), rec.stacks, states)
    blocks = tuple(candidates)
    notes: list[Fact] = []
    if states.empty:
        notes.append(ev.NoThreadSamples())
    stacks_enabled = bool(rec.meta.stacks.enabled) and not rec.stacks.empty
    by_address = _address_share(states)
    if not stacks_enabled and procs["is_python"].any() and not by_address:
        notes.append(ev.GilNotTold())
    notes += _py_spy_failures(rec)

    judge = ProcessJudge(rec, usable)
    process_facts, contention = judge.processes(states)
    working = working_rows(states)
    iv = wallmod.intervals(working, psamp)
    wall = wallmod.wall_time(iv)
    phases = tuple(wallmod.phases(iv))
    focus: Phase | None = None
    v_states, v_procs, v_contention, v_wall = states, process_facts, contention, wall
    if len(phases) >= 2:
        focus = max(phases, key=lambda ph: ph.share)
        v_states = wallmod.phase_rows(states, focus)
        v_procs, v_contention = judge.processes(v_states)
        v_wall = wallmod.wall_time(wallmod.intervals(working_rows(v_states), psamp))
    locks = lock_contention(v_states) if by_address else None
    recorder, others = _machine_load(rec, iv)
    threads = thread_facts(rec, states)
    names = {(t.proc_id, t.tid): t.name for t in threads if t.name}
    tail = straggler(working, phases, names, usable) if len(phases) >= 2 else None
    children = sequential_children(rec, wall.wall_s)
    in_flight, multiplexed = _waits_in_flight(working, wall, _loop_threads(rec.stacks))
    concurrency, own = io_concurrency_of(in_flight, wall.io_s, io_concurrency, usable)
    segments = _segments(judge, working, iv, psamp, phases, process_facts, wall, locks, tail,
                         children)
    capacity = capacity_of(machine if machine is not None else rec.meta.calibration, usable)
    predicted = predict(PredictionInputs(
        segments=segments, capacity=capacity,
        io_concurrency=concurrency, io_concurrency_own=own, recorder_cores=recorder or 0.0,
        in_flight=in_flight, multiplexed=multiplexed, socket_waits=_socket_waits(working),
        wait_s=_typical_wait_s(rec, working, wall),
        spawns=_spawns(procs) if spawns is None else spawns,
        program_start_s=_program_start_s(rec, states)))
    shape: list[Fact] = []
    if children is not None:
        shape.append(ev.ChildrenOneAfterAnother(children.parent_pid,
                                                len(children.children.lives_s),
                                                children.children.span_s,
                                                sum(children.children.cpu_s)))
    if tail is not None:
        shape.append(tail.fact)
    judged = verdict(VerdictInputs(
        states=v_states, processes=v_procs, contention=v_contention, blocks=blocks,
        starved=starved, cores=Cores(cpu_count, usable, limited_by), wall=v_wall,
        locks=locks, phases=phases, focus=focus, stacks=rec.stacks, predicted=predicted,
        unknown=_unknown(states, _target(rec)), shape=tuple(shape)))
    share = _recorder_share_of_queueing(states, iv, usable_cores_over_time(rec), recorder,
                                        others, wall)
    if share is not None:
        judged = replace(judged, evidence=(*judged.evidence, share))
    if os.environ.get(SELF_CHECK_ENV):
        said = contradictions(judged.advice, predicted)
        if said:
            raise AssertionError(f"the advice contradicts the predictions: {'; '.join(said)}")
    peak_t, peak_threads, peak_procs = peak(rec)
    return Diagnosis(
        command=rec.meta.command,
        exit_code=rec.meta.exit_code,
        duration_s=round(rec.duration_s, 3),
        cpu_count=cpu_count,
        process_count=int(len(procs)),
        peak_threads=peak_threads,
        htop_rows_peak=peak_threads,  # htop's defaults: one row per thread, main thread included
        processes=tuple(process_facts),
        threads=tuple(threads),
        verdict=judged,
        event_loop_blocks=blocks,
        peak_t_s=peak_t,
        peak_processes=peak_procs,
        intervals=int(len(states)),
        stacks_enabled=stacks_enabled,
        notes=tuple(notes),
        usable_cores=round(usable, 3),
        cores_limited_by=limited_by if usable < cpu_count else None,
        wall=wall, phases=phases if len(phases) >= 2 else (), verdict_phase=focus,
        lock_contention=locks, loop_starved=tuple(starved), predicted=predicted,
        recorder_cores=recorder, other_cores=others, gil_waits_by_address_share=by_address,
        machine=ev.MachineBasis(capacity, concurrency, own, multiplexed,
                                asked=io_concurrency is not None),
    )


def _py_spy_failures(rec: Recording) -> list[Fact]:
    """Why py-spy could not sample a process, in py-spy's words as the recorder stored them;
    a failed run that a retry made good (the process has stacks) is left out."""
    p = rec.problems
    if p.empty or "source" not in p.columns:
        return []
    sampled = set(rec.stacks["pid"].dropna().astype(int)) if not rec.stacks.empty else set()
    notes: list[Fact] = []
    for r in p[(p["source"] == "py-spy") & p["kind"].isin(["run-failed", "gave-up"])
               ].itertuples(index=False):
        pid = int(r.pid) if pd.notna(r.pid) else None
        if r.kind == "run-failed" and pid in sampled:
            continue
        note = ev.PySpyFailed(pid, str(r.detail))
        if note not in notes:
            notes.append(note)
    return notes


def _segments(judge: ProcessJudge, working: pd.DataFrame, iv: pd.DataFrame,
              psamp: pd.DataFrame, phases: tuple[Phase, ...], facts: list[ProcessFacts],
              wall: WallTime, locks: LockContention | None, tail: StragglerTail | None,
              children: ChildRun | None) -> tuple[Segment, ...]:
    """The stretches predicted on their own: children run one after another, then each phase
    (or the whole run). Python work holds the GIL unless the stretch showed threads in
    parallel or runnable at once (native code) or no GIL."""
    def holds_gil(procs: list[ProcessFacts]) -> bool:
        return any(p.python for p in procs) and not any(
            p.parallel_threads or p.threads_runnable_together or p.python_gil == "disabled"
            for p in procs)

    def contended(procs: list[ProcessFacts]) -> bool:
        return any(p.gil_limited for p in procs)

    serial = locks is not None  # threads queued on their own lock: no model spreads that
    out: list[Segment] = []
    if children is not None:
        inside = (iv["t_s"] > children.start_s) & (iv["t_s"] <= children.end_s + 1e-9)
        out.append(Segment(wallmod.wall_time(iv[inside]), holds_gil(facts), "children",
                           children=children.children))
        rest = wallmod.wall_time(iv[~inside])
        if rest.wall_s > 0:
            out.append(Segment(rest, holds_gil(facts), "rest", contended(facts), serial=serial))
        return tuple(out)
    if len(phases) < 2:
        return (Segment(wall, holds_gil(facts), "", contended(facts), serial=serial),)
    for ph in phases:
        rows = wallmod.phase_rows(working, ph)
        procs, _ = judge.processes(rows)
        seg_wall = wallmod.wall_time(wallmod.intervals(rows, psamp))
        indivisible = tail.computing_s if tail is not None and tail.phase == ph else 0.0
        out.append(Segment(seg_wall, holds_gil(procs), ph.kind, contended(procs),
                           indivisible_s=min(indivisible, seg_wall.computing_s),
                           serial=serial))
    return tuple(out)


def _loop_threads(stacks: pd.DataFrame) -> set[tuple[int, int]]:
    """(pid, tid) of the threads whose stacks show a running asyncio event loop."""
    if stacks.empty:
        return set()
    looping = each_distinct(stacks["stack"], lambda text: stack_facts(str(text)).in_loop)
    mine = stacks.loc[looping, ["pid", "tid"]].drop_duplicates()
    return {(int(p), int(t)) for p, t in zip(mine["pid"], mine["tid"])}


def _waits_in_flight(working: pd.DataFrame, wall: WallTime, loops: set[tuple[int, int]]
                     ) -> tuple[float, bool]:
    """I/O waits of one kind in flight at once, mean over the moments threads waited on I/O:
    threads waiting at the same frame (ten fetchers in socket reads) are the program's own
    concurrency; a listener waiting beside one fetcher is not. Without stacks, every thread
    waiting counts. And whether most of those moments had an event loop waiting in its
    selector: its waits are many at once, however many threads wait (a server thread's
    selector waits for connections, and is not counted)."""
    if working.empty or wall.io_s <= 0:
        return 1.0, False
    io = working[working["io_s"] >= 0.5 * working["dt_s"]]
    if io.empty:
        return 1.0, False
    if "leaf" not in io.columns or io["leaf"].isna().all():
        return max(1.0, wall.io_waits_mean), False
    leaf = io["leaf"].astype(object).where(io["leaf"].notna(), "?")
    in_selector = each_distinct(leaf, lambda text: parse_frame(str(text)).is_selector)
    in_loop = np.array([(int(p), int(t)) in loops for p, t in zip(io["pid"], io["tid"])],
                       dtype=bool)
    selector_moments = io.loc[in_selector & in_loop, "t_s"].nunique()
    multiplexed = selector_moments >= 0.5 * io["t_s"].nunique()
    per_t = io.assign(leaf=leaf).groupby(["t_s", "leaf"], observed=True).size()
    return max(1.0, float(per_t.groupby(level=0).max().mean())), multiplexed


def _unknown(states: pd.DataFrame, target: int | None = None) -> str | None:
    """Why the evidence cannot carry a prediction, or None when it can. `target`: the
    proc_id of the program's first process, whose start-up is the program's (a forked
    worker starts no interpreter: what passes before py-spy first samples it is work)."""
    if states.empty:
        return "nothing was measured"
    rounds = states["t_s"].nunique()
    if rounds < MIN_INTERVALS:
        return (f"the run lasted {rounds} sampling round{'s' if rounds != 1 else ''}: too "
                "short to tell what it spent its time on")
    if "startup_s" not in states.columns:
        return None
    # The rounds the program spent starting (its interpreter, its imports) are the same under
    # every model and say nothing of its work: the work needs rounds of its own.
    if target is None:
        return None
    dt = states.groupby("t_s")["dt_s"].max()
    start = _startup_per_round(states[states["proc_id"] == target]).reindex(
        dt.index, fill_value=0.0)
    working = int((start < STARTING_SHARE * dt).sum())
    if working < MIN_INTERVALS:
        return (f"after its start-up ({float(start.sum()):.2f} s: the interpreter and its "
                f"imports), its work lasted {working} sampling round"
                f"{'s' if working != 1 else ''}: too short to tell what it spent its time "
                "on (record it with a shorter --interval)")
    return None


def _typical_wait_s(rec: Recording, working: pd.DataFrame, wall: WallTime) -> float | None:
    """A single I/O wait's typical length: the time waiting on I/O over the waits made, as
    the threads' voluntary context switches count them (each wait is at least one; some
    are more, so this errs short)."""
    if wall.io_s <= 0 or working.empty:
        return None
    ps = rec.process_samples
    if ps.empty or "ctx_voluntary" not in ps.columns:
        return None
    switches = ps.groupby("proc_id")["ctx_voluntary"].agg(lambda c: c.max() - c.min()).sum()
    io_thread_s = float(working["io_s"].sum())
    if not switches or switches <= 0 or io_thread_s <= 0:
        return None
    return io_thread_s / float(switches)


def _program_start_s(rec: Recording, states: pd.DataFrame) -> float:
    """How long the program's first process took to start (its interpreter and imports, as
    py-spy's stacks tell them apart from its work), 0 where not told."""
    target = _target(rec)
    if states.empty or "startup_s" not in states.columns or target is None:
        return 0.0
    return float(_startup_per_round(states[states["proc_id"] == target]).sum())


def _target(rec: Recording) -> int | None:
    """The proc_id of the program's first process (the one started or attached to)."""
    targets = rec.processes.loc[rec.processes["is_target"].astype(bool), "proc_id"]
    return None if targets.empty else int(targets.iloc[0])


def _startup_per_round(states: pd.DataFrame) -> pd.Series:
    """Per sampling round (t_s), the seconds of it some thread spent starting: its
    interpreter's start before its first work, or importing. (The two overlap: a round of
    imports before the first work is both; it counts once.) None of a round in which another
    thread computed or waited on I/O outside any start-up: that round is work, whatever else
    imported meanwhile. A program's first requests import lazily (encodings.idna, stringprep,
    unicodedata), one thread importing while the others wait on their sockets; counted as
    start-up, the demo's I/O job with 16 threads (0.1 s of work at 20-ms rounds) was left
    with no round of work and advised `unknown`."""
    dt = states["dt_s"].to_numpy(dtype="float64")
    importing = (states["importing"].to_numpy(dtype=bool) if "importing" in states
                 else np.zeros(len(states), dtype=bool))
    startup = states["startup_s"].fillna(0.0).to_numpy(dtype="float64")
    starting = np.maximum(startup, np.where(importing, dt, 0.0))
    worked = (~importing & (startup <= 0.0)
              & ((states["cpu_s"] + states["io_s"]).to_numpy(dtype="float64") > 0))
    rounds = states["t_s"]
    per_round = pd.Series(starting, index=states.index).groupby(rounds).max()
    busy = pd.Series(worked, index=states.index).groupby(rounds).any()
    return per_round.where(~busy, 0.0)


def _spawns(procs: pd.DataFrame) -> bool:
    """Its Python starts new processes by spawn or forkserver, not fork: macOS and Windows
    always, Linux from Python 3.14 (forkserver is its default there)."""
    versions = procs.loc[procs["is_python"].astype(bool), "python_version"].dropna()
    for v in versions:
        try:
            major, minor = (int(x) for x in str(v).split(".")[:2])
        except ValueError:
            continue
        if (major, minor) >= (3, 14):
            return True
    return False


def _address_share(states: pd.DataFrame) -> float | None:
    """Of the intervals with GIL or lock waits, the share told apart by the futex's address
    (None when none was: an older recording, another architecture, no ptrace)."""
    if states.empty or "futex_basis" not in states.columns:
        return None
    waits = ((states["gil_s"] + states["lock_s"]) > 0).to_numpy()
    if not waits.any():
        return None
    # the column alone, not every column of the waiting rows copied out
    share = float((states["futex_basis"] == "address").to_numpy()[waits].mean())
    return share if share > 0 else None


def _machine_load(rec: Recording, iv: pd.DataFrame) -> tuple[float | None, float | None]:
    """Mean cores the recorder (with py-spy) took, and other programs, over the run."""
    ms = getattr(rec, "machine_samples", None)
    if ms is None or ms.empty or iv.empty:
        return None, None
    ms = ms.dropna(subset=["busy_cores"])
    if ms.empty:
        return None, None
    tick_s = _tick_lengths(ms)
    if tick_s.sum() <= 0:
        tick_s = pd.Series(1.0, index=ms.index)
    recorder = float((ms["recorder_cores"] * tick_s).sum() / tick_s.sum())
    busy = float((ms["busy_cores"] * tick_s).sum() / tick_s.sum())
    tree = float((iv["cores"] * iv["dt_s"]).sum() / iv["dt_s"].sum()) if iv["dt_s"].sum() else 0.0
    others = max(0.0, busy - recorder - tree)
    return recorder, others


def _tick_lengths(ms: pd.DataFrame) -> pd.Series:
    """Each machine sample's span: its time less its predecessor's on the same host. A row
    holds the cores used over its span, counted in clock ticks (10 ms): a span of a few ms
    (the reading at the recording's end) that caught one tick says several cores, so the
    run's mean weighs each row by its span, never one row one vote. The first row's
    predecessor is not stored: it counts as a typical span."""
    by_host = ms.groupby("host", dropna=False)["t_s"] if "host" in ms.columns else None
    spans = by_host.diff() if by_host is not None else ms["t_s"].diff()
    typical = spans.median()
    return spans.fillna(typical if pd.notna(typical) and typical > 0 else 1.0).clip(lower=0.0)


def _recorder_share_of_queueing(states: pd.DataFrame, iv: pd.DataFrame,
                                usable: pd.Series, recorder: float | None,
                                others: float | None, wall: WallTime
                                ) -> ev.RecorderShare | None:
    """Who took the cores the program waited for: a sentence when its threads waited for a
    core for a noticeable part of the run and the recording measured the machine. First its
    own threads: runnable beyond the cores it could use then (its affinity, its quota, each
    moment), they queued on each other. The rest is shared out in proportion to the cores
    the recorder and other programs used (an estimate: the scheduler does not say who ran
    instead)."""
    if recorder is None or others is None or states.empty or wall.wall_s <= 0:
        return None
    queued = float(states["runqueue_s"].sum())
    if queued < RUNQUEUE_NOTE_SHARE * wall.wall_s:
        return None
    own = 0.0
    if not iv.empty and not usable.empty:
        cores = usable.reindex(iv["t_s"].to_numpy(), method="nearest").to_numpy()
        beyond = (iv["runnable"].to_numpy() - cores).clip(min=0.0)
        own = min(queued, float((beyond * iv["dt_s"].to_numpy()).sum()))
    taken = recorder + others
    rest = queued - own
    ours = rest * recorder / taken if taken > 0 else 0.0
    return ev.RecorderShare(queued, recorder, others, ours, own)


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
