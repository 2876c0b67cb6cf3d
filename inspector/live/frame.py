"""One frame of `inspector top`: what each process and thread of a recording being written
is doing now (its last `window_s`), built from the analysis (`thread_states`), and drawn as
plain text lines. Pure: a Recording in, a Frame and text out (no terminal, no OS).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from inspector.analyze.states import FUTEX_IN_INTERPRETER, STATE_COLUMNS, thread_states
from inspector.analyze.vocabulary import STATES, THREAD_STATES
from inspector.recording import Recording

SORT_KEYS = {"cpu": "CPU%", "pid": "PID", "mem": "RSS", "state": "STATE"}
# The frame's window reaches back this many sampling intervals further, so that each
# thread's first interval in it has the sample before it (thread_states diffs them).
LOOKBACK_INTERVALS = 2
STATE_WIDTH = max(len(t.word) for t in THREAD_STATES.values())


@dataclass(frozen=True)
class ThreadRow:
    tid: int
    name: str
    state: str                 # a key of THREAD_STATES: the most of its time in the window
    cpu_percent: float         # of one core, over the window
    syscall: str | None        # what it was blocked in at the last sample ('running' on CPU)
    leaf: str | None           # the Python function on top at the last sample, where known
    holds_gil: bool            # on a CPU at the last sample while others waited for the GIL


@dataclass(frozen=True)
class ProcessRow:
    proc_id: int
    pid: int
    parent_proc_id: int | None
    command: tuple[str, ...]
    python: bool
    cpu_percent: float
    rss_bytes: int | None
    gil_waiters: int           # threads waiting for the GIL at the last sample (by the futex)
    threads: tuple[ThreadRow, ...]
    depth: int = 0             # in the tree view


@dataclass(frozen=True)
class Frame:
    t_s: float                 # the recording's clock at the last sample
    window_s: float
    cpu_count: int
    processes: tuple[ProcessRow, ...]
    ended: bool = False        # the whole tree has exited

    @property
    def thread_count(self) -> int:
        return sum(len(p.threads) for p in self.processes)

    @property
    def cpu_percent(self) -> float:
        return sum(p.cpu_percent for p in self.processes)


def recent(rec: Recording, window_s: float) -> Recording:
    """The recording cut to its last `window_s` (and the samples just before): the rows a
    frame needs, so a frame costs the same however long the look has run."""
    ts = rec.thread_samples
    if ts.empty:
        return rec
    since = float(ts["t_s"].max()) - window_s - LOOKBACK_INTERVALS * rec.interval_s
    cut = {"thread_samples": ts[ts["t_s"] >= since]}
    if not rec.stacks.empty:
        st = rec.stacks
        cut["stacks"] = st[st["t_s"] + st["duration_s"] >= since]
    ps = rec.process_samples
    if not ps.empty:
        cut["process_samples"] = ps[ps["t_s"] >= since]
    return dataclasses.replace(rec, **cut)


def build_frame(rec: Recording, window_s: float, ended: bool = False) -> Frame:
    """The processes alive at the recording's last sample and their threads, each with the
    state it spent the most of the last `window_s` in."""
    rec = recent(rec, window_s)
    ts = rec.thread_samples
    if ts.empty:
        return Frame(0.0, window_s, rec.cpu_count, (), ended)
    t_end = float(ts["t_s"].max())
    states = thread_states(rec)
    states = states[states["t_s"] > t_end - window_s - 1e-9]
    threads_by_proc = _thread_rows(rec, states, t_end)
    procs: list[ProcessRow] = []
    ps = rec.process_samples
    for row in rec.processes.itertuples(index=False):
        proc_id = int(row.proc_id)
        mine = ps[ps["proc_id"] == proc_id]
        if mine.empty or float(mine["t_s"].max()) < t_end - rec.interval_s / 2:
            continue  # not alive at the last sample
        last = mine.iloc[-1]
        cpu = pd.to_numeric(mine["cpu_percent"][mine["t_s"] > t_end - window_s - 1e-9],
                            errors="coerce").mean()
        rows, waiters = threads_by_proc.get(proc_id, ((), 0))
        parent = row.parent_proc_id
        procs.append(ProcessRow(
            proc_id=proc_id, pid=int(row.pid),
            parent_proc_id=int(parent) if parent == parent and parent is not None else None,
            command=tuple(row.cmdline) or (str(row.name),), python=bool(row.is_python),
            cpu_percent=float(cpu) if cpu == cpu else 0.0,
            rss_bytes=int(last["rss_bytes"]) if last["rss_bytes"] == last["rss_bytes"] else None,
            gil_waiters=waiters, threads=rows))
    return Frame(t_end, window_s, rec.cpu_count, tuple(procs), ended)


def _thread_rows(rec: Recording, states: pd.DataFrame, t_end: float
                 ) -> dict[int, tuple[tuple[ThreadRow, ...], int]]:
    """Per process: its threads alive at the last sample, and how many of them were waiting
    for the GIL at it. While some wait, the thread on a CPU holds the GIL (the one that ran
    the most in the window, should two be seen running at the hand-off)."""
    out: dict[int, tuple[tuple[ThreadRow, ...], int]] = {}
    if states.empty:
        return out
    ts = rec.thread_samples
    now = ts[ts["t_s"] > t_end - rec.interval_s / 2]
    waiting_gil: set[tuple[int, int]] = set()
    on_cpu: set[tuple[int, int]] = set()
    if "futex_kind" in now.columns:
        kind = pd.to_numeric(now["futex_kind"], errors="coerce")
        for p, t in now.loc[kind == FUTEX_IN_INTERPRETER, ["proc_id", "tid"]].itertuples(
                index=False):
            waiting_gil.add((int(p), int(t)))
    for p, t in now.loc[now["syscall_name"].astype(object) == "running",
                        ["proc_id", "tid"]].itertuples(index=False):
        on_cpu.add((int(p), int(t)))
    alive = {(int(p), int(t)) for p, t in now[["proc_id", "tid"]].itertuples(index=False)}
    for proc_id, rows in states.groupby("proc_id", sort=False, observed=True):
        proc_id = int(proc_id)
        per_thread = []
        for tid, th in rows.groupby("tid", sort=False, observed=True):
            if (proc_id, int(tid)) not in alive:
                continue  # ended within the window
            seconds = th[list(STATE_COLUMNS)].sum()
            per_thread.append((int(tid), th.iloc[-1], seconds, float(th["dt_s"].sum())))
        waiters = sum(1 for tid, *_ in per_thread if (proc_id, tid) in waiting_gil)
        holder = None
        running = [x for x in per_thread if (proc_id, x[0]) in on_cpu]
        if waiters and running:
            holder = max(running, key=lambda x: float(x[2]["cpu_s"]))[0]
        threads = []
        for tid, last, seconds, span in per_thread:
            state = STATES[int(np.argmax(seconds.to_numpy(dtype="float64")))]
            threads.append(ThreadRow(
                tid=tid, name=_text(last["name"]) or str(tid), state=state,
                cpu_percent=float(seconds["cpu_s"]) / span * 100 if span > 0 else 0.0,
                syscall=_text(last["syscall_name"]), leaf=_text(last["leaf"]),
                holds_gil=tid == holder))
        out[proc_id] = (tuple(threads), waiters)
    return out


def _text(value: object) -> str | None:
    return None if value is None or (isinstance(value, float) and value != value) \
        else str(value)


# -- ordering ----------------------------------------------------------------------------

def ordered(frame: Frame, sort: str, tree: bool) -> list[ProcessRow]:
    """The processes sorted by `sort` (a SORT_KEYS key), their threads too; in the tree
    view each child process follows its parent, with its depth set."""
    procs = sorted(frame.processes, key=_process_key(sort))
    procs = [dataclasses.replace(p, threads=tuple(sorted(p.threads, key=_thread_key(sort))))
             for p in procs]
    if not tree:
        return procs
    ids = {p.proc_id for p in procs}
    children: dict[int | None, list[ProcessRow]] = {}
    for p in procs:
        parent = p.parent_proc_id if p.parent_proc_id in ids else None
        children.setdefault(parent, []).append(p)
    out: list[ProcessRow] = []

    def walk(parent: int | None, depth: int) -> None:
        for p in children.get(parent, []):
            out.append(dataclasses.replace(p, depth=depth))
            walk(p.proc_id, depth + 1)

    walk(None, 0)
    return out


def _process_key(sort: str):  # type: ignore[no-untyped-def]
    if sort == "pid":
        return lambda p: p.pid
    if sort == "mem":
        return lambda p: (-(p.rss_bytes or 0), p.pid)
    if sort == "state":
        return lambda p: (-p.gil_waiters, -p.cpu_percent, p.pid)
    return lambda p: (-p.cpu_percent, p.pid)


def _thread_key(sort: str):  # type: ignore[no-untyped-def]
    if sort == "pid":
        return lambda t: t.tid
    if sort == "state":
        return lambda t: (STATES.index(t.state), -t.cpu_percent, t.tid)
    return lambda t: (-t.cpu_percent, t.tid)
