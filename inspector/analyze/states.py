"""Where each thread's time went, interval by interval: on a CPU, waiting for the GIL, for a
lock or another thread, for I/O, sleeping, or runnable with no free core.

Inputs are a Recording's DataFrames; docs/diagnosis.md explains each inference and its limits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from inspector.analyze.frames import StackFacts, stack_facts
from inspector.analyze.vocabulary import STATES
from inspector.recording import Recording
from inspector.syscalls import WAIT_KIND

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
                "syscall_name", "leaf", "importing", "startup_s")


def thread_states(rec: Recording) -> pd.DataFrame:
    """One row per thread per sampling interval (the interval ends at `t_s`).

    Columns: t_s, dt_s, proc_id, pid, tid, name, state (the largest of the states), the
    seconds columns cpu_s, gil_s, lock_s, io_s, sleep_s, runqueue_s, other_s (they sum to
    dt_s), syscall_name (at t_s) and leaf (the Python frame on top at t_s, or missing).
    name, state, syscall_name and leaf are categoricals (they repeat a few texts millions
    of times in a long recording).
    """
    ts = rec.thread_samples
    if ts.empty:
        return _empty()
    # numpy arrays in (process, thread, time) order; `new` marks each thread's first row
    proc_col, tid_col = _key(ts["proc_id"]), _key(ts["tid"])
    t = ts["t_s"].to_numpy(dtype="float64")
    # stable, as sort_values(kind="stable"); load() gives them in this order already
    order = _sort_order(proc_col, tid_col, t)

    def sort(values: np.ndarray) -> np.ndarray:
        return values if order is None else values[order]

    t, proc_col, tid_col = sort(t), sort(proc_col), sort(tid_col)
    new = np.ones(len(t), dtype=bool)
    new[1:] = (proc_col[1:] != proc_col[:-1]) | (tid_col[1:] != tid_col[:-1])

    stack_ids = _stack_ids_at_samples(sort(_key(ts["pid"])), tid_col, t, rec.stacks,
                                      _rate_hz(rec))
    stack_codes, stack_uniq = pd.factorize(stack_ids)
    del stack_ids
    text_of = _stack_texts(rec.stacks)
    sc_codes, sc_names = _codes(ts["syscall_name"], sort)
    fk_codes = _futex_codes(ts, sort)
    end_kind, by_address = _wait_kinds(rec, ts, sort, proc_col, sc_codes, sc_names,
                                       stack_codes, stack_uniq, text_of, fk_codes)
    dt = _diff(t, new)
    cpu, rq, wait = _cpu_and_waits(ts, sort, new, dt)

    # Intervals with a length; one float block holds t_s, dt_s and the seconds per state,
    # each a row.
    with np.errstate(invalid="ignore"):
        keep = np.flatnonzero(dt > 0)
    floats = np.zeros((2 + len(STATES), len(keep)))
    floats[0], floats[1] = t[keep], dt[keep]
    del t, dt
    seconds = floats[2:]
    _split_waits(seconds, keep, new, end_kind, wait)
    gil_by_address = (by_address | (_shift(by_address.astype("int8"), new, 1) == 1))[keep]
    del end_kind, wait, by_address
    seconds[_CPU] = cpu[keep]
    seconds[_RUNQUEUE] = rq[keep] + seconds[_RUNQUEUE]
    del cpu, rq
    _cap_gil(seconds, proc_col[keep], floats[0], ~gil_by_address)
    out = pd.DataFrame(floats.T, columns=["t_s", "dt_s", *STATE_COLUMNS], copy=False)
    out.insert(2, "proc_id", sort(ts["proc_id"].to_numpy())[keep])
    out.insert(3, "pid", sort(ts["pid"].to_numpy())[keep])
    out.insert(4, "tid", sort(ts["tid"].to_numpy())[keep])
    out.insert(5, "name", _thread_names(rec.threads, proc_col, tid_col, new, keep))
    out.insert(6, "state", pd.Categorical.from_codes(_argmax(seconds), categories=STATES))
    out["syscall_name"] = pd.Categorical.from_codes(sc_codes[keep], categories=sc_names)
    # What told a GIL wait from a lock wait in this interval: the futex's address (exact) or
    # the stack on top (a guess, capped by the CPU of the thread's peers).
    out["futex_basis"] = pd.Categorical.from_codes(
        np.where(gil_by_address, 0, np.where(fk_codes[keep] >= 0, 0, 1)).astype("int8"),
        categories=["address", "stack"])
    leaf_codes, leaf_names = pd.factorize(_leaves(stack_uniq, text_of))
    out["leaf"] = pd.Categorical.from_codes(leaf_codes[stack_codes[keep]], leaf_names)
    # Importing modules (the interpreter's start, a lazy import): serial by nature, the same
    # under every concurrency model; the wall-time verdict sets it apart.
    importing = np.array([_importing(text_of.get(int(sid))) for sid in stack_uniq], dtype=bool)
    out["importing"] = importing[stack_codes[keep]] if len(importing) else False
    out["startup_s"] = _startup_s(out, rec.stacks)
    return out


def _startup_s(out: pd.DataFrame, stacks: pd.DataFrame) -> np.ndarray:
    """Per interval, the seconds of it before its process's first Python stack that was not
    importing: the interpreter starting (a process's first interval holds its exec and
    imports, which py-spy may see only in part, and the sample at its end is already past
    them). 0 where the process has no stacks."""
    result = np.zeros(len(out))
    if stacks.empty or out.empty:
        return result
    working = ~each_distinct(stacks["stack"], _importing)
    first = stacks.loc[working].groupby("pid")["t_s"].min()
    if first.empty:
        return result
    ends = out["pid"].map(first).to_numpy(dtype="float64")
    t = out["t_s"].to_numpy(dtype="float64")
    dt = out["dt_s"].to_numpy(dtype="float64")
    with np.errstate(invalid="ignore"):
        overlap = np.minimum(t, ends) - (t - dt)
    return np.where(np.isnan(overlap), 0.0, np.clip(overlap, 0.0, dt))


def each_distinct(values: pd.Series, test: Callable[[Any], Any]) -> np.ndarray:
    """bool(test(value)) for each row, with `test` called once per distinct value (False for
    a missing one): recordings repeat a few hundred stack texts over millions of rows, and
    called row by row, a frame parser took seconds on an hour of 64 threads."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if not len(uniques):
        return np.zeros(len(codes), dtype=bool)
    flags = np.array([bool(test(u)) for u in uniques], dtype=bool)
    return np.where(codes >= 0, flags[np.maximum(codes, 0)], False)


