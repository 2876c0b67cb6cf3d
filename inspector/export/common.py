"""What every exporter reads the same way: each process's name and each thread's, the Python
stack spans of a thread in time order, and a thread's states merged into runs.

Inputs are a Recording's DataFrames and `thread_states`; nothing here knows a file format.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from inspector.analyze.frames import Frame, parse_stack
from inspector.recording.values import missing, opt_int, opt_str
from inspector.text import terminal

if TYPE_CHECKING:
    from inspector.recording import Recording

# Longest process name an export writes: a viewer's track header shows a line, not a page.
MAX_PROCESS_NAME_CHARS = 100


@dataclass(frozen=True)
class ProcessInfo:
    proc_id: int
    pid: int
    name: str                  # the command it ran, as a shell would show it
    python: str | None         # "Python 3.11 (GIL enabled)", or None when not Python
    exit_code: int | None
    host: str | None = None    # in a merged recording (inspector merge): the machine


@dataclass(frozen=True)
class ThreadInfo:
    proc_id: int
    pid: int
    tid: int
    name: str                  # Python's name for it where known, else the OS name
    host: str | None = None


@dataclass(frozen=True)
class Span:
    """One unchanged Python stack seen on a thread from start_s to end_s."""

    start_s: float
    end_s: float
    samples: int
    stack: tuple[Frame, ...]   # root first, leaf last
    stack_text: str


def command_text(argv: Any, fallback: str) -> str:
    """A process's command line as an export names it."""
    return terminal.command_text(argv, MAX_PROCESS_NAME_CHARS, fallback)


def processes(rec: Recording) -> list[ProcessInfo]:
    """The recorded processes in the order they started (by host, then in that order, in a
    merged recording; its names start with the host)."""
    out: list[ProcessInfo] = []
    procs = rec.processes
    if procs.empty:
        return out
    hosts = host_of_proc(rec)
    order = ["start_s", "proc_id"]
    if hosts:
        procs = procs.assign(host_=[hosts.get(int(p), "") for p in procs["proc_id"]])
        order = ["host_", *order]
    for row in procs.sort_values(order, kind="stable").itertuples(index=False):
        fallback = opt_str(row.name) or f"pid {int(row.pid)}"
        python = None
        if bool(row.is_python):
            version = opt_str(row.python_version) or "?"
            gil = opt_str(row.python_gil)
            python = f"Python {version}" + (f" (GIL {gil})" if gil else "")
        exit_code = opt_int(row.exit_code)
        host = hosts.get(int(row.proc_id))
        name = command_text(row.cmdline, fallback)
        out.append(ProcessInfo(int(row.proc_id), int(row.pid),
                               f"{host}: {name}" if host else name, python, exit_code, host))
    return out


def host_of_proc(rec: Recording) -> dict[int, str]:
    """proc_id -> host in a merged recording (its host column); empty for one host's."""
    procs = rec.processes
    if "host" not in procs.columns or not procs["host"].notna().any():
        return {}
    return {int(p): str(h) for p, h in zip(procs["proc_id"], procs["host"]) if isinstance(h, str)}


def threads(rec: Recording) -> list[ThreadInfo]:
    """Every thread the recording saw, from its threads table and its stacks, by process then
    by when it started; a thread known only from its stacks is named as py-spy named it."""
    rows: dict[tuple[int, int], tuple[float, ThreadInfo]] = {}
    proc_of_pid = _proc_of_pid(rec)
    hosts = host_of_proc(rec)
    for row in rec.threads.itertuples(index=False):
        name = opt_str(row.name) or opt_str(row.os_name) or f"thread {int(row.tid)}"
        start = float(row.start_s) if not missing(row.start_s) else math.inf
        rows[(int(row.proc_id), int(row.tid))] = (
            start, ThreadInfo(int(row.proc_id), int(row.pid), int(row.tid), name,
                              hosts.get(int(row.proc_id))))
    stacks = rec.stacks
    if not stacks.empty:
        firsts = stacks.groupby(["pid", "tid"], observed=True, sort=False).agg(
            start_s=("t_s", "min"), thread_name=("thread_name", "first"))
        for (pid, tid), first in firsts.iterrows():
            proc_id = proc_of_pid.get(int(pid), -int(pid))
            if (proc_id, int(tid)) not in rows:
                name = opt_str(first["thread_name"]) or f"thread {int(tid)}"
                rows[(proc_id, int(tid))] = (float(first["start_s"]),
                                             ThreadInfo(proc_id, int(pid), int(tid), name,
                                                        hosts.get(proc_id)))
    order = {p.proc_id: i for i, p in enumerate(processes(rec))}
    return [info for _, info in sorted(
        rows.values(), key=lambda r: (order.get(r[1].proc_id, len(order)), r[0], r[1].tid))]


