"""What recording costs, as behaviour (timings live in benchmarks/): py-spy runs of growing
length ended with SIGINT keep their stacks, the --gil chain is opt-in, and the recording
says how much CPU the recorder and its py-spy runs took."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import turns
from machine import cores_left, for_the_recording, judged_on

import inspector
from inspector.analyze import diagnose, thread_states

PY = sys.executable
WORKLOADS = Path(__file__).parent / "workloads"


def record(out: Path, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "inspector", "record", "-q", "-o", str(out), *args],
                          capture_output=True, text=True, timeout=120, **kw)


def test_by_default_no_gil_chain_runs_and_the_gil_verdict_comes_from_the_futex(
        gil_threads_recording: Path) -> None:
    rec = inspector.load(gil_threads_recording)  # recorded at the defaults
    stacks = rec.meta.stacks
    assert stacks.enabled and stacks.gil_rate_hz is None
    assert rec.gil_samples.empty
    # the stacks of the four GIL-bound threads are there all the same
    named = set(rec.stacks.thread_name.dropna())
    assert {"arith-0", "arith-1", "arith-2", "arith-3"} <= named
    # and a file without gil_samples still diagnoses (the futex addresses decide)
    diag = diagnose(rec, thread_states(rec))
    assert diag.verdict is not None


def test_the_recording_states_the_recorders_own_cpu_and_its_py_spy_runs(tmp_path: Path) -> None:
    out = tmp_path / "cpu.sqlite"
    proc = record(out, "--", PY, "-c", "import time; time.sleep(1.5)")
    assert proc.returncode == 0, proc.stderr
    rec = inspector.load(out)
    cpu = rec.meta.recorder_cpu
    assert cpu is not None and cpu.over_s is not None and cpu.mean_cores is not None
    assert cpu.own_cores is not None and cpu.py_spy_cores is not None
    assert cpu.over_s > 1.0
    assert cpu.own_cores > 0  # the recorder always works a little
    assert abs(cpu.mean_cores - cpu.own_cores - cpu.py_spy_cores) < 1e-3
    assert 0 <= cpu.mean_cores < rec.cpu_count
    # the per-tick rows say the same in time
    assert (rec.machine_samples.recorder_cores >= 0).all()


def test_with_gil_check_the_cross_check_runs_and_says_its_rate(tmp_path: Path) -> None:
    out = tmp_path / "gilcheck.sqlite"
    proc = record(out, "--gil-check", "--", PY, str(WORKLOADS / "gil_threads.py"), "1.5")
    assert proc.returncode == 0, proc.stderr
    rec = inspector.load(out)
    assert rec.meta.stacks.gil_rate_hz == 20
    assert not rec.gil_samples.empty
    # and the diagnosis reads it: some thread held the GIL in most of its samples
    proc = diagnose(rec, thread_states(rec)).processes[0]
    assert proc.gil_held_share is not None and proc.gil_held_share >= 0.6


PHASES = textwrap.dedent("""
    import sys, time
    def phase_one(until):
        while time.monotonic() < until:
            sum(i * i for i in range(1000))
    def phase_two():
        while True:
            sum(i * i for i in range(1000))
    print("ready", flush=True)
    phase_one(time.monotonic() + 1.3)
    phase_two()