# py-spy names the import machinery's frames by this file (a frozen module).
IMPORT_FRAME = "<frozen importlib._bootstrap"


def _importing(text: str | None) -> bool:
    return bool(text) and IMPORT_FRAME in str(text)


def _cpu_and_waits(ts: pd.DataFrame, sort: Callable[[np.ndarray], np.ndarray],
                   new: np.ndarray, dt: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seconds on a CPU, runnable without one, and waiting, in each interval."""

    def delta(*names: str) -> np.ndarray:
        total = sum(pd.to_numeric(ts[name], errors="coerce").to_numpy(dtype="float64")
                    for name in names)
        return _diff(sort(np.asarray(total)), new)

    d_on_cpu = delta("on_cpu_s")
    with np.errstate(invalid="ignore"):  # NaN at each thread's first row
        # schedstat counts nanoseconds; utime/stime come in 10 ms ticks: prefer schedstat.
        cpu = np.where(np.isnan(d_on_cpu), delta("cpu_user_s", "cpu_system_s"), d_on_cpu)
        del d_on_cpu
        cpu = np.minimum(_clip0(np.where(np.isnan(cpu), 0.0, cpu)), dt)
        d_rq = delta("runqueue_s")
        rq = np.minimum(_clip0(np.where(np.isnan(d_rq), 0.0, d_rq)), dt - cpu)
        wait = _clip0(dt - cpu - rq)
    return cpu, rq, np.where(np.isnan(wait), 0.0, wait)


def _wait_kinds(rec: Recording, ts: pd.DataFrame, sort: Callable[[np.ndarray], np.ndarray],
                proc_col: np.ndarray, sc_codes: np.ndarray, sc_names: list,
                stack_codes: np.ndarray, stack_uniq: np.ndarray,
                text_of: dict[int, str | None], fk_codes: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """What each sampled thread was waiting for: a STATES index or NOT_WAITING (int8), and
    whether a futex's address decided it. Each distinct (syscall, state, stack, process,
    futex kind) is classified once: far fewer than rows."""
    gil_enabled = _gil_enabled_by_proc(rec.processes)
    st_codes, st_names = _codes(ts["state"], sort)
    proc_ids = proc_col.astype("int64")
    proc_codes, _ = pd.factorize(proc_ids)
    key = np.zeros(len(proc_ids), dtype="int64")
    for col in (sc_codes + 1, st_codes + 1, stack_codes, proc_codes, fk_codes + 1):
        key = key * (int(col.max(initial=0)) + 1) + col  # unique per combination
    codes, n_keys = _dense_codes(key)
    del key
    firsts = np.zeros(n_keys, dtype="int64")
    firsts[codes[::-1]] = np.arange(len(codes))[::-1]  # first row of each combination
    kinds = np.array([
        _kind_index(_wait_kind(None if sc_codes[i] < 0 else str(sc_names[sc_codes[i]]),
                               None if st_codes[i] < 0 else str(st_names[st_codes[i]]),
                               stack_facts(text_of.get(int(stack_uniq[stack_codes[i]]))),
                               gil_enabled.get(int(proc_ids[i]), False),
                               FUTEX_KINDS[fk_codes[i]] if fk_codes[i] >= 0 else None))
        for i in firsts
    ], dtype="int8")
    decided = np.array([fk_codes[i] >= 0 and sc_codes[i] >= 0
                        and str(sc_names[sc_codes[i]]) in FUTEX_SYSCALLS for i in firsts],
                       dtype=bool)
    return kinds[codes], decided[codes]


# thread_samples.futex_kind: where a thread's futex lay (docs/recording-format.md).
FUTEX_KINDS = {0: "interpreter", 1: "elsewhere"}  # code -> meaning, codes are value - 1
FUTEX_IN_INTERPRETER, FUTEX_ELSEWHERE = 1, 2      # the values stored


def _futex_codes(ts: pd.DataFrame, sort: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Per sample: 0 when its futex lay in the interpreter's data (the GIL), 1 elsewhere
    (a lock, event, queue, join), -1 unknown (no futex, an older recording, unreadable)."""
    if "futex_kind" not in ts.columns:
        return np.full(len(ts), -1, dtype="int64")
    v = pd.to_numeric(ts["futex_kind"], errors="coerce").to_numpy(dtype="float64")
    codes = np.where(v == FUTEX_IN_INTERPRETER, 0, np.where(v == FUTEX_ELSEWHERE, 1, -1))
    return sort(codes.astype("int64"))


