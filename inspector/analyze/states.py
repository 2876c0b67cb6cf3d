"""Where each thread's time went, interval by interval: on a CPU, waiting for the GIL, for a
lock or another thread, for I/O, sleeping, or runnable with no free core.

Inputs are a Recording's DataFrames; docs/diagnosis.md explains each inference and its limits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from inspector.analyze.frames import StackFacts, stack_facts
from inspector.recording import Recording
from inspector.syscalls import WAIT_KIND

STATES = ("cpu", "gil", "lock", "io", "sleep", "runqueue", "other")
STATE_COLUMNS = tuple(f"{s}_s" for s in STATES)

# A py-spy span covers a sample time if it started before it and ended no more than this many
# sampling periods before it: one missed sample (nonblocking mode skips some) is not a gap.
STACK_SLACK_PERIODS = 2.0
# Futex waits: py-spy cannot tell a GIL wait from a Lock.acquire() the user's code made
# directly (both show ordinary code on top), so those are split into GIL and lock by keeping
# the GIL part no larger than the CPU the process's *other* threads used meanwhile: someone
# must hold the GIL for a thread to wait on it.
FUTEX_SYSCALLS = frozenset({"futex", "futex_waitv"})
# Scheduler states of a thread blocked in the kernel on disk (or NFS): uninterruptible sleep.
DISK_WAIT_STATES = frozenset({"D"})

_OUT_COLUMNS = ("t_s", "dt_s", "proc_id", "pid", "tid", "name", "state", *STATE_COLUMNS,
                "syscall_name", "leaf")


def thread_states(rec: Recording) -> pd.DataFrame:
    """One row per thread per sampling interval (the interval ends at `t_s`).

    Columns: t_s, dt_s, proc_id, pid, tid, name, state (the largest of the states), the
    seconds columns cpu_s, gil_s, lock_s, io_s, sleep_s, runqueue_s, other_s (they sum to
    dt_s), syscall_name (at t_s) and leaf (the Python frame on top at t_s, or None).
    """
    ts = rec.thread_samples
    if ts.empty:
        return _empty()
    ts = ts.sort_values(["proc_id", "tid", "t_s"], kind="stable").reset_index(drop=True)
    stack_ids = _stack_ids_at_samples(ts, rec.stacks, _rate_hz(rec))
    text_of: dict[int, str | None] = {-1: None}
    if not rec.stacks.empty:
        distinct = rec.stacks.drop_duplicates("stack_id")
        text_of.update(zip(distinct["stack_id"].astype("int64"), distinct["stack"]))
    keys = [ts["proc_id"], ts["tid"]]

    t = ts["t_s"].astype("float64")
    dt = t.groupby(keys, sort=False).diff()
    cpu_ticks = ts["cpu_user_s"].astype("float64") + ts["cpu_system_s"].astype("float64")
    on_cpu = pd.to_numeric(ts["on_cpu_s"], errors="coerce").astype("float64")
    rq_cum = pd.to_numeric(ts["runqueue_s"], errors="coerce").astype("float64")
    d_ticks = cpu_ticks.groupby(keys, sort=False).diff()
    d_on_cpu = on_cpu.groupby(keys, sort=False).diff()
    d_rq = rq_cum.groupby(keys, sort=False).diff()
    # schedstat counts nanoseconds; utime/stime come in 10 ms ticks: prefer schedstat.
    cpu = d_on_cpu.where(d_on_cpu.notna(), d_ticks).fillna(0.0)
    cpu = np.minimum(cpu.clip(lower=0.0), dt)
    rq = np.minimum(d_rq.fillna(0.0).clip(lower=0.0), dt - cpu)
    wait = (dt - cpu - rq).clip(lower=0.0)

    gil_enabled = _gil_enabled_by_proc(rec.processes)
    syscall = ts["syscall_name"].astype(object).where(ts["syscall_name"].notna(), None)
    sched = ts["state"].astype(object).where(ts["state"].notna(), None)
    # Classify each distinct (syscall, state, stack, process) once: far fewer than rows.
    sc_codes, sc_names = pd.factorize(syscall, use_na_sentinel=True)
    st_codes, st_names = pd.factorize(sched, use_na_sentinel=True)
    proc_ids = ts["proc_id"].to_numpy(dtype="int64")
    columns = [sc_codes + 1, st_codes + 1, stack_ids + 1, proc_ids]
    key = np.zeros(len(ts), dtype="int64")
    for col in columns:  # one int64 per row, unique per combination (small ranges each)
        key = key * (int(col.max(initial=0)) + 1) + col
    codes, uniq_keys = pd.factorize(key)
    firsts = np.zeros(len(uniq_keys), dtype="int64")
    firsts[codes[::-1]] = np.arange(len(codes))[::-1]  # first row of each combination
    kinds = np.array([
        _wait_kind(None if sc_codes[i] < 0 else str(sc_names[sc_codes[i]]),
                   None if st_codes[i] < 0 else str(st_names[st_codes[i]]),
                   stack_facts(text_of.get(int(stack_ids[i]))),
                   gil_enabled.get(int(proc_ids[i]), False))
        for i in firsts
    ], dtype=object)
    end_kind = kinds[codes]
    end_kind_s = pd.Series(end_kind, index=ts.index, dtype=object)
    start_kind = end_kind_s.groupby(keys, sort=False).shift(1)

    out = pd.DataFrame({
        "t_s": t, "dt_s": dt, "proc_id": ts["proc_id"], "pid": ts["pid"], "tid": ts["tid"],
        "syscall_name": syscall,
        "leaf": pd.Series(_leaves(stack_ids, text_of), index=ts.index, dtype=object),
    })
    for s in STATE_COLUMNS:
        out[s] = 0.0
    out["cpu_s"] = cpu
    out["runqueue_s"] = rq
    # The interval's waiting time is known in total only; its kind is seen at its two ends.
    # Where the thread was on a CPU at both ends, the nearest wait seen on that thread one
    # sample later or earlier stands in (a GIL-bound thread alternates quickly).
    nearest = end_kind_s.groupby(keys, sort=False).shift(-1)
    nearest = nearest.where(nearest.notna(), start_kind.groupby(keys, sort=False).shift(1))
    start_arr = start_kind.to_numpy(dtype=object)
    end_arr = end_kind_s.to_numpy(dtype=object)
    near_arr = nearest.to_numpy(dtype=object)
    wait_arr = wait.fillna(0.0).to_numpy(dtype="float64")
    a_wait = np.array([k is not None for k in start_arr], dtype=bool)
    b_wait = np.array([k is not None for k in end_arr], dtype=bool)
    near_ok = np.array([isinstance(k, str) for k in near_arr], dtype=bool)
    first = np.where(a_wait, start_arr, np.where(near_ok, near_arr, "other"))
    first = np.where(~a_wait & b_wait, end_arr, first)
    w_first = np.where(a_wait & b_wait, 0.5, 1.0)
    w_second = np.where(a_wait & b_wait, 0.5, 0.0)
    acc = {st: wait_arr * (w_first * (first == st) + w_second * (end_arr == st))
           for st in STATES}
    for s in ("gil", "lock", "io", "sleep", "other"):
        out[f"{s}_s"] = acc[s]
    out["runqueue_s"] = out["runqueue_s"] + acc["runqueue"]
    out = out[out["dt_s"] > 0].copy()
    out = _cap_gil(out)
    names = rec.threads.set_index(["proc_id", "tid"])["name"] if not rec.threads.empty else None
    if names is not None:
        idx = pd.MultiIndex.from_arrays([out["proc_id"], out["tid"]])
        out["name"] = names.reindex(idx).to_numpy(dtype=object)
    else:
        out["name"] = None
    state_values = out[list(STATE_COLUMNS)].to_numpy(dtype="float64")
    out["state"] = np.asarray(STATES, dtype=object)[state_values.argmax(axis=1)] \
        if len(out) else []
    return out[list(_OUT_COLUMNS)].reset_index(drop=True)


def _leaves(stack_ids: np.ndarray, text_of: dict[int, str | None]) -> np.ndarray:
    leaf_of = {sid: stack_facts(text).leaf for sid, text in text_of.items()}
    codes, uniq = pd.factorize(stack_ids)
    return np.array([leaf_of.get(int(u)) for u in uniq], dtype=object)[codes]


def _empty() -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype="float64") for c in _OUT_COLUMNS})
    for c in ("proc_id", "pid", "tid"):
        df[c] = df[c].astype("int64")
    for c in ("name", "state", "syscall_name", "leaf"):
        df[c] = df[c].astype(object)
    return df


def _rate_hz(rec: Recording) -> float:
    stacks = rec.meta.get("stacks") or {}
    settings = rec.meta.get("settings") or {}
    rate = stacks.get("rate_hz") or settings.get("rate_hz") or 100
    return float(rate)


def _gil_enabled_by_proc(processes: pd.DataFrame) -> dict[int, bool]:
    """Python processes have a GIL unless the recorder saw a free-threaded build run
    without it; non-Python processes have none (their futex waits are plain lock waits)."""
    out: dict[int, bool] = {}
    for row in processes.itertuples(index=False):
        out[int(row.proc_id)] = bool(row.is_python) and row.python_gil != "disabled"
    return out


def _stack_ids_at_samples(ts: pd.DataFrame, stacks: pd.DataFrame, rate_hz: float
                          ) -> np.ndarray:
    """The stack_id py-spy saw on each sampled thread at the sample's time (-1 where no span
    covers it), by a sorted search in that thread's spans."""
    result = np.full(len(ts), -1, dtype="int64")
    if stacks.empty:
        return result
    slack = STACK_SLACK_PERIODS / max(rate_hz, 1.0)
    st = stacks.sort_values(["pid", "tid", "t_s"], kind="stable")
    groups = {key: g for key, g in st.groupby(["pid", "tid"], sort=False)}
    for (pid, tid), rows in ts.groupby(["pid", "tid"], sort=False):
        spans = groups.get((pid, tid))
        if spans is None:
            continue
        starts = spans["t_s"].to_numpy(dtype="float64")
        ends = starts + spans["duration_s"].to_numpy(dtype="float64")
        ids = spans["stack_id"].to_numpy(dtype="int64")
        times = rows["t_s"].to_numpy(dtype="float64")
        idx = np.searchsorted(starts, times, side="right") - 1
        safe = np.clip(idx, 0, len(starts) - 1)
        covered = (idx >= 0) & (times <= ends[safe] + slack)
        nxt = np.clip(idx + 1, 0, len(starts) - 1)
        soon = ~covered & (idx + 1 < len(starts)) & (starts[nxt] - times <= slack)
        picked = np.full(len(times), -1, dtype="int64")
        picked[covered] = ids[safe[covered]]
        picked[soon] = ids[nxt[soon]]
        result[rows.index.to_numpy()] = picked
    return result


