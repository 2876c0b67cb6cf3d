"""Properties of the per-interval thread states and the verdicts, on recordings of any shape
(generated data through the same DataFrame interface `inspector.load` returns)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.analyze import STATES, diagnose, thread_states
from inspector.analyze.states import STATE_COLUMNS
from inspector.analyze.vocabulary import ADVICE
from inspector.recording import Meta, Recording, StacksMeta
from inspector.text.json import diagnosis_data

SYSCALLS = ["running", "futex", "epoll_wait", "recvfrom", "clock_nanosleep", "wait4", "read",
            "sched_yield", "syscall_999", None]
LIB = "/usr/lib/python3.11"
STACKS = [
    "work (/app/w.py:7)",
    f"consume (/app/w.py:9);Condition.wait ({LIB}/threading.py:327)",
    f"<module> (/app/m.py:1);BaseEventLoop._run_once ({LIB}/asyncio/base_events.py:1922);"
    f"EpollSelector.select ({LIB}/selectors.py:468)",
    f"<module> (/app/m.py:1);BaseEventLoop._run_once ({LIB}/asyncio/base_events.py:1922);"
    "handler (/app/m.py:5)",
]

sample = st.tuples(
    st.floats(0.001, 0.3),            # time since the thread's previous sample
    st.floats(0.0, 0.4),              # CPU used meanwhile (may exceed the interval: jitter)
    st.one_of(st.none(), st.floats(0.0, 0.4)),  # run-queue time meanwhile, or unreadable
    st.sampled_from(SYSCALLS),
    st.sampled_from(["R", "S", "D", None]),
    st.one_of(st.none(), st.sampled_from(range(len(STACKS)))),
)
thread = st.lists(sample, min_size=0, max_size=25)
process = st.tuples(st.booleans(), st.sampled_from(["enabled", "disabled", None]),
                    st.lists(thread, min_size=1, max_size=4))


def _recording(procs: list) -> Recording:
    p_rows, t_rows, ts_rows, ps_rows, stack_rows = [], [], [], [], []
    tid = 100
    for proc_id, (is_python, gil, threads) in enumerate(procs, start=1):
        pid = proc_id * 1000
        p_rows.append({"proc_id": proc_id, "pid": pid, "ppid": 1, "parent_proc_id": None,
                       "name": "python" if is_python else "sh", "cmdline": ["x"], "exe": None,
                       "create_time": 0.0, "start_s": 0.0, "end_s": None, "exit_code": None,
                       "is_python": is_python, "python_version": "3.11" if is_python else None,
                       "python_gil": gil if is_python else None, "is_target": proc_id == 1})
        proc_cpu: dict[float, float] = {}
        for samples in threads:
            tid += 1
            t_rows.append({"proc_id": proc_id, "pid": pid, "tid": tid, "name": f"t{tid}",
                           "start_s": 0.0, "end_s": None})
            t = cpu = rq = 0.0
            for dt, d_cpu, d_rq, sc, state, stack in samples:
                # samples land on a 0.1 s grid, as the recorder's ticks do
                t = round(t + max(0.1, round(dt, 1)), 1)
                cpu += d_cpu
                rq += d_rq or 0.0
                ts_rows.append({"t_s": t, "proc_id": proc_id, "pid": pid, "tid": tid,
                                "cpu_user_s": round(cpu, 2), "cpu_system_s": 0.0,
                                "state": state, "syscall": None, "syscall_name": sc,
                                "on_cpu_s": cpu, "runqueue_s": rq if d_rq is not None else None,
                                "cpu_percent": None})
                proc_cpu[t] = proc_cpu.get(t, 0.0) + cpu
                if stack is not None:
                    stack_rows.append({"t_s": t - 0.05, "duration_s": 0.1, "proc_id": proc_id,
                                       "pid": pid, "tid": tid, "thread_name": None,
                                       "stack_id": stack + 1, "samples": 10, "owns_gil": None,
                                       "stack": STACKS[stack]})
        prev = None
        for t in sorted(proc_cpu):
            pct = None if prev is None else max(0.0, proc_cpu[t] - prev[1]) / (t - prev[0]) * 100
            ps_rows.append({"t_s": t, "proc_id": proc_id, "pid": pid, "cpu_user_s": proc_cpu[t],
                            "cpu_system_s": 0.0, "rss_bytes": 1, "uss_bytes": None,
                            "num_threads": len(threads), "ctx_voluntary": 0,
                            "ctx_involuntary": 0, "read_bytes": 0, "write_bytes": 0,
                            "state": "S", "cpu_percent": pct})
            prev = (t, proc_cpu[t])
    frame = pd.DataFrame
    stacks = frame(stack_rows, columns=["t_s", "duration_s", "proc_id", "pid", "tid",
                                        "thread_name", "stack_id", "samples", "owns_gil",
                                        "stack"])
    samples_cols = ["t_s", "proc_id", "pid", "tid", "cpu_user_s", "cpu_system_s", "state",
                    "syscall", "syscall_name", "on_cpu_s", "runqueue_s", "cpu_percent"]
    return Recording(
        path=Path("generated.sqlite"),
        meta=Meta(cpu_count=2, duration_s=10.0, command=("x",), exit_code=0,
                  stacks=StacksMeta(enabled=True)),
        processes=frame(p_rows), threads=frame(t_rows),
        process_samples=frame(ps_rows) if ps_rows else frame(
            columns=["t_s", "proc_id", "pid", "cpu_user_s", "cpu_system_s", "rss_bytes",
                     "num_threads", "cpu_percent"]),
        thread_samples=frame(ts_rows, columns=samples_cols), stacks=stacks)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(process, min_size=1, max_size=3))
def test_states_split_each_interval_and_verdicts_stay_in_their_vocabulary(procs: list) -> None:
    rec = _recording(procs)
    s = thread_states(rec)
    values = s[list(STATE_COLUMNS)]
    assert ((values.sum(axis=1) - s["dt_s"]).abs() < 1e-9).all()
    assert (values >= -1e-12).all().all()
    assert set(s["state"]) <= set(STATES)
    assert (s["dt_s"] > 0).all()
    # no GIL where there is none: non-Python or free-threaded processes
    no_gil = rec.processes[~rec.processes["is_python"].astype(bool)
                           | (rec.processes["python_gil"] == "disabled")]["proc_id"]
    assert (s[s["proc_id"].isin(no_gil)]["gil_s"] == 0).all()
    # a GIL wait needs another thread of the process on a CPU meanwhile
    proc_cpu = s.groupby(["proc_id", "t_s"])["cpu_s"].transform("sum")
    assert (s["gil_s"] <= proc_cpu - s["cpu_s"] + 1e-9).all()

    d = diagnosis_data(diagnose(rec, s))
    v = d["verdict"]
    assert v["bound"] in {"cpu", "io", "mixed", "idle"}
    assert v["advice"] in ADVICE
    assert v["evidence"]
    if v["gil_limited"]:
        assert any(p["gil_limited"] and p["python"] and p["python_gil"] != "disabled"
                   for p in d["processes"])
    for t in d["threads"]:
        assert set(t["state_s"]) == set(STATES)


def _interval_rows(*threads: dict[str, float]) -> pd.DataFrame:
    """One 20-ms sampling interval of these threads (each: its seconds in some states)."""
    rows = [{"t_s": 0.02, "dt_s": 0.02, "proc_id": i, "tid": i,
             **{c: 0.0 for c in STATE_COLUMNS}, **t} for i, t in enumerate(threads)]
    return pd.DataFrame(rows)


def test_a_wait_for_a_core_is_wanted_cpu_as_the_thread_computes_when_not_blocked() -> None:
    from inspector.analyze.wall import intervals

    # sixteen I/O processes on a busy machine: each ran 2 ms, queued 10 for a core and waited
    # 8 on its socket. Given a core, each would have run its burst and blocked again.
    io = intervals(_interval_rows(*[{"cpu_s": 0.002, "runqueue_s": 0.010, "io_s": 0.008}] * 16))
    assert io["demand"].iloc[0] == pytest.approx(16 * (0.002 + 0.010 * 0.2) / 0.02)
    # a thread that only computes wants all of its wait, however little it got to run
    cpu = intervals(_interval_rows({"cpu_s": 0.001, "runqueue_s": 0.019}))
    assert cpu["demand"].iloc[0] == pytest.approx(1.0) and cpu["label"].iloc[0] != "io"
    queued = intervals(_interval_rows({"runqueue_s": 0.02}))  # queued throughout
    assert queued["demand"].iloc[0] == pytest.approx(1.0)