def _split_waits(seconds: np.ndarray, keep: np.ndarray, new: np.ndarray,
                 end_kind: np.ndarray, wait: np.ndarray) -> None:
    """Adds each kept interval's waiting time to `seconds` (a row per state). The kind of
    an interval's wait is seen at its two ends only: all of it goes to the kind at its
    start, or half to each end's kind where both ends waited. Where the thread was on a
    CPU at both ends, the nearest wait seen on that thread one sample later or earlier
    stands in (a GIL-bound thread alternates quickly)."""
    # kinds here: a STATES index, NOT_WAITING, or (beyond a thread's samples) NO_SAMPLE
    start_kind = _shift(end_kind, new, 1)
    nearest = _shift(end_kind, new, -1)
    nearest = np.where(nearest >= 0, nearest, _shift(start_kind, new, 1))
    a_wait = start_kind != NOT_WAITING
    b_wait = end_kind != NOT_WAITING
    first = np.where(a_wait, start_kind, np.where(nearest >= 0, nearest, _OTHER))
    first = np.where(~a_wait & b_wait, end_kind, first)[keep]
    both = (a_wait & b_wait)[keep]
    end_kind, wait = end_kind[keep], wait[keep]
    n = len(keep)
    flat = seconds.reshape(-1)  # a view: state k, interval i at k * n + i
    rows = np.flatnonzero(first >= 0)
    flat[first[rows].astype("int64") * n + rows] = (wait * np.where(both, 0.5, 1.0))[rows]
    rows = np.flatnonzero(both & (end_kind >= 0))
    flat[end_kind[rows].astype("int64") * n + rows] += wait[rows] * 0.5


