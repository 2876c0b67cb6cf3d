"""A recording as Chrome trace-event JSON, which ui.perfetto.dev and chrome://tracing open:
a process per recorded process, for each thread a track of its sampled Python stacks (nested
slices) and a track of its states, and counters of each process's CPU, RSS and threads.

docs/export.md maps each part of the recording to what the trace holds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd

from inspector.analyze import STATES
from inspector.analyze.states import STACK_SLACK_PERIODS
from inspector.analyze.vocabulary import THREAD_STATES
from inspector.export import common

if TYPE_CHECKING:
    from inspector.recording import Recording

# A thread's states go on a track of their own beside its stack track (slices on one track
# must nest, and a state interval does not nest with a stack span). The trace format knows
# tracks only as (pid, tid), so that track gets a tid no real thread can have: Linux thread
# ids stay below PID_MAX_LIMIT (2**22).
STATE_TRACK_TID_OFFSET = 2**22
# A reused pid gets a process of its own in the trace, numbered past every real pid.
REUSED_PID_OFFSET = 2**22
# What each state slice is called: the words the summary and the report use.
STATE_NAMES = {state: term.word for state, term in THREAD_STATES.items()}
# Trace events time in microseconds; ours are kept as whole nanoseconds so that a child slice
# never ends past its parent after rounding.
_NS = 1e9


def trace(rec: Recording, states: pd.DataFrame) -> dict[str, Any]:
    """The trace as a JSON-ready dict: {"traceEvents": [...], "displayTimeUnit", "otherData"}."""
    procs = common.processes(rec)
    trace_pid = _trace_pids(procs)
    pid_of_proc = {p.proc_id: p.pid for p in procs}
    metadata: list[dict[str, Any]] = []
    for index, p in enumerate(procs):
        pid = trace_pid[p.proc_id]
        metadata.append(_meta("process_name", pid, None, name=p.name))
        metadata.append(_meta("process_sort_index", pid, None, sort_index=index))
        labels = [f"pid {p.pid}"] + ([p.python] if p.python else [])
        if p.exit_code is not None:
            labels.append(f"exit {p.exit_code}")
        metadata.append(_meta("process_labels", pid, None, labels=", ".join(labels)))

    def pid_for(proc_id: int, pid: int) -> int:
        return trace_pid.get(proc_id, pid)

    thread_list = common.threads(rec)
    track_of: dict[tuple[int, int], int] = {}      # (real pid, tid) -> trace pid
    for index, t in enumerate(thread_list):
        pid = pid_for(t.proc_id, t.pid)
        track_of.setdefault((t.pid, t.tid), pid)
        metadata.append(_meta("thread_name", pid, t.tid, name=t.name))
        metadata.append(_meta("thread_sort_index", pid, t.tid, sort_index=2 * index))
        metadata.append(_meta("thread_name", pid, t.tid + STATE_TRACK_TID_OFFSET,
                              name=f"{t.name} (state)"))
        metadata.append(_meta("thread_sort_index", pid, t.tid + STATE_TRACK_TID_OFFSET,
                              sort_index=2 * index + 1))

    events: list[tuple[int, int, int, dict[str, Any]]] = []   # (ts_ns, -dur_ns, depth, event)
    period_s = 1.0 / max(rec.stack_rate_hz, 1.0)
    for pid, tid, spans in common.thread_spans(rec):
        tpid = track_of.get((pid, tid), pid)
        events.extend(_stack_slices(tpid, tid, spans, STACK_SLACK_PERIODS * period_s))
    events.extend(_state_slices(states, track_of))
    events.extend(_counters(rec, trace_pid, pid_of_proc))
    events.sort(key=lambda e: e[:3])
    return {
        "traceEvents": metadata + [e[3] for e in events],
        "displayTimeUnit": "ms",
        "otherData": {
            "exporter": "inspector",
            "command": common.command_text(rec.meta.command, "?"),
            "start_time_unix": rec.meta.start_time_unix,
            "note": "ts 0 is the start of the recording",
        },
    }


def to_bytes(rec: Recording, states: pd.DataFrame) -> bytes:
    # UTF-8 as is, not \\u escapes: Perfetto's reader passes \\u escapes through undecoded.
    text = json.dumps(trace(rec, states), ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False)
    return text.encode("utf-8", "replace")


def _trace_pids(procs: list[common.ProcessInfo]) -> dict[int, int]:
    """proc_id -> the pid its events carry: its own, unless an earlier process had it."""
    seen: dict[int, int] = {}
    out = {}
    for p in procs:
        times = seen.get(p.pid, 0)
        out[p.proc_id] = p.pid + times * REUSED_PID_OFFSET
        seen[p.pid] = times + 1
    return out


def _meta(kind: str, pid: int, tid: int | None, **args: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"ph": "M", "name": kind, "pid": pid}
    if tid is not None:
        event["tid"] = tid
    event["args"] = args
    return event


def _ns(seconds: float) -> int:
    return int(round(seconds * _NS))


def _us(ns: int) -> float | int:
    return ns // 1000 if ns % 1000 == 0 else ns / 1000


def _slice(name: str, pid: int, tid: int, start_ns: int, end_ns: int, depth: int,
           args: dict[str, Any]) -> tuple[int, int, int, dict[str, Any]]:
    event = {"ph": "X", "name": name, "pid": pid, "tid": tid, "ts": _us(start_ns),
             "dur": _us(end_ns - start_ns), "args": args}
    return start_ns, start_ns - end_ns, depth, event


def _stack_slices(pid: int, tid: int, spans: list[common.Span], gap_s: float
                  ) -> Iterator[tuple[int, int, int, dict[str, Any]]]:
    """Consecutive spans share their common root frames, so a function that stayed on the
    stack across many samples is one slice, as in a flame chart."""
    open_frames: list[tuple[Any, int]] = []     # (Frame, start_ns), root first
    last_end_ns = None

    def close(down_to: int, at_ns: int) -> Iterator[tuple[int, int, int, dict[str, Any]]]:
        while len(open_frames) > down_to:
            depth = len(open_frames) - 1
            frame, start_ns = open_frames.pop()
            args = {"file": frame.file, "line": frame.line} if frame.file else {}
            yield _slice(frame.func or "?", pid, tid, start_ns, at_ns, depth, args)

    for span in spans:
        start_ns, end_ns = _ns(span.start_s), _ns(span.end_s)
        if last_end_ns is not None and span.start_s - last_end_ns / _NS > gap_s:
            yield from close(0, last_end_ns)      # the thread was not sampled in between
        common_depth = 0
        for (frame, _), new in zip(open_frames, span.stack):
            if frame != new:
                break
            common_depth += 1
        yield from close(common_depth, max(start_ns, last_end_ns or start_ns))
        for frame in span.stack[common_depth:]:
            open_frames.append((frame, start_ns))
        last_end_ns = max(end_ns, start_ns)
    if last_end_ns is not None:
        yield from close(0, last_end_ns)


def _state_slices(states: pd.DataFrame, track_of: dict[tuple[int, int], int]
                  ) -> Iterator[tuple[int, int, int, dict[str, Any]]]:
    """Intervals merged while a thread's main state and syscall stay the same; the args
    give the seconds of every state inside the slice (an interval is rarely all one state)."""
    runs = common.state_runs(states, by=("state", "syscall_name"))
    names = [STATE_NAMES.get(str(s), str(s)) for s in runs["state"]]
    syscalls = runs["syscall_name"].tolist()
    seconds = {state: runs[f"{state}_s"].to_numpy() for state in STATES}
    starts, ends = runs["start_s"].to_numpy(), runs["end_s"].to_numpy()
    for pid, tid, lo, hi in common.thread_slices(runs):
        tpid = track_of.get((pid, tid), pid)
        for i in range(lo, hi):
            args: dict[str, Any] = {}
            if isinstance(syscalls[i], str):
                args["syscall"] = syscalls[i]
            for state in STATES:
                if seconds[state][i] > 0:
                    args[f"{state}_s"] = round(float(seconds[state][i]), 6)
            yield _slice(names[i], tpid, tid + STATE_TRACK_TID_OFFSET, _ns(starts[i]),
                         _ns(ends[i]), 0, args)


def _counters(rec: Recording, trace_pid: dict[int, int], pid_of_proc: dict[int, int]
              ) -> Iterator[tuple[int, int, int, dict[str, Any]]]:
    """Per process: CPU (percent of one core, as top shows it), RSS (MiB) and threads."""
    ps = rec.process_samples
    if ps.empty:
        return
    cpu = ps["cpu_percent"] if "cpu_percent" in ps else pd.Series(math.nan, index=ps.index)
    for t_s, proc_id, pid, cpu_percent, rss, nthreads in zip(
            ps["t_s"], ps["proc_id"], ps["pid"], cpu, ps["rss_bytes"], ps["num_threads"]):
        tpid = trace_pid.get(int(proc_id), pid_of_proc.get(int(proc_id), int(pid)))
        ts_ns = _ns(float(t_s))
        for name, key, value in (("CPU", "percent", cpu_percent),
                                 ("RSS", "MiB", None if _nan(rss) else rss / 2**20),
                                 ("Threads", "count", nthreads)):
            if value is None or _nan(value):
                continue
            event = {"ph": "C", "name": name, "pid": tpid, "ts": _us(ts_ns),
                     "args": {key: round(float(value), 3)}}
            yield ts_ns, 0, 0, event


def _nan(value: Any) -> bool:
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return True