def _wait_kind(syscall: str | None, sched_state: str | None, facts: StackFacts,
               gil_enabled: bool) -> str | None:
    """What a thread seen at one sample was waiting for; None when it was not waiting."""
    if syscall == "running":
        return None
    if syscall is None:
        return "io" if sched_state in DISK_WAIT_STATES else "other"
    kind = WAIT_KIND.get(syscall)
    if kind == "sleep":
        return "sleep"
    if kind == "runqueue":
        return "runqueue"
    if facts.waits_on_program:
        return "lock"
    if kind == "io":
        return "io"
    if kind == "child":
        return "lock"
    if kind == "lock":
        if syscall in FUTEX_SYSCALLS and gil_enabled and facts.leaf is not None:
            return "gil"
        return "lock"
    return "io" if sched_state in DISK_WAIT_STATES else "other"


def _cap_gil(out: pd.DataFrame) -> pd.DataFrame:
    """A thread can wait for the GIL only while another thread of its process holds it."""
    if not (out["gil_s"] > 0).any():
        return out
    proc_cpu = out.groupby(["proc_id", "t_s"], sort=False)["cpu_s"].transform("sum")
    others = (proc_cpu - out["cpu_s"]).clip(lower=0.0)
    excess = (out["gil_s"] - others).clip(lower=0.0)
    out["gil_s"] = out["gil_s"] - excess
    out["lock_s"] = out["lock_s"] + excess
    return out