# Wait kinds as integers: an index into STATES, or one of these.
NOT_WAITING = -1
NO_SAMPLE = -2
_OTHER = STATES.index("other")
_CPU, _GIL, _LOCK, _RUNQUEUE = (STATES.index(s) for s in ("cpu", "gil", "lock", "runqueue"))


def _sort_order(*keys: np.ndarray) -> np.ndarray | None:
    """The stable order of rows by `keys` (first key first), or None if they are in it."""
    if len(keys[0]) > 1:
        ordered = np.zeros(len(keys[0]) - 1, dtype=bool)
        tie = np.ones(len(keys[0]) - 1, dtype=bool)
        for k in keys:
            ordered |= tie & (k[1:] > k[:-1])
            tie &= k[1:] == k[:-1]
        if (ordered | tie).all():
            return None
    return np.lexsort(keys[::-1])


def _dense_codes(key: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes 0..n-1 for the distinct values of a non-negative int64 `key`, and n. Keys of a
    small range are counted (a tenth of a hash table's time on 2 M rows)."""
    top = int(key.max(initial=0)) + 1
    if top > 4 * len(key) + 1024:
        codes, uniq = pd.factorize(key)
        return codes, len(uniq)
    seen = np.bincount(key, minlength=top) > 0
    rank = np.cumsum(seen) - 1
    return rank[key], int(seen.sum())


def _argmax(values: np.ndarray) -> np.ndarray:
    """values.argmax(axis=0) for a few long rows, one row at a time (first maximum wins;
    NaN counts as the maximum, as numpy's argmax does)."""
    best = values[0].copy()
    index = np.zeros(values.shape[1], dtype="int64")
    for k in range(1, len(values)):
        v = values[k]
        better = (v > best) | (np.isnan(v) & ~np.isnan(best))
        best = np.where(better, v, best)
        index[better] = k
    return index


def _kind_index(kind: str | None) -> int:
    return NOT_WAITING if kind is None else STATES.index(kind)


def _key(values: pd.Series) -> np.ndarray:
    """A key column as numbers (int64, or float64 where a damaged file left NaN)."""
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers.to_numpy(dtype="int64" if numbers.notna().all() else "float64")


def _codes(values: pd.Series, sort: Callable[[np.ndarray], np.ndarray]
           ) -> tuple[np.ndarray, list]:
    """Codes (-1 for missing) in sorted order, and the texts they stand for."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return sort(values.cat.codes.to_numpy(dtype="int32")), list(values.cat.categories)
    codes, uniques = pd.factorize(sort(values.to_numpy(dtype=object)), use_na_sentinel=True)
    return codes.astype("int32"), list(uniques)


def _diff(x: np.ndarray, new: np.ndarray) -> np.ndarray:
    """x minus the row before, within each thread; NaN at a thread's first row."""
    out = np.full(len(x), np.nan)
    with np.errstate(invalid="ignore"):  # inf - inf in a damaged file
        out[1:] = x[1:] - x[:-1]
    out[new] = np.nan
    return out


def _shift(x: np.ndarray, new: np.ndarray, n: int) -> np.ndarray:
    """x one row later (n=1) or earlier (n=-1) within each thread; NO_SAMPLE beyond it."""
    out = np.full(len(x), NO_SAMPLE, dtype=x.dtype)
    if n == 1:
        out[1:] = x[:-1]
        out[new] = NO_SAMPLE
    else:
        out[:-1] = x[1:]
        out[np.flatnonzero(new)[1:] - 1] = NO_SAMPLE
    return out


def _clip0(x: np.ndarray) -> np.ndarray:
    """Negative values to 0, NaN kept (as Series.clip(lower=0))."""
    return np.where(x < 0, 0.0, x)


def _thread_names(threads: pd.DataFrame, proc_col: np.ndarray, tid_col: np.ndarray,
                  new: np.ndarray, keep: np.ndarray) -> pd.Categorical:
    """The kept rows' thread names from `threads` (missing where it has none), looked up
    once per thread."""
    starts = np.flatnonzero(new)
    lengths = np.diff(np.append(starts, len(new)))
    known = {} if threads.empty else dict(
        zip(zip(threads["proc_id"].tolist(), threads["tid"].tolist()),
            threads["name"].to_numpy(dtype=object)))
    per_thread = [known.get((proc_col[i].item(), tid_col[i].item())) for i in starts]
    codes, names = pd.factorize(np.array(per_thread, dtype=object))
    return pd.Categorical.from_codes(np.repeat(codes, lengths)[keep], names)


def _stack_texts(stacks: pd.DataFrame) -> dict[int, str | None]:
    """stack_id -> its text (None for -1: no stack)."""
    text_of: dict[int, str | None] = {-1: None}
    if stacks.empty:
        return text_of
    codes, uniq = pd.factorize(stacks["stack_id"].astype("int64").to_numpy())
    first = np.zeros(len(uniq), dtype="int64")
    first[codes[::-1]] = np.arange(len(codes))[::-1]  # each id's first row
    text_of.update(zip(uniq.tolist(), stacks["stack"].take(first).to_numpy(dtype=object)))
    return text_of


def _leaves(stack_ids: np.ndarray, text_of: dict[int, str | None]) -> np.ndarray:
    """The leaf frame of each of `stack_ids` (None where there is no stack)."""
    return np.array([stack_facts(text_of.get(int(sid))).leaf for sid in stack_ids],
                    dtype=object)


def _empty() -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype="float64") for c in _OUT_COLUMNS})
    for c in ("proc_id", "pid", "tid"):
        df[c] = df[c].astype("int64")
    for c in ("name", "state", "syscall_name", "leaf"):
        df[c] = pd.Categorical([])
    df["importing"] = df["importing"].astype(bool)
    df["startup_s"] = df["startup_s"].astype("float64")
    return df


