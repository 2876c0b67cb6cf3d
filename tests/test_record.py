"""`inspector record` on real programs: the tree, the threads, their CPU, the stacks, and the
target's exit status and output, passed through untouched."""

from __future__ import annotations

import fcntl
import math
import os
import platform
import signal
import subprocess
import sys
import termios
import textwrap
import time
from pathlib import Path

import pytest
import turns
from machine import for_the_recording

import inspector
from inspector.recording import StacksMeta

PY = sys.executable
WORKLOADS = Path(__file__).parent / "workloads"


def record(tmp_path: Path, *command: str, name: str = "rec.sqlite", extra: tuple = (),
           **kw) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / name
    proc = subprocess.run([PY, "-m", "inspector", "record", "-q", "-o", str(out), *extra, "--",
                           *command], capture_output=True, text=True, timeout=120, **kw)
    return proc, out


def total_cpu(df) -> object:
    return df["cpu_user_s"] + df["cpu_system_s"]


# -- the mixed workload: 4 CPU threads, a 2-worker pool, a sleeper -------------------------

@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess,
                                                             inspector.Recording]:
    tmp = tmp_path_factory.mktemp("mixed")
    # Its CPU shares and the sampler's pace are the program's, not its neighbours': pinned to
    # 2 cores and run at raised priority where permitted (tests/machine.py).
    # --gil-check: the py-spy --gil cross-check (opt-in) is asserted on below
    # No other such recording beside it either (tests/turns.py).
    with turns.alone():
        proc, out = record(tmp, PY, "-m", "inspector.examples.threads_and_processes",
                           "--seconds", "1.5", extra=("--gil-check",),
                           preexec_fn=for_the_recording(2))
    return proc, inspector.load(out)


def test_mixed_records_exactly_the_real_processes(mixed) -> None:
    proc, rec = mixed
    assert proc.returncode == 0, proc.stderr
    # fork start method: the parent and its 2 pool workers, no helper process (no
    # resource tracker or fork server is started by a fork-context Pool).
    assert len(rec.processes) == 3
    parent = rec.processes[rec.processes.is_target].iloc[0]
    workers = rec.processes[~rec.processes.is_target]
    assert (workers.parent_proc_id == parent.proc_id).all()
    assert rec.processes.is_python.all()
    assert set(rec.processes.python_version) == {platform.python_version()}  # the full one
    assert rec.meta.complete is True and rec.meta.exit_code == 0


def test_mixed_names_the_parents_threads(mixed) -> None:
    _, rec = mixed
    parent = rec.processes[rec.processes.is_target].iloc[0]
    names = set(rec.threads[rec.threads.proc_id == parent.proc_id].name)
    assert {"MainThread", "cpu-0", "cpu-1", "cpu-2", "cpu-3", "sleeper"} <= names


def test_thread_cpu_adds_up_to_the_process_cpu(mixed) -> None:
    _, rec = mixed
    for proc_id, samples in rec.process_samples.groupby("proc_id"):
        process_cpu = total_cpu(samples).max()
        threads = rec.thread_samples[rec.thread_samples.proc_id == proc_id]
        thread_cpu = total_cpu(threads).groupby(threads.tid).max().sum()
        assert process_cpu > 0.5, "every process of this workload computes for seconds"
        assert abs(thread_cpu - process_cpu) <= 0.10 * process_cpu, (proc_id, thread_cpu,
                                                                      process_cpu)


def test_four_gil_threads_share_one_core_while_workers_each_get_one(mixed) -> None:
    _, rec = mixed
    ts = rec.thread_samples
    parent = rec.processes[rec.processes.is_target].iloc[0]
    named = rec.threads.set_index(["proc_id", "tid"]).name
    cpu_threads = [tid for (pid_, tid), n in named.items()
                   if pid_ == parent.proc_id and str(n).startswith("cpu-")]
    per_thread = ts[ts.tid.isin(cpu_threads)].groupby("tid").cpu_percent.median()
    # each of the 4 gets a share of one core, never a core of its own...
    assert (per_thread < 80).all(), per_thread
    # ...while each pool worker, a process with its own GIL, gets more than any of them (on 2
    # cores: ~25% per thread against ~66% per worker; the ratio holds on a loaded machine)
    for _, w in rec.processes[~rec.processes.is_target].iterrows():
        busy = ts[(ts.proc_id == w.proc_id)].cpu_percent.median()
        assert busy > per_thread.max(), (w.pid, busy, per_thread)


