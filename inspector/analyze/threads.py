"""Per-thread facts (where each OS thread's time went, the frames py-spy saw on top) and the
peak of the run: the sample with the most threads alive, as htop would have listed them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from inspector.analyze.frames import stack_facts
from inspector.analyze.model import PeakProcess, ThreadFacts
from inspector.analyze.states import STATE_COLUMNS, STATES
from inspector.recording import Recording


def thread_facts(rec: Recording, states: pd.DataFrame) -> list[ThreadFacts]:
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
        st: dict[str, float] = {s: round(float(getattr(r, f"{s}_s")), 3) for s in STATES}
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
        zero: dict[str, float] = {s: 0.0 for s in STATES}
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


def peak(rec: Recording) -> tuple[float | None, int, tuple[PeakProcess, ...]]:
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
