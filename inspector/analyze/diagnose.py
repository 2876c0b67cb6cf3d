"""Verdicts from a recording: what bounds the program (CPU, I/O), whether the GIL capped its
threads, whether threads really ran in parallel, whether there were more runnable threads than
cores, blocked asyncio loops, and which concurrency model fits - each with its evidence.
`diagnose()` puts together what processes.py, threads.py, verdict.py and predict.py find.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from inspector.analyze import evidence as ev
from inspector.analyze import wall as wallmod
from inspector.analyze.eventloop import judge_blocks, loop_blocks
from inspector.analyze.evidence import Cores, Fact
from inspector.analyze.locks import lock_contention
from inspector.analyze.model import Diagnosis, ProcessFacts
from inspector.analyze.predict import (
    DEFAULT_IO_CONCURRENCY,
    PredictionInputs,
    Segment,
    predict,
)
from inspector.analyze.processes import ProcessJudge, working_rows
from inspector.analyze.states import thread_states
from inspector.analyze.threads import peak, thread_facts
from inspector.analyze.thresholds import DISK_SYSCALLS, RUNQUEUE_NOTE_SHARE
from inspector.analyze.verdict import VerdictInputs, verdict
from inspector.analyze.wall import Phase, WallTime
from inspector.recording import Recording


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
    judged = verdict(VerdictInputs(
        states=v_states, processes=v_procs, contention=v_contention, blocks=blocks,
        starved=starved, cores=Cores(cpu_count, usable, rec.cores_limited_by), wall=v_wall,
        locks=locks, phases=phases, focus=focus, stacks=rec.stacks))
    share = _recorder_share_of_queueing(states, recorder, others, wall)
    if share is not None:
        judged = replace(judged, evidence=(*judged.evidence, share))
    predicted = predict(PredictionInputs(
        segments=_segments(judge, states, psamp, phases, process_facts, wall),
        usable_cores=usable, recorder_cores=recorder or 0.0, other_cores=others or 0.0,
        io_concurrency=io_concurrency, socket_waits=_socket_waits(working)))
    threads = thread_facts(rec, states)
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
        cores_limited_by=rec.cores_limited_by if usable < cpu_count else None,
        wall=wall, phases=phases if len(phases) >= 2 else (), verdict_phase=focus,
        lock_contention=locks, loop_starved=tuple(starved), predicted=predicted,
        recorder_cores=recorder, other_cores=others, gil_waits_by_address_share=by_address,
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


def _segments(judge: ProcessJudge, states: pd.DataFrame, psamp: pd.DataFrame,
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
        procs, _ = judge.processes(rows)
        seg_wall = wallmod.wall_time(wallmod.intervals(working_rows(rows), psamp))
        out.append(Segment(seg_wall, holds_gil(procs), ph.kind))
    return tuple(out)


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
                                others: float | None, wall: WallTime
                                ) -> ev.RecorderShare | None:
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
    return ev.RecorderShare(queued, recorder, others, ours)


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