def test_stacks_are_attributed_to_the_right_threads(mixed) -> None:
    _, rec = mixed
    stacks = rec.stacks
    assert not stacks.empty
    threads = rec.threads.set_index(["proc_id", "tid"]).name
    for name, needle in [("cpu-0", "spin"), ("cpu-3", "spin"), ("sleeper", "Thread.run")]:
        rows = stacks[stacks.thread_name == name]
        assert not rows.empty, name
        assert rows["stack"].str.contains(needle, regex=False).mean() > 0.9, name
        # the OS thread id py-spy gave is the one /proc knows by that name
        tids = set(rows.tid)
        assert all(threads.get((p, t)) == name for p, t in zip(rows.proc_id, rows.tid)), tids
    workers = set(rec.processes[~rec.processes.is_target].proc_id)
    worker_stacks = stacks[stacks.proc_id.isin(workers)]
    assert worker_stacks["stack"].str.contains("_pool_job", regex=False).any()
    # spans sit inside the recording's time line
    assert stacks.t_s.min() >= 0 and (stacks.t_s + stacks.duration_s).max() <= rec.duration_s + 0.2


def test_samples_are_on_one_clock_at_the_interval(mixed) -> None:
    _, rec = mixed
    ts = rec.thread_samples
    assert ts.t_s.min() >= 0 and ts.t_s.max() <= rec.duration_s
    interval = rec.interval_s
    assert interval == 0.1
    # All in the recording's own clock, none in the test's: the sampler never ticks faster
    # than its schedule (a late tick moves the schedule on instead of bursting to catch up;
    # one last tick at the end; one at the start, and one for the clocks' rounding: 50 ticks
    # in 4.7993 s were seen under load, a burst of catching up would add many)...
    assert rec.meta.ticks <= math.floor(rec.duration_s / interval) + 3, rec.meta
    assert ts.t_s.nunique() <= rec.meta.ticks
    # ...and a thread alive throughout is sampled once a tick, at the interval: the median
    # spacing of its samples, robust to the odd tick the machine delayed
    times = ts[ts.tid == ts.tid.iloc[0]].t_s.sort_values()
    assert times.diff().dropna().median() == pytest.approx(interval, abs=0.02)
    # a thread in time.sleep is seen in clock_nanosleep, a computing one running or in futex
    sleeper = rec.threads[rec.threads.name == "sleeper"].tid.iloc[0]
    assert (ts[ts.tid == sleeper].syscall_name == "clock_nanosleep").mean() > 0.8


# -- exit status and output --------------------------------------------------------------

@pytest.mark.parametrize("code", [0, 3])
def test_exit_status_is_the_targets(tmp_path: Path, code: int) -> None:
    proc, out = record(tmp_path, PY, "-c", f"import sys; print('hello out'); "
                       f"print('hello err', file=sys.stderr); sys.exit({code})")
    assert proc.returncode == code
    assert proc.stdout == "hello out\n"
    assert proc.stderr.startswith("hello err\n")
    assert f"recording written to {out}" in proc.stderr
    assert inspector.load(out).meta.exit_code == code


def test_target_killed_by_sigkill_gives_137(tmp_path: Path) -> None:
    proc, out = record(tmp_path, PY, "-c", "import os, signal, time; time.sleep(0.3); "
                       "os.kill(os.getpid(), signal.SIGKILL)")
    assert proc.returncode == 137
    rec = inspector.load(out)
    assert rec.meta.exit_code == -9 and rec.meta.complete is True
    assert not rec.thread_samples.empty


def test_stdin_is_passed_through(tmp_path: Path) -> None:
    proc, _ = record(tmp_path, PY, "-c", "import sys; print(sys.stdin.read().upper(), end='')",
                     input="piped text\n")
    assert proc.returncode == 0 and proc.stdout == "PIPED TEXT\n"


def test_command_not_found_is_one_line_and_127(tmp_path: Path) -> None:
    proc, out = record(tmp_path, "no-such-command-xyz")
    assert proc.returncode == 127
    assert proc.stderr.strip().count("\n") == 0 and "no-such-command-xyz" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- Ctrl-C at a real terminal ------------------------------------------------------------

CTRL_C_TARGET = textwrap.dedent("""
    import signal, sys, time
    count = 0
    def on_int(signum, frame):
        global count
        count += 1
    signal.signal(signal.SIGINT, on_int)
    print("ready", flush=True)
    deadline = time.monotonic() + 20
    while count == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)  # a second, duplicated SIGINT would arrive in this window
    open(sys.argv[1], "w").write(str(count))
    sys.exit(42)
""")