def _rate_hz(rec: Recording) -> float:
    return rec.stack_rate_hz


def _gil_enabled_by_proc(processes: pd.DataFrame) -> dict[int, bool]:
    """Python processes have a GIL unless the recorder saw a free-threaded build run
    without it; non-Python processes have none (their futex waits are plain lock waits)."""
    out: dict[int, bool] = {}
    for row in processes.itertuples(index=False):
        out[int(row.proc_id)] = bool(row.is_python) and row.python_gil != "disabled"
    return out


def _stack_ids_at_samples(pid: np.ndarray, tid: np.ndarray, times: np.ndarray,
                          stacks: pd.DataFrame, rate_hz: float) -> np.ndarray:
    """The stack_id py-spy saw on each sampled thread at the sample's time (-1 where no span
    covers it), by a sorted search in that thread's spans."""
    result = np.full(len(times), -1, dtype="int64")
    if stacks.empty:
        return result
    slack = STACK_SLACK_PERIODS / max(rate_hz, 1.0)
    s_pid, s_tid = _key(stacks["pid"]), _key(stacks["tid"])
    s_start = stacks["t_s"].to_numpy(dtype="float64")
    order = _thread_time_order(s_pid, s_tid, s_start)
    s_pid, s_tid, s_start = s_pid[order], s_tid[order], s_start[order]
    s_end = s_start + stacks["duration_s"].to_numpy(dtype="float64")[order]
    s_ids = stacks["stack_id"].to_numpy(dtype="int64")[order]
    spans = _runs(s_pid, s_tid)
    for (p, tid_value), (lo, hi) in _runs(pid, tid).items():
        found = spans.get((p, tid_value))
        if found is None:
            continue
        starts, ends, ids = (a[found[0]:found[1]] for a in (s_start, s_end, s_ids))
        at = times[lo:hi]
        idx = np.searchsorted(starts, at, side="right") - 1
        safe = np.clip(idx, 0, len(starts) - 1)
        covered = (idx >= 0) & (at <= ends[safe] + slack)
        nxt = np.clip(idx + 1, 0, len(starts) - 1)
        soon = ~covered & (idx + 1 < len(starts)) & (starts[nxt] - at <= slack)
        picked = np.full(len(at), -1, dtype="int64")
        picked[covered] = ids[safe[covered]]
        picked[soon] = ids[nxt[soon]]
        result[lo:hi] = picked
    return result