def thread_spans(rec: Recording) -> Iterator[tuple[int, int, list[Span]]]:
    """(pid, tid, spans in time order) for every thread with Python stacks. A span ends where
    the next begins if they overlap (py-spy runs meet at seams), so spans never overlap."""
    stacks = rec.stacks
    if stacks.empty:
        return
    ordered = stacks.sort_values(["pid", "tid", "t_s"], kind="stable")
    starts = ordered["t_s"].to_numpy(dtype=np.float64)
    ends = starts + np.nan_to_num(ordered["duration_s"].to_numpy(dtype=np.float64))
    samples = ordered["samples"].to_numpy(dtype=np.int64)
    texts = ordered["stack"].astype(object).to_numpy()
    for pid, tid, lo, hi in thread_slices(ordered):
        spans = []
        for i in range(lo, hi):
            end = ends[i] if i + 1 == hi else min(ends[i], starts[i + 1])
            text = texts[i] if isinstance(texts[i], str) else ""
            spans.append(Span(float(starts[i]), float(max(end, starts[i])), int(samples[i]),
                              parse_stack(text), text))
        yield pid, tid, spans


def state_runs(states: pd.DataFrame, by: Sequence[str] = ("state",)) -> pd.DataFrame:
    """thread_states rows merged while a thread stayed in the same values of `by` (and no
    interval is missing between them): pid, tid, start_s, end_s, the `by` columns and the
    seconds of every state summed over the run (the *_s columns), by thread then time."""
    seconds = [c for c in states.columns if c.endswith("_s") and c not in ("t_s", "dt_s")]
    if states.empty:
        return pd.DataFrame(columns=["pid", "tid", "start_s", "end_s", *by, *seconds])
    df = states.sort_values(["pid", "tid", "t_s"], kind="stable")
    start = (df["t_s"] - df["dt_s"]).to_numpy()
    end = df["t_s"].to_numpy()
    pid = df["pid"].to_numpy()
    tid = df["tid"].to_numpy()
    new = np.ones(len(df), dtype=bool)
    new[1:] = (pid[1:] != pid[:-1]) | (tid[1:] != tid[:-1]) | (start[1:] > end[:-1] + 1e-6)
    for col in by:
        values = df[col].astype(str).to_numpy()   # a missing value is "nan": equal to itself
        new[1:] |= values[1:] != values[:-1]
    group = np.cumsum(new) - 1
    firsts = np.flatnonzero(new)
    lasts = np.r_[firsts[1:], len(df)] - 1
    runs = pd.DataFrame({"pid": pid[firsts], "tid": tid[firsts], "start_s": start[firsts],
                         "end_s": end[lasts]})
    for col in by:
        runs[col] = df[col].astype(object).to_numpy()[firsts]
    for col in seconds:
        runs[col] = np.bincount(group, weights=df[col].to_numpy(dtype=np.float64),
                                minlength=len(firsts))
    return runs


def thread_slices(frame: pd.DataFrame) -> Iterator[tuple[int, int, int, int]]:
    """(pid, tid, first row, end row) of each thread's rows in a frame sorted by thread."""
    if frame.empty:
        return
    pid = frame["pid"].to_numpy()
    tid = frame["tid"].to_numpy()
    breaks = np.flatnonzero((pid[1:] != pid[:-1]) | (tid[1:] != tid[:-1])) + 1
    for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(pid)]):
        yield int(pid[lo]), int(tid[lo]), int(lo), int(hi)


def _proc_of_pid(rec: Recording) -> dict[int, int]:
    """pid -> the proc_id of the last process that had it (stacks rows may lack proc_id)."""
    procs = rec.processes
    if procs.empty:
        return {}
    ordered = procs.sort_values("start_s", kind="stable")
    return {int(p): int(q) for p, q in zip(ordered["pid"], ordered["proc_id"])}