def test_ctrl_c_at_a_terminal_reaches_the_target_once(tmp_path: Path) -> None:
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_TARGET)
    count_file = tmp_path / "count"
    out = tmp_path / "rec.sqlite"
    master, slave = os.openpty()

    def controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [PY, "-m", "inspector", "record", "-q", "-o", str(out), "--", PY, str(script),
         str(count_file)],
        stdin=slave, stdout=slave, stderr=slave, preexec_fn=controlling_terminal)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 30
    while b"ready" not in seen and time.monotonic() < deadline:
        seen += os.read(master, 1024)
    time.sleep(0.3)
    os.write(master, b"\x03")  # the terminal turns this into SIGINT for its foreground job
    try:
        status = proc.wait(timeout=60)
    finally:
        os.close(master)
    assert status == 42
    assert count_file.read_text() == "1"
    rec = inspector.load(out)
    assert rec.meta.complete is True and rec.meta.exit_code == 42
    assert rec.thread_samples.t_s.max() > 0.3


# -- the whole tree, Python or not --------------------------------------------------------

TREE_TARGET = textwrap.dedent("""
    import subprocess, sys
    shell = subprocess.Popen(["sh", "-c", "for i in 1 2 3 4 5; do sleep 0.2; done"])
    children = []
    for batch in range(4):
        procs = [subprocess.Popen([sys.executable, "-c",
                                   "import time; time.sleep(0.25)  # short-lived-child"])
                 for _ in range(5)]
        for p in procs:
            p.wait()
        children += procs
    shell.wait()
""")


def test_non_python_and_short_lived_children_all_appear(tmp_path: Path) -> None:
    script = tmp_path / "tree.py"
    script.write_text(TREE_TARGET)
    # every child lives 2.5 ticks: a sampler starved by the machine's other programs could
    # miss one, so it runs at raised priority where permitted (tests/machine.py)
    with turns.alone():  # (tests/turns.py)
        proc, out = record(tmp_path, PY, str(script), preexec_fn=for_the_recording())
    assert proc.returncode == 0, proc.stderr
    rec = inspector.load(out)
    cmd = rec.processes.cmdline.map(" ".join)
    short = rec.processes[cmd.str.contains("short-lived-child")]
    assert len(short) == 20
    assert short.is_python.all()
    shells = rec.processes[cmd.str.startswith("sh -c")]
    assert len(shells) == 1 and not shells.is_python.any()
    sleeps = rec.processes[rec.processes.parent_proc_id == shells.proc_id.iloc[0]]
    assert len(sleeps) >= 4 and set(sleeps.name) == {"sleep"}
    assert (short.parent_proc_id == rec.processes[rec.processes.is_target].proc_id.iloc[0]).all()


def test_python_behind_a_shell_and_a_shim_is_found(tmp_path: Path) -> None:
    shim = tmp_path / "python3"
    shim.write_text(f'#!/bin/bash\nexec "{PY}" "$@"\n')
    shim.chmod(0o755)
    script = tmp_path / "busy.py"
    script.write_text("import time\nt = time.monotonic() + 1\n"
                      "def busy_loop():\n    while time.monotonic() < t: pass\nbusy_loop()\n")
    # a shell that runs the shim as a child, the shim exec'ing Python: two hops to Python
    proc, out = record(tmp_path, "sh", "-c", f"{shim} {script}; true")
    assert proc.returncode == 0, proc.stderr
    rec = inspector.load(out)
    py = rec.processes[rec.processes.is_python]
    assert len(py) == 1
    assert py.iloc[0].cmdline[-1] == str(script)
    assert rec.stacks[rec.stacks.proc_id == py.iloc[0].proc_id]["stack"].str.contains(
        "busy_loop").any()


def test_no_stacks_flag_records_everything_else(tmp_path: Path) -> None:
    proc, out = record(tmp_path, PY, "-c", "import time; time.sleep(0.5)",
                       extra=("--no-stacks",))
    assert proc.returncode == 0
    rec = inspector.load(out)
    assert rec.stacks.empty and not rec.thread_samples.empty
    assert rec.meta.stacks == StacksMeta(enabled=False, reason="--no-stacks")


ATTACH_S = 1.0