def _thread_time_order(pid: np.ndarray, tid: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The stable order of rows by (pid, tid, t). Spans come from load() in time order:
    then a stable sort by thread alone gives it, and small thread numbers sort in linear
    time (a third of a lexsort's on 2 M spans)."""
    with np.errstate(invalid="ignore"):
        in_time_order = bool(np.all(t[1:] >= t[:-1]))
    if not in_time_order or np.isnan(pid).any() or np.isnan(tid).any():
        return np.lexsort((t, tid, pid))
    p_codes, p_uniq = pd.factorize(pid, sort=True)
    t_codes, t_uniq = pd.factorize(tid, sort=True)
    thread = p_codes.astype("int64") * len(t_uniq) + t_codes
    small = np.int16 if len(p_uniq) * len(t_uniq) < 2**15 else np.int64
    return np.argsort(thread.astype(small), kind="stable")


def _runs(a: np.ndarray, b: np.ndarray) -> dict[tuple[Any, Any], tuple[int, int]]:
    """(a, b) -> (first row, end row) of each run of equal pairs in sorted arrays (NaN
    keys, from a damaged file, are left out: they match nothing)."""
    if not len(a):
        return {}
    change = np.ones(len(a), dtype=bool)
    change[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], len(a))
    return {(a[s].item(), b[s].item()): (int(s), int(e)) for s, e in zip(starts, ends)
            if a[s] == a[s] and b[s] == b[s]}


def _wait_kind(syscall: str | None, sched_state: str | None, facts: StackFacts,
               gil_enabled: bool, futex_at: str | None = None) -> str | None:
    """What a thread seen at one sample was waiting for; None when it was not waiting.
    A futex in the interpreter's own data is the GIL's condition variable (every CPython
    3.9-3.13 here, shared/MEASUREMENTS.md); anywhere else, a lock, event, queue or join."""
    if syscall == "running":
        return None
    if syscall is None:
        return "io" if sched_state in DISK_WAIT_STATES else "other"
    if syscall in FUTEX_SYSCALLS and futex_at is not None:
        return "gil" if futex_at == "interpreter" and gil_enabled else "lock"
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


def _cap_gil(seconds: np.ndarray, proc_ids: np.ndarray, t: np.ndarray,
             guessed: np.ndarray) -> None:
    """A thread can wait for the GIL only while another thread of its process holds it:
    moves the excess of `seconds` (a row per state) from GIL to lock waits, in place, in
    the intervals whose GIL wait was guessed from the stack (`guessed`), not seen at the
    GIL's own address."""
    gil = seconds[_GIL]
    if not (gil[guessed] > 0).any():
        return
    cpu = seconds[_CPU]
    proc_codes, proc_uniq = pd.factorize(proc_ids)
    # equal times have equal bits (+ 0.0 makes a -0.0 a 0.0): integers hash faster
    t_codes, t_uniq = pd.factorize((t + 0.0).view("int64"))
    group, _ = _dense_codes(proc_codes.astype("int64") * len(t_uniq) + t_codes)
    others = _clip0(np.bincount(group, weights=cpu)[group] - cpu)
    excess = np.where(guessed, _clip0(gil - others), 0.0)
    seconds[_LOCK] = seconds[_LOCK] + excess
    seconds[_GIL] = gil - excess