""")


def test_a_long_run_cut_by_the_end_of_the_recording_keeps_its_stacks(tmp_path: Path) -> None:
    # Runs of 1 s, then 2 s: the second (from ~0.9 s) is still going when the recording
    # ends at 2.6 s, and is ended with SIGINT, which makes py-spy write what it has.
    target = subprocess.Popen([PY, "-c", PHASES], stdout=subprocess.PIPE, text=True)
    try:
        assert target.stdout is not None and target.stdout.readline() == "ready\n"
        out = tmp_path / "attach.sqlite"
        proc = record(out, "--pid", str(target.pid), "--duration", "2.6")
        assert proc.returncode == 0, proc.stderr
    finally:
        target.kill()
        target.wait()
    rec = inspector.load(out)
    leaves = rec.stacks.assign(end=rec.stacks.t_s + rec.stacks.duration_s,
                               text=rec.stacks["stack"].astype(str))
    two = leaves[leaves.text.str.contains("phase_two")]
    assert not two.empty
    assert two.end.max() > 2.0  # sampled past the first two runs' planned seams
    # and the main thread's stacks cover the run without a gap at the seams
    main = leaves[leaves.tid == target.pid].sort_values("t_s")
    gaps = (main.t_s - main.end.cummax().shift()).dropna()
    assert gaps.max() < 0.3, gaps.max()


def test_many_threads_lower_the_rate_within_the_budget_and_say_when(tmp_path: Path) -> None:
    out = tmp_path / "many.sqlite"
    # py-spy (the recorder's child) at raised priority, and no other test's raised program
    # beside it (tests/turns.py): a py-spy run starved of CPU past the target's end takes no
    # sample at the lowered rate, and there is nothing to judge
    with turns.alone():
        proc = record(out, "--", PY, "-c", textwrap.dedent("""
            import threading, time
            stop = threading.Event()
            threads = [threading.Thread(target=stop.wait) for _ in range(150)]
            for t in threads: t.start()
            time.sleep(4)
            stop.set()
        """), preexec_fn=for_the_recording())
    assert proc.returncode == 0, proc.stderr
    rec = inspector.load(out)
    stacks = rec.meta.stacks
    changes = stacks.rates_hz_used
    assert changes
    rates = [c.rate_hz for c in changes]
    assert min(rates) == stacks.rate_hz_used < 100
    # 150 waiting threads at 100 Hz would cost py-spy most of a core: each of them is still
    # sampled, at the lower rate (the 100 Hz samples at the start saw only those started by
    # then)
    workers = rec.threads[rec.threads.tid != rec.processes.pid.iloc[0]]
    assert len(workers) == 150
    lowered_at = next(c.t_s for c in changes if c.rate_hz == min(rates))
    late = rec.stacks[rec.stacks.t_s >= lowered_at]
    # py-spy's runs need a little CPU to start: on a machine whose other programs held the
    # cores, the rate may come down too late for a run at it to start before the end
    if late.empty and not judged_on("py-spy at the lowered rate", cores_left(diagnose(rec)), 1):
        return
    assert not late.empty, f"py-spy took no sample at {min(rates)} Hz from {lowered_at:.2f} s"
    assert set(workers.tid) <= set(late.tid), len(set(workers.tid) & set(late.tid))


def test_each_python_process_gets_its_own_stacks(process_pool_recording: Path) -> None:
    rec = inspector.load(process_pool_recording)  # recorded at the defaults
    pythons = rec.processes[rec.processes.is_python.astype(bool)]
    assert len(pythons) >= 3
    with_stacks = set(rec.stacks.pid)
    # the parent and its workers: each sampled by a py-spy of its own
    assert set(pythons.pid) <= with_stacks


RENAMED_WHILE_WAITING = textwrap.dedent("""
    import ctypes, threading, time
    go = threading.Event()
    waiter = threading.Thread(target=go.wait, name="waiter")
    waiter.start()
    time.sleep(1.5)  # the waiter never runs from here on
    libc = ctypes.CDLL(None)
    libc.pthread_setname_np(ctypes.c_ulong(waiter.ident), b"renamed-by-main")
    time.sleep(1.5)
    go.set()
    waiter.join()
""")


def test_a_waiting_thread_read_the_cheap_way_keeps_a_row_each_tick_and_its_new_name(
        tmp_path: Path) -> None:
    # A thread that has not run is read by its schedstat alone, its last reading repeated:
    # every tick still has its row, and a name another thread gives it is still seen.
    out = tmp_path / "waiting.sqlite"
    proc = record(out, "--no-stacks", "--", PY, "-c", RENAMED_WHILE_WAITING)
    assert proc.returncode == 0, proc.stderr
    rec = inspector.load(out)
    waiter = rec.threads[rec.threads.tid != rec.processes.pid.iloc[0]].iloc[0]
    assert waiter["os_name"] == "renamed-by-main"
    ts = rec.thread_samples
    mine = ts[ts.tid == waiter["tid"]]
    main = ts[ts.tid == rec.processes.pid.iloc[0]]
    # a row at every tick the main thread has, while both lived
    both = main.t_s[(main.t_s >= mine.t_s.min()) & (main.t_s <= mine.t_s.max())]
    assert set(both) <= set(mine.t_s) and len(mine) >= 20
    # and while it waited (from just after its start, however late a busy machine started
    # the program, to the end), the repeated rows say it used no CPU and sat in futex
    waiting = mine[(mine.t_s > mine.t_s.min() + 0.5) & (mine.t_s < mine.t_s.max() - 0.2)]
    assert (waiting.syscall_name == "futex").all()
    assert waiting.cpu_user_s.nunique() == 1 and waiting.on_cpu_s.nunique() == 1