def test_attach_to_a_running_program(tmp_path: Path) -> None:
    target = subprocess.Popen([PY, "-c", "import threading, time\n"
                               "threading.Thread(target=time.sleep, args=(30,), name='napper',"
                               " daemon=True).start()\n"
                               "t = time.monotonic() + 30\n"
                               "while time.monotonic() < t: sum(range(1000))\n"])
    try:
        deadline = time.monotonic() + 30  # a hang guard, not a timing
        while len(os.listdir(f"/proc/{target.pid}/task")) < 2:  # until napper has started
            assert time.monotonic() < deadline and target.poll() is None
            time.sleep(0.02)
        out = tmp_path / "attached.sqlite"
        proc = subprocess.run([PY, "-m", "inspector", "record", "-q", "-o", str(out), "--pid",
                               str(target.pid), "--duration", str(ATTACH_S)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert target.poll() is None, "attaching must not disturb the target"
    finally:
        target.kill()
        target.wait()
    rec = inspector.load(out)
    assert rec.meta.mode == "attach"
    assert list(rec.processes.pid) == [target.pid]
    assert "napper" in set(rec.threads.name)
    # it recorded for --duration by its own clock and then let go: the target lives on (above)
    assert rec.duration_s >= ATTACH_S
    assert rec.thread_samples.t_s.max() >= ATTACH_S - rec.interval_s


def test_default_output_goes_under_recordings(tmp_path: Path) -> None:
    proc = subprocess.run([PY, "-m", "inspector", "record", "-q", "--", PY, "-c", "pass"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0
    files = list((tmp_path / "recordings").glob("*.sqlite"))
    assert len(files) == 1 and files[0].name.startswith("python")
    assert str(files[0].relative_to(tmp_path)) in proc.stderr


def test_signal_number_maps_to_128_plus_n(tmp_path: Path) -> None:
    proc, _ = record(tmp_path, PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)")
    assert proc.returncode == 128 + signal.SIGTERM


def _run_on_a_terminal(argv: list[str]) -> tuple[int, bytes]:
    master, slave = os.openpty()

    def controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                            preexec_fn=controlling_terminal)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    return proc.wait(timeout=60), seen


def test_live_status_line_only_on_a_terminal_and_not_with_quiet(tmp_path: Path) -> None:
    target = [PY, "-c", "import time; time.sleep(1)"]  # two status lines (STATUS_EVERY_S)
    base = [PY, "-m", "inspector", "record", "--no-stacks", "-o"]
    status, seen = _run_on_a_terminal([*base, str(tmp_path / "a.sqlite"), "--", *target])
    assert status == 0
    assert b"\x1b[2Kinspector: recording    " in seen and b"1 processes  1 threads" in seen
    status, seen = _run_on_a_terminal([*base, str(tmp_path / "b.sqlite"), "-q", "--", *target])
    assert status == 0 and b"\x1b[2K" not in seen
    proc = subprocess.run([*base, str(tmp_path / "c.sqlite"), "--", *target],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stderr.count("inspector:") == 1  # just where the recording is


def test_gil_holders_are_counted_and_four_threads_take_turns(mixed) -> None:
    _, rec = mixed
    g = rec.gil_samples
    parent = rec.processes[rec.processes.is_target].iloc[0]
    cpu = g[(g.proc_id == parent.proc_id) & g.thread_name.str.startswith("cpu-")]
    assert set(cpu.thread_name) == {"cpu-0", "cpu-1", "cpu-2", "cpu-3"}
    per_run = cpu.groupby("t_s").share.sum()
    # one GIL: the four threads' shares of one run add up to at most the whole run, and while
    # all four compute, somebody holds it nearly all the time
    assert (per_run <= 1.0 + 1e-9).all()
    assert per_run.max() > 0.7
    assert (cpu.groupby("thread_name").share.mean() < 0.6).all()
    # every run of every Python process also says how often nobody held the GIL, and the
    # shares of one process in one run add up to 1
    runs = g.groupby(["proc_id", "t_s"])
    assert (runs.tid.apply(lambda t: (t == 0).sum()) == 1).all()
    assert (runs.share.sum() - 1.0).abs().max() < 1e-9


def test_a_python_name_given_before_the_thread_is_in_the_file_is_given_again(
        tmp_path: Path) -> None:
    # py-spy can name a thread before the /proc sampler's next tick has written it: the
    # writer says the name did not take, so the stacks reader names it again later (once,
    # 5 of 50 threads of a recording stayed unnamed for good).
    from inspector.recording import RecordingWriter

    path = tmp_path / "names.sqlite"
    w = RecordingWriter(path)
    assert w.name_thread(1, 42, "worker-7") is False
    w.upsert_thread(1, 40, 42, "python", 0.25)
    assert w.name_thread(1, 42, "worker-7") is True
    w.close()
    threads = inspector.load(path).threads
    assert threads.loc[threads.tid == 42, "name"].tolist() == ["worker-7"]
