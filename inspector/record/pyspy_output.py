"""py-spy's output files read: its chrometrace B/E events turned into spans of one unchanged
stack on one thread, its raw `--gil` lines into how often each thread held the GIL. Threads
are the OS thread ids of the `thread (TID): name` root frames `--threads` adds; on Python
< 3.11 under --nonblocking those carry pthread ids, turned into OS thread ids by `TidOf`
(record/pthreads).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

# `thread (TID): name`; on Python < 3.11 under --nonblocking, `thread (0x7F..)`: a pthread id
_THREAD_ROOT = re.compile(r"^thread \((0x[0-9A-Fa-f]+|\d+)\)(?::\s?(.*))?$")
TidOf = Callable[[int, int], "int | None"]  # (pid, pthread id) -> OS thread id


def _root_tid(pid: int, text: str, name: str | None, tid_of: TidOf | None) -> int | None:
    """The OS thread id of a `thread (...)` root frame's id."""
    if not text.startswith("0x"):
        return int(text)
    tid = tid_of(pid, int(text, 16)) if tid_of is not None else None
    if tid is None and name == "MainThread":
        return pid  # the main thread's tid is its process's pid
    return tid


@dataclass
class StackSpan:
    t_s: float
    duration_s: float
    pid: int
    tid: int
    thread_name: str | None
    stack: str


def parse_chrometrace(events: Iterable[dict[str, Any]], t_launch_s: float,
                      end_ts_us: float | None = None,
                      tid_of: TidOf | None = None) -> list[StackSpan]:
    """Turns py-spy's B/E events into spans of one unchanged stack on one thread.

    py-spy writes each sample as the difference from the previous sample *with the same
    pthread id*, whatever its process, and forked processes share pthread ids (every pool
    worker's main thread has its parent's): so the frames are rebuilt per pthread id, as
    py-spy keeps them, and each sample is then given to its process (the events' `pid`) and
    OS thread (the root frame `thread (TID): name` that `--threads` adds; where that frame
    holds a pthread id, `tid_of` turns it into the OS thread id, and a sample whose thread
    it cannot name is dropped). A thread's stack holds from one of its samples until its
    next sample that differs.
    """
    frames_by_ptid: dict[int, list[str]] = {}
    current: dict[tuple[int, int], tuple[float, str, str | None]] = {}  # (pid, tid) -> span
    spans: list[StackSpan] = []
    # py-spy caches Python thread names by pthread id, and pthread ids are reused once a
    # thread ends: a later OS thread behind the same pthread id may carry a stale name.
    first_tid: dict[tuple[int, int], int] = {}

    def close(key: tuple[int, int], until: float) -> None:
        start, stack, name = current.pop(key)
        if until > start:
            spans.append(StackSpan(t_s=t_launch_s + start / 1e6,
                                   duration_s=(until - start) / 1e6, pid=key[0], tid=key[1],
                                   thread_name=name, stack=stack))

    def observe(ptid: int, pid: int, ts: float) -> None:
        frames = frames_by_ptid.get(ptid) or []
        # With --subprocesses the roots are `process PID:"cmdline"` frames, then the thread.
        i, m = next(((j, m) for j, m in enumerate(map(_THREAD_ROOT.match, frames)) if m),
                    (0, None))
        if m is None or i + 1 >= len(frames):
            return
        tid = _root_tid(pid, m.group(1), m.group(2), tid_of)
        if tid is None:
            return
        name = m.group(2) if first_tid.setdefault((pid, ptid), tid) == tid else None
        stack = ";".join(frames[i + 1:])
        key = (pid, tid)
        span = current.get(key)
        if span is not None:
            if span[1] == stack:
                return
            close(key, ts)
        current[key] = (ts, stack, name)

    group: tuple[int, float, int] | None = None  # the sample being read: pthread id, ts, pid
    began = False  # its B events have started (an E after a B starts the next sample)
    last_ts: float | None = None
    for ev in events:
        ph = ev.get("ph")
        if ph not in ("B", "E"):
            continue
        ptid, ts = int(ev["tid"]), float(ev["ts"])
        if group is None or group[0] != ptid or group[1] != ts or (ph == "E" and began):
            if group is not None:
                observe(group[0], group[2], group[1])
            group, began = (ptid, ts, int(ev["pid"])), False
        frames = frames_by_ptid.setdefault(ptid, [])
        if ph == "B":
            args = ev.get("args") or {}
            filename, line = args.get("filename") or "", args.get("line") or 0
            name = str(ev.get("name", "?"))
            frames.append(f"{name} ({filename}:{line})" if filename else name)
            began = True
        elif frames:
            frames.pop()
        last_ts = ts if last_ts is None else max(last_ts, ts)
    if group is not None:
        observe(group[0], group[2], group[1])
    end = end_ts_us if end_ts_us is not None else last_ts
    if end is not None:
        for key in list(current):
            close(key, end)
    return spans


@dataclass
class GilCount:
    pid: int
    tid: int
    thread_name: str | None
    samples: int


_PROCESS_ROOT = re.compile(r"^process (\d+):")


def parse_gil_counts(text: str, tid_of: TidOf | None = None) -> list[GilCount]:
    """Sums py-spy `--gil --threads -f raw` lines (`frames... COUNT`) per thread."""
    counts: dict[tuple[int, int], GilCount] = {}
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        pid = tid = None
        name = None
        for frame in stack.split(";"):
            m = _PROCESS_ROOT.match(frame)
            if m:
                pid = int(m.group(1))
                continue
            t = _THREAD_ROOT.match(frame)
            if t:
                if pid is not None:
                    tid, name = _root_tid(pid, t.group(1), t.group(2), tid_of), t.group(2)
                break
        if pid is None or tid is None:
            continue
        entry = counts.setdefault((pid, tid), GilCount(pid, tid, name, 0))
        entry.samples += int(count)
    return list(counts.values())
