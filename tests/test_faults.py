"""Faults and bad input (issue 7): whatever happens to the target, to the recorder or to the
file, nothing recorded is lost, every error is one clear line, and loading is safe.

Every test runs real processes: the recorder as `python -m inspector record`, the targets from
tests/workloads/fault_*.py, `sh` and `true`. Recordings that several tests read are made once
per module, several at a time, to keep the file's run time down.
"""

from __future__ import annotations

import io
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import inspector_cli
from machine import for_the_recording, skip_or_fail

import inspector
from inspector.recording import RecordingError

PY = sys.executable
WORKLOADS = Path(__file__).parent / "workloads"
FAULT_EXIT = str(WORKLOADS / "fault_exit.py")
TIMEOUT_S = 120  # no recording here should take more than a few seconds: this is a hang

# A recorder killed with SIGKILL loses what it had not committed: it commits every 0.5 s of
# its own clock, after a tick, so commits lie at most this far apart in its clock (0.5 s and
# a tick, and a tick of margin).
MAX_COMMIT_GAP_S = 0.7
# Stacks arrive in 1 s py-spy runs, written when each run ends, then committed: in the
# recording's clock they trail its last thread sample by a run, its parsing and a commit.
MAX_STACKS_BEHIND_S = 3.0


def inspector_lines(stderr: str) -> list[str]:
    """The lines the recorder itself wrote (the target's own stderr is passed through)."""
    return [line for line in stderr.splitlines() if line.startswith("inspector:")]


def record_argv(out: Path, command: Sequence[str], extra: Sequence[str] = ()) -> list[str]:
    return [PY, "-m", "inspector", "record", "-o", str(out), *extra, "--", *command]


def no_core_dumps() -> None:
    # os.abort() and fatal signals would otherwise leave core files around the test run
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


# What a process started at a terminal does with these signals: their default action. A
# suite started with them ignored (`nohup`, a background job's SIGINT, a launcher) would
# pass SIG_IGN on to the recorder and, through exec, to its target, which then ignores a
# signal passed on to it, as it would without inspector: 30 s of a target that should
# have ended, and a failure that says nothing of the recorder.
TERMINAL_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM)


def in_a_session_of_its_own() -> None:
    """A preexec_fn: a session (so a process group) of its own, with a terminal's signal
    dispositions whatever the suite was started with."""
    os.setsid()
    for sig in TERMINAL_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)


@dataclass
class Finished:
    """A recorder run that has ended: its exit status, output and the recording's path."""

    returncode: int
    stdout: str
    stderr: str
    out: Path

    def load(self) -> inspector.Recording:
        return inspector.load(self.out)


def run_all(runs: dict[str, tuple[list[str], dict]]) -> dict[str, Finished]:
    """Starts every recorder at once and waits for them all (each keeps its own files)."""
    procs = {}
    for name, (argv, kw) in runs.items():
        procs[name] = (subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, preexec_fn=no_core_dumps, **kw),
                       Path(argv[argv.index("-o") + 1]))
    done = {}
    for name, (proc, out) in procs.items():
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
        done[name] = Finished(proc.returncode, stdout, stderr, out)
    return done


# -- how the target ends: status kept, recording complete -----------------------------------

SECRET_ARG = "hunter2-CMDLINE-SECRET"
SECRET_ENV = "envsecret-7f3a9c"
SH_LOOP = "i=0; while [ $i -lt 60000 ]; do i=$((i+1)); done; exit 5"


@pytest.fixture(scope="module")
def endings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Finished]:
    tmp = tmp_path_factory.mktemp("endings")
    secret_child = (f"import subprocess, sys, time; subprocess.run([sys.executable, '-c', "
                    f"'import time; time.sleep(0.5)', '--token={SECRET_ARG}']); time.sleep(0.2)")
    runs = {
        "exit3": ([FAULT_EXIT, "0.8", "exit:3"], {}),
        "sigusr1": ([FAULT_EXIT, "0.8", f"signal:{int(signal.SIGUSR1)}"], {}),
        "abort": ([FAULT_EXIT, "0.8", "abort"], {}),
        "segfault": ([FAULT_EXIT, "0.8", "segfault"], {}),
        "close_stdout": ([FAULT_EXIT, "0.8", "close-stdout"], {}),
        "sh": (["sh", "-c", SH_LOOP], {}),
        "true": (["true"], {}),
        "secrets": (["-c", secret_child, f"--password={SECRET_ARG}"],
                    {"env": {**os.environ, "INSPECTOR_TEST_SECRET": SECRET_ENV}}),
    }
    argvs = {}
    for name, (command, kw) in runs.items():
        if command[0] in (FAULT_EXIT, "-c"):
            command = [PY, *command]
        extra = ("--redact", r"hunter2-[A-Z-]+") if name == "secrets" else ()
        argvs[name] = (record_argv(tmp / f"{name}.sqlite", command, extra), kw)
    return run_all(argvs)


@pytest.mark.parametrize("name, status, exit_code", [
    ("exit3", 3, 3),
    ("sigusr1", 128 + signal.SIGUSR1, -signal.SIGUSR1),
    ("abort", 128 + signal.SIGABRT, -signal.SIGABRT),
    ("segfault", 128 + signal.SIGSEGV, -signal.SIGSEGV),
])
def test_python_target_ending_badly_keeps_its_status_and_a_complete_recording(
        endings: dict[str, Finished], name: str, status: int, exit_code: int) -> None:
    run = endings[name]
    assert run.returncode == status, run.stderr
    lines = inspector_lines(run.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"inspector: recording written to {run.out}")
    rec = run.load()
    assert rec.meta.complete is True and rec.meta.exit_code == exit_code
    target = rec.processes[rec.processes.is_target].iloc[0]
    assert target.exit_code == exit_code
    assert len(rec.thread_samples) >= 3 and len(rec.process_samples) >= 3
    assert rec.stacks["stack"].str.contains("spin_before_the_end", regex=False).any()


def test_a_target_that_closes_its_stdout_is_recorded_to_the_end(
        endings: dict[str, Finished]) -> None:
    run = endings["close_stdout"]
    assert run.returncode == 0, run.stderr
    assert run.stdout == "stdout closes now\n"
    assert len(inspector_lines(run.stderr)) == 1, run.stderr
    rec = run.load()
    assert rec.meta.complete is True and rec.meta.exit_code == 0
    # still sampled after it closed fd 1: its spin takes 0.8 s
    assert rec.thread_samples.t_s.max() - rec.thread_samples.t_s.min() > 0.5
    assert rec.stacks["stack"].str.contains("spin_before_the_end", regex=False).any()


def test_a_target_that_is_not_python_is_recorded_without_stacks_or_warnings(
        endings: dict[str, Finished]) -> None:
    run = endings["sh"]
    assert run.returncode == 5, run.stderr
    assert len(inspector_lines(run.stderr)) == 1, run.stderr
    rec = run.load()
    assert rec.meta.complete is True and rec.meta.exit_code == 5
    assert list(rec.processes.name) == ["sh"] and not rec.processes.is_python.any()
    assert rec.stacks.empty
    assert (rec.thread_samples.state == "R").any(), "a shell loop computes"
    assert rec.problems.empty, rec.problems


def test_a_target_that_exits_at_once_is_still_a_complete_recording(
        endings: dict[str, Finished]) -> None:
    run = endings["true"]
    assert run.returncode == 0, run.stderr
    assert len(inspector_lines(run.stderr)) == 1, run.stderr
    rec = run.load()
    assert rec.meta.complete is True and rec.meta.exit_code == 0
    assert len(rec.processes) == 1 and rec.processes.is_target.all()
    assert rec.processes.name.iloc[0] == "true"
    # it stopped with the target, not seconds later: counted in ticks, not timed
    assert rec.meta.ticks < 30, rec.meta
    # a process that lived a millisecond may leave no samples at all: that must load fine
    for frame in (rec.process_samples, rec.thread_samples):
        assert "cpu_percent" in frame.columns


# -- security: secrets in command lines and the environment -----------------------------

def recording_bytes(path: Path) -> bytes:
    leftovers = [p for p in path.parent.iterdir() if p.name.startswith(path.name + "-")]
    assert not leftovers, f"a finished recording is one self-contained file: {leftovers}"
    return path.read_bytes()


def test_redact_masks_command_lines_of_the_whole_tree_before_writing(
        endings: dict[str, Finished]) -> None:
    run = endings["secrets"]
    assert run.returncode == 0, run.stderr
    data = recording_bytes(run.out)
    assert SECRET_ARG.encode() not in data
    rec = run.load()
    assert len(rec.processes) == 2, "the target and its child, both carrying the secret"
    for cmdline in rec.processes.cmdline:
        assert any("***" in part for part in cmdline), cmdline
    assert any("***" in part for part in rec.meta.command)


def test_environment_variables_are_not_recorded(endings: dict[str, Finished]) -> None:
    run = endings["secrets"]
    assert SECRET_ENV.encode() not in recording_bytes(run.out)
    assert b"INSPECTOR_TEST_SECRET" not in recording_bytes(run.out)


@pytest.mark.parametrize("command", [
    ["python", "$(touch pwned);`id` evil\nname.py"],
    ["python", "../../../../etc/passwd.py"],
    ["python", "-m", "../../x;rm -rf ~"],
    ["python", ".....py"],
    ["/bin/../bin/sh", "-c", "true"],
    ["python", "-m"],
    ["\x1b[31mred\x00.py"],
])
def test_default_recording_names_are_sanitised(command: list[str]) -> None:
    from inspector.commands.record import default_output

    path = default_output(command, Path("recordings"))
    assert path.parent == Path("recordings")
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.sqlite", path.name), path.name


def test_a_hostile_script_name_gives_a_plain_file_under_recordings(tmp_path: Path) -> None:
    script = tmp_path / "$(touch pwned);`touch pwned2` evil\nname ..py"
    script.write_text("pass\n")
    proc = subprocess.run([PY, "-m", "inspector", "record", "-q", "--no-stacks", "--", PY,
                           str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    files = list((tmp_path / "recordings").iterdir())
    assert len(files) == 1
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.sqlite", files[0].name), files[0].name
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()
    assert inspector.load(files[0]).meta.complete is True


# -- signals to the recorder: passed on once, recording finished ---------------------------

@pytest.fixture(scope="module")
def signalled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Finished, dict]]:
    """Recorders, each in a session of its own (so its process group is just the recorder:
    the target gets a group of its own from it), each sent one signal once the target is
    ready: SIGINT to the group, as `kill -INT -PGID` or a job-control shell would; SIGTERM to
    the recorder, as a service manager or `timeout` would; SIGHUP, as a closing terminal."""
    tmp = tmp_path_factory.mktemp("signals")
    how = {"sigint_group": signal.SIGINT, "sigterm": signal.SIGTERM, "sighup": signal.SIGHUP}
    procs = {}
    for name in how:
        out, count, ready = (tmp / f"{name}.sqlite", tmp / f"{name}.count",
                             tmp / f"{name}.ready")
        argv = record_argv(out, [PY, str(WORKLOADS / "fault_signals.py"), str(count),
                                 str(ready)], ("-q",))
        procs[name] = (subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, preexec_fn=in_a_session_of_its_own),
                       out, count, ready)
    deadline = time.monotonic() + 30
    while not all(r.exists() for _, _, _, r in procs.values()):
        assert time.monotonic() < deadline, "the targets never got ready"
        time.sleep(0.02)
    time.sleep(0.3)  # a few samples before the signal
    for name, (proc, *_rest) in procs.items():
        if name == "sigint_group":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, how[name])
    done = {}
    for name, (proc, out, count, _ready) in procs.items():
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
        counts = json.loads(count.read_text()) if count.exists() else {}
        done[name] = (Finished(proc.returncode, stdout, stderr, out), counts)
    return done


@pytest.mark.parametrize("name, sig", [("sigint_group", "SIGINT"), ("sigterm", "SIGTERM")])
def test_a_signal_to_the_recorder_reaches_the_target_exactly_once(
        signalled: dict[str, tuple[Finished, dict]], name: str, sig: str) -> None:
    run, counts = signalled[name]
    assert run.returncode == 0, run.stderr
    other = "SIGTERM" if sig == "SIGINT" else "SIGINT"
    assert counts == {sig: 1, other: 0}
    assert len(inspector_lines(run.stderr)) == 1, run.stderr
    rec = run.load()
    assert rec.meta.complete is True and rec.meta.exit_code == 0
    assert rec.thread_samples.t_s.max() > 0.3
    assert rec.processes.end_s.notna().all()


def test_ctrl_c_reaches_the_target_once_when_its_stdin_is_a_pipe(tmp_path: Path) -> None:
    # `producer | inspector record -- python x.py` at a terminal, then Ctrl-C: stdin is not
    # the terminal, so the target is not made the foreground job; the terminal's SIGINT goes
    # to the recorder's job alone, and the recorder must pass it on.
    out, count, ready = tmp_path / "rec.sqlite", tmp_path / "count", tmp_path / "ready"
    master, slave = os.openpty()
    terminal = os.ttyname(slave)

    def session_with_the_terminal() -> None:
        in_a_session_of_its_own()
        os.close(os.open(terminal, os.O_RDWR))  # a session leader's first tty: its terminal

    proc = subprocess.Popen(
        record_argv(out, [PY, str(WORKLOADS / "fault_signals.py"), str(count), str(ready)],
                    ("-q",)),
        stdin=subprocess.PIPE, stdout=slave, stderr=slave, preexec_fn=session_with_the_terminal)
    os.close(slave)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        time.sleep(0.3)
        os.write(master, b"\x03")  # the terminal's line discipline turns this into SIGINT
        status = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert status == 0
    assert json.loads(count.read_text()) == {"SIGINT": 1, "SIGTERM": 0}
    rec = inspector.load(out)
    assert rec.meta.complete is True and rec.meta.exit_code == 0


def test_sighup_to_the_recorder_ends_the_target_as_it_would_without_inspector(
        signalled: dict[str, tuple[Finished, dict]]) -> None:
    run, counts = signalled["sighup"]
    assert run.returncode == 128 + signal.SIGHUP, run.stderr
    assert counts == {}, "SIGHUP's default action ends the target before it writes"
    rec = run.load()
    assert rec.meta.complete is True and rec.meta.exit_code == -signal.SIGHUP


# -- the recorder itself killed ------------------------------------------------------------

def committed_ticks(out: Path) -> tuple[int, float] | None:
    """(ticks, last tick's t_s) of the samples a live recorder has committed so far, read
    the way any SQLite reader would (None before its first commit): the machine blocks'
    own columns, a machine sample a round (but the first)."""
    try:
        db = sqlite3.connect(f"file:{out}?mode=ro", uri=True, timeout=1)
        try:
            row = db.execute(
                "SELECT SUM(rows), MAX(t_last_s) FROM machine_blocks"
                " HAVING count(*) > 0").fetchone()
        finally:
            db.close()
    except sqlite3.Error:  # not created yet, or its schema not yet committed
        return None
    return (int(row[0]), float(row[1])) if row else None


def test_recorder_killed_with_sigkill_leaves_what_it_committed_and_commits_as_it_goes(
        tmp_path: Path) -> None:
    """Measured in the recording's own clock, not the test's: the test reads the live file,
    sees commits arrive, kills the recorder once 2.5 s of its clock are committed, then
    checks that the file kept every commit it saw and that commits came every half second.
    The recording is written as OUT.partial until complete: a killed recorder leaves it
    there; reading it changes neither it nor its -wal; the next run removes the killed
    recorder's py-spy folder (command lines in it)."""
    out, pidfile = tmp_path / "killed.sqlite", tmp_path / "target.pid"
    live = tmp_path / "killed.sqlite.partial"
    proc = subprocess.Popen(record_argv(out, [PY, FAULT_EXIT, "30", "exit:0"], ("-q",)),
                            start_new_session=True, stderr=subprocess.PIPE,
                            # TMPDIR: the killed recorder's py-spy scratch folder stays here
                            env={**os.environ, "FAULT_PIDFILE": str(pidfile),
                                 "TMPDIR": str(tmp_path)})
    seen: list[tuple[int, float]] = []  # each commit the test saw: (ticks, last t_s)
    try:
        deadline = time.monotonic() + 60  # a hang guard, not a timing
        while not seen or seen[-1][1] < 2.5:
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
            now = committed_ticks(live)
            if now is not None and (not seen or now != seen[-1]):
                seen.append(now)
            time.sleep(0.01)
        proc.kill()
        proc.wait(timeout=TIMEOUT_S)
    finally:
        if pidfile.exists() and pidfile.read_text():
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
        proc.kill()
    assert not out.exists(), "only a complete recording is at the path asked for"
    on_disk = {f.name: f.read_bytes() for f in tmp_path.glob("killed.sqlite.partial*")
               if not f.name.endswith("-shm")}  # -shm: SQLite's index of the -wal, not data
    assert f"{live.name}-wal" in on_disk
    rec = inspector.load(live)
    assert on_disk == {f.name: f.read_bytes() for f in tmp_path.glob("killed.sqlite.partial*")
                       if not f.name.endswith("-shm")}, "reading changed the recording"
    assert rec.meta.complete is False
    ticks = rec.thread_samples.t_s.nunique()
    last_t = rec.thread_samples.t_s.max()
    stacks_end = (rec.stacks.t_s + rec.stacks.duration_s).max()
    gaps = [b[1] - a[1] for a, b in zip(seen, seen[1:])]
    print(f"\nrecorder SIGKILLed: commits seen at {[round(t, 2) for _, t in seen]} s of its "
          f"clock; the file holds {ticks} ticks up to {last_t:.2f} s, stacks up to "
          f"{stacks_end:.2f} s")
    # nothing committed was lost to the kill: samples, process samples (the blocks the test
    # watched), machine samples and stack spans (blocks since format 3)
    assert ticks >= seen[-1][0] and last_t >= seen[-1][1], seen
    assert rec.process_samples.groupby("proc_id").size().max() >= seen[-1][0]
    assert rec.process_samples["t_s"].max() >= seen[-1][1]
    assert rec.machine_samples["t_s"].max() >= seen[-1][1] - MAX_COMMIT_GAP_S
    # it committed as it went, every half second of its clock (a commit the test missed
    # doubles one gap: the median is the commit period)
    assert len(seen) >= 3, seen
    assert sorted(gaps)[len(gaps) // 2] <= MAX_COMMIT_GAP_S, seen
    assert last_t - stacks_end <= MAX_STACKS_BEHIND_S
    assert rec.stacks["stack"].str.contains("spin_before_the_end", regex=False).any()
    assert rec.duration_s == pytest.approx(last_t)
    stale = [d for d in tmp_path.glob(f"inspector-pyspy-{proc.pid}-*") if d.is_dir()]
    assert stale, "the killed recorder left its py-spy folder"
    subprocess.run([PY, "-m", "inspector", "record", "-q", "--no-stacks", "-o",
                    str(tmp_path / "next.sqlite"), "--", "true"], check=True,
                   env={**os.environ, "TMPDIR": str(tmp_path)}, timeout=TIMEOUT_S)
    assert not any(d.exists() for d in stale), "a later run removed it"


# -- many processes, many threads ----------------------------------------------------------

@pytest.mark.alone  # recorded at raised priority (tests/turns.py)
def test_five_hundred_short_lived_children_neither_crash_nor_hang_it(tmp_path: Path) -> None:
    report = tmp_path / "children.json"
    out = tmp_path / "children.sqlite"
    proc = subprocess.run(record_argv(out, [PY, str(WORKLOADS / "fault_children.py"), "500",
                                            str(report)], ("-q",)),
                          capture_output=True, text=True, timeout=TIMEOUT_S,
                          preexec_fn=for_the_recording())
    assert proc.returncode == 0, proc.stderr
    assert len(inspector_lines(proc.stderr)) == 1, proc.stderr
    started = json.loads(report.read_text())
    rec = inspector.load(out)
    assert rec.meta.complete is True
    target = rec.processes[rec.processes.is_target].iloc[0]
    children = rec.processes[~rec.processes.is_target]
    # nothing but the target's own children: no py-spy run, no stranger
    assert set(children.pid) <= set(started["pids"])
    assert (children.parent_proc_id == target.proc_id).all()
    share = len(children) / started["started"]
    print(f"\n500 children of {1000 * 0.02:.0f} ms each: {len(children)} recorded "
          f"({share:.0%}), recording {rec.duration_s:.1f} s, "
          f"lagged ticks {rec.meta.lagged_ticks}/{rec.meta.ticks}")
    # at 10 Hz a 20 ms child is seen by a tick only now and then: a few percent is the
    # expected catch; zero would mean the sampler stopped looking
    assert len(children) >= 10


def test_a_thousand_threads_are_all_recorded(tmp_path: Path) -> None:
    plain_report, rec_report = tmp_path / "plain.json", tmp_path / "recorded.json"
    command = [PY, str(WORKLOADS / "fault_threads.py"), "1000"]
    plain = subprocess.run([*command, str(plain_report)], capture_output=True, text=True,
                           timeout=TIMEOUT_S)
    assert plain.returncode == 0, plain.stderr
    out = tmp_path / "threads.sqlite"
    t0 = time.monotonic()
    proc = subprocess.run(record_argv(out, [*command, str(rec_report)], ("-q",)),
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    wall_s = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    assert len(inspector_lines(proc.stderr)) == 1, proc.stderr
    rec = inspector.load(out)
    assert rec.meta.complete is True
    target = rec.processes[rec.processes.is_target].iloc[0]
    threads = rec.threads[rec.threads.proc_id == target.proc_id]
    waiters = threads[threads.name.astype(str).str.startswith("waiter-")]
    assert len(threads) >= 990, len(threads)
    assert rec.process_samples.num_threads.max() == 1001
    slowdown = (json.loads(rec_report.read_text())["work_s"]
                / json.loads(plain_report.read_text())["work_s"])
    print(f"\n1,000 threads: {len(threads)} recorded, {len(waiters)} with their Python name; "
          f"main thread's work {slowdown:.2f}x slower recorded; recorder wall {wall_s:.1f} s, "
          f"lagged ticks {rec.meta.lagged_ticks}/{rec.meta.ticks}, "
          f"{len(rec.stacks)} stack spans")


# -- command and pid that cannot be recorded -----------------------------------------------

@pytest.mark.parametrize("command, status", [
    (["/no/such/dir/program"], 127),
    (["./not-executable.sh"], 126),
    (["."], 126),
])
def test_a_command_that_cannot_run_is_one_line_and_no_file(tmp_path: Path, command: list[str],
                                                           status: int) -> None:
    (tmp_path / "not-executable.sh").write_text("echo hi\n")
    out = tmp_path / "never.sqlite"
    proc = subprocess.run(record_argv(out, command, ("-q",)), cwd=tmp_path,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == status
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("inspector: ")
    assert command[0] in proc.stderr
    assert not out.exists() and not list(tmp_path.glob("never.sqlite*"))


def a_pid_that_does_not_exist() -> int:
    child = subprocess.Popen(["true"])
    child.wait()  # reaped: its pid is free (and not reused this quickly)
    return child.pid


@pytest.mark.parametrize("pid", ["gone", "beyond-pid-max", "0", "-1"])
def test_attaching_to_a_pid_that_does_not_exist_is_one_line(tmp_path: Path, pid: str) -> None:
    if pid == "gone":
        pid = str(a_pid_that_does_not_exist())
    elif pid == "beyond-pid-max":
        pid = str(int(Path("/proc/sys/kernel/pid_max").read_text()) + 1)
    out = tmp_path / "never.sqlite"
    proc = subprocess.run([PY, "-m", "inspector", "record", "-q", "-o", str(out), "--pid", pid,
                           "--duration", "1"], capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert proc.returncode != 0
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("inspector: "), \
        proc.stderr
    assert not out.exists()


# -- py-spy missing or not permitted ------------------------------------------------------

def venv_without_py_spy(root: Path) -> Path:
    """A virtual environment that sees the same packages as this one but has no py-spy
    beside its python: as after `pip install --no-deps inspector`."""
    assert sys.prefix != sys.base_prefix, "the tests run from a virtual environment"
    (root / "bin").mkdir(parents=True)
    shutil.copy(Path(sys.prefix) / "pyvenv.cfg", root / "pyvenv.cfg")
    real = Path(os.path.realpath(sys.executable))
    (root / "bin" / "python").symlink_to(real)
    purelib = Path(sysconfig.get_paths()["purelib"])
    site = root / purelib.relative_to(sys.prefix)
    site.parent.mkdir(parents=True)
    site.symlink_to(purelib)  # its .pth files make the editable install importable
    return root / "bin" / "python"


def path_without_py_spy() -> str:
    dirs = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(d for d in dirs if d and not (Path(d) / "py-spy").exists())


def stack_warnings(stderr: str) -> list[str]:
    return [line for line in inspector_lines(stderr) if "stack" in line.lower()]


def test_without_py_spy_it_records_all_but_stacks_and_warns_once(tmp_path: Path) -> None:
    python = venv_without_py_spy(tmp_path / "venv")
    env = {**os.environ, "PATH": path_without_py_spy()}
    out = tmp_path / "nospy.sqlite"
    argv = [str(python), "-m", "inspector", "record", "-o", str(out), "--", str(python),
            FAULT_EXIT, "0.6", "exit:0"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    warnings = stack_warnings(proc.stderr)
    assert len(warnings) == 1 and "py-spy" in warnings[0], proc.stderr
    assert len(inspector_lines(proc.stderr)) == 2, proc.stderr
    rec = inspector.load(out)
    assert rec.meta.complete is True
    assert rec.meta.stacks.enabled is False
    assert rec.stacks.empty and len(rec.thread_samples) >= 3
    assert "missing" in set(rec.problems.kind)


def test_when_ptrace_is_not_permitted_it_records_all_but_stacks_and_warns_once(
        tmp_path: Path) -> None:
    # The target makes itself non-dumpable; the recorder (and so py-spy) runs without
    # CAP_SYS_PTRACE: the kernel refuses the attach as it does to a user without rights.
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is needed to drop CAP_SYS_PTRACE")
    out = tmp_path / "denied.sqlite"
    argv = ["setpriv", "--bounding-set", "-sys_ptrace", "--",
            *record_argv(out, [PY, FAULT_EXIT, "3", "exit:0"])]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S,
                          env={**os.environ, "FAULT_UNDUMPABLE": "1"})
    if "setpriv:" in proc.stderr:
        skip_or_fail(f"cannot drop a capability here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    warnings = stack_warnings(proc.stderr)
    assert len(warnings) == 1 and "ptrace" in warnings[0], proc.stderr
    rec = inspector.load(out)
    assert rec.meta.complete is True
    assert rec.meta.stacks.enabled is False
    # py-spy may catch the interpreter's start-up, before the target turns non-dumpable;
    # never the work after it
    assert not rec.stacks["stack"].str.contains("spin_before_the_end", regex=False).any()
    assert len(rec.thread_samples) >= 10
    assert "permission" in set(rec.problems.kind)


# -- where the recording cannot be written ------------------------------------------------

def test_an_output_whose_parent_is_a_file_fails_before_the_target_starts(
        tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    marker = tmp_path / "target-ran"
    proc = subprocess.run(
        record_argv(tmp_path / "a-file" / "rec.sqlite",
                    [PY, "-c", f"open({str(marker)!r}, 'w')"], ("-q",)),
        capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode != 0
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("inspector: ")
    assert "a-file" in proc.stderr
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_an_output_that_is_not_a_regular_file_is_left_alone(tmp_path: Path, kind: str) -> None:
    # as root, `-o /dev/null` must not delete /dev/null: a FIFO stands in for the device
    target = tmp_path / "special"
    if kind == "directory":
        target.mkdir()
        (target / "keep").write_text("precious")
    else:
        os.mkfifo(target)
    marker = tmp_path / "target-ran"
    proc = subprocess.run(record_argv(target, [PY, "-c", f"open({str(marker)!r}, 'w')"],
                                      ("-q",)),
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode != 0
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("inspector: "), \
        proc.stderr
    assert not marker.exists()
    if kind == "directory":
        assert (target / "keep").read_text() == "precious"
    else:
        assert target.is_fifo()


def mounted_tmpfs(mount: Path, options: str) -> Iterator[Path]:
    """A tmpfs of our own: as root, permission bits stop nothing, a file system does."""
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    yield from mounted_tmpfs(tmp_path / "small", "size=2m")


@pytest.fixture
def read_only_tmpfs(tmp_path: Path) -> Iterator[Path]:
    yield from mounted_tmpfs(tmp_path / "read-only", "ro,size=1m")


def test_a_read_only_output_folder_fails_before_the_target_starts(
        read_only_tmpfs: Path, tmp_path: Path) -> None:
    marker = tmp_path / "target-ran"
    for out in (read_only_tmpfs / "rec.sqlite", read_only_tmpfs / "new-folder" / "rec.sqlite"):
        proc = subprocess.run(record_argv(out, [PY, "-c", f"open({str(marker)!r}, 'w')"],
                                          ("-q",)),
                              capture_output=True, text=True, timeout=TIMEOUT_S)
        assert proc.returncode != 0
        assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("inspector: "), \
            proc.stderr
        assert "read-only" in proc.stderr.lower(), proc.stderr
        assert not marker.exists()


def fill(folder: Path, leave_bytes: int) -> None:
    free = shutil.disk_usage(folder).free
    with open(folder / "filler", "wb") as f:
        try:
            f.write(b"\0" * max(0, free - leave_bytes))
        except OSError:
            pass


def test_a_full_disk_at_the_start_fails_before_the_target_starts(small_tmpfs: Path,
                                                                 tmp_path: Path) -> None:
    fill(small_tmpfs, 0)
    marker = tmp_path / "target-ran"
    proc = subprocess.run(record_argv(small_tmpfs / "rec.sqlite",
                                      [PY, "-c", f"open({str(marker)!r}, 'w')"], ("-q",)),
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode != 0
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("inspector: "), \
        proc.stderr
    assert not marker.exists()


def test_a_disk_that_fills_up_midway_lets_the_target_finish_and_says_so(
        small_tmpfs: Path, tmp_path: Path) -> None:
    out = small_tmpfs / "rec.sqlite"
    report = tmp_path / "filled.json"
    proc = subprocess.run(record_argv(out, [PY, str(WORKLOADS / "fault_fill_disk.py"),
                                            str(small_tmpfs), str(report)], ("-q",)),
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert json.loads(report.read_text())["filled_bytes"] > 0, "the target ran to its end"
    assert proc.returncode == 0, proc.stderr
    lines = inspector_lines(proc.stderr)
    assert len(proc.stderr.splitlines()) == len(lines), "nothing but one-line messages"
    full = [line for line in lines if "full" in line]
    assert len(full) == 1, proc.stderr
    # what was committed before the disk filled is still there: the target fills it after
    # sleeping WARM_UP_S (1.2 s) of its own life, so a sample before that predates the fill
    rec = inspector.load(out)
    target = rec.processes[rec.processes.is_target].iloc[0]
    assert not rec.thread_samples.empty
    assert rec.thread_samples.t_s.min() < target.start_s + 1.2


# -- pid reuse -------------------------------------------------------------------------------

@pytest.mark.alone  # recorded at raised priority (tests/turns.py)
def test_a_reused_pid_is_two_processes_not_one(tmp_path: Path) -> None:
    report = tmp_path / "reuse.json"
    out = tmp_path / "reuse.sqlite"
    # each life is 6 ticks long: the recorder must not be starved of them (tests/machine.py)
    proc = subprocess.run(record_argv(out, [PY, str(WORKLOADS / "fault_pid_reuse.py"),
                                            str(report)], ("-q",)),
                          capture_output=True, text=True, timeout=TIMEOUT_S,
                          preexec_fn=for_the_recording())
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(report.read_text())
    if not facts["forced"]:
        skip_or_fail(f"cannot force a pid reuse here: {facts.get('why_not', 'pid taken')}")
    rec = inspector.load(out)
    same = rec.processes[rec.processes.pid == facts["pid"]].sort_values("start_s")
    assert list(same.name) == ["sleep", "sh"], same
    first, second = same.iloc[0], same.iloc[1]
    assert first.proc_id != second.proc_id
    assert first.create_time < second.create_time
    samples = rec.process_samples
    first_t = samples[samples.proc_id == first.proc_id].t_s
    second_t = samples[samples.proc_id == second.proc_id].t_s
    assert len(first_t) >= 2 and len(second_t) >= 2
    # in the recording's order of ticks: the first ended before the second was first sampled,
    # and no sample of the second went under the first's id
    assert first.end_s <= second_t.min()
    assert first_t.max() < second_t.min()


# -- files that are not (good) recordings ---------------------------------------------------

@pytest.fixture(scope="module")
def good_recording(endings: dict[str, Finished]) -> bytes:
    return endings["exit3"].out.read_bytes()


def write_db(path: Path, sql: str) -> Path:
    db = sqlite3.connect(path)
    db.executescript(sql)
    db.commit()
    db.close()
    return path


def bad_files(tmp: Path, good: bytes) -> dict[str, Path]:
    from inspector.recording import FORMAT_NAME, FORMAT_VERSION, SCHEMA

    def file(name: str, data: bytes) -> Path:
        (tmp / name).write_bytes(data)
        return tmp / name

    (tmp / "a-directory").mkdir()
    newer = file("newer.sqlite", good)
    db = sqlite3.connect(newer)
    db.execute("UPDATE meta SET value = ? WHERE key = 'format_version'",
               (json.dumps(FORMAT_VERSION + 1),))
    db.commit()
    db.close()
    missing_table = write_db(
        tmp / "no-stacks-table.sqlite",
        SCHEMA + f"DROP TABLE stacks; INSERT INTO meta VALUES ('format', '\"{FORMAT_NAME}\"'),"
        f" ('format_version', '{FORMAT_VERSION}');")
    zeroed = bytearray(good)
    zeroed[4096:8192] = bytes(4096)
    return {
        "missing": tmp / "no-such-file.sqlite",
        "directory": tmp / "a-directory",
        "empty": file("empty.sqlite", b""),
        "text": file("notes.txt", b"just some notes\n"),
        "html": file("report.html", b"<html><body>not a recording</body></html>"),
        "header-only": file("header.sqlite", good[:100]),
        "truncated": file("truncated.sqlite", good[: len(good) // 2]),
        "zeroed-page": file("zeroed.sqlite", bytes(zeroed)),
        "other-sqlite": write_db(tmp / "other.sqlite",
                                 "CREATE TABLE t (x); INSERT INTO t VALUES (1);"),
        "other-meta": write_db(tmp / "other-meta.sqlite",
                               "CREATE TABLE meta (key TEXT, value TEXT);"
                               "INSERT INTO meta VALUES ('format', '\"something-else\"');"),
        "newer": newer,
        "missing-table": missing_table,
    }


def test_every_bad_file_raises_recording_error_in_one_line(tmp_path: Path,
                                                           good_recording: bytes) -> None:
    expect = {"newer": "newer", "missing": "no such file", "directory": "directory",
              "text": "not an inspector recording", "other-sqlite": "not an inspector"}
    for name, path in bad_files(tmp_path, good_recording).items():
        with pytest.raises(RecordingError) as caught:
            inspector.load(path)
        message = str(caught.value)
        assert "\n" not in message and str(path) in message, (name, message)
        assert expect.get(name, "") in message, (name, message)


def test_a_version_1_file_from_before_gil_samples_still_loads(tmp_path: Path,
                                                              good_recording: bytes) -> None:
    path = tmp_path / "older.sqlite"
    path.write_bytes(good_recording)
    write_db(path, "DROP TABLE gil_samples;")
    rec = inspector.load(path)
    assert rec.gil_samples.empty and "share" in rec.gil_samples.columns
    assert not rec.thread_samples.empty


def test_a_recording_with_no_samples_loads_as_empty_tables(tmp_path: Path) -> None:
    from inspector.recording import RecordingWriter

    writer = RecordingWriter(tmp_path / "empty.sqlite")
    writer.set_meta({"complete": True, "duration_s": 0.0, "command": ["true"]})
    writer.close()
    rec = inspector.load(tmp_path / "empty.sqlite")
    assert rec.duration_s == 0.0
    for frame in (rec.processes, rec.threads, rec.process_samples, rec.thread_samples,
                  rec.stacks, rec.problems):
        assert frame.empty
    assert "cpu_percent" in rec.thread_samples.columns
    assert "stack" in rec.stacks.columns


def test_a_path_with_uri_characters_loads_the_file_it_names(tmp_path: Path,
                                                            good_recording: bytes) -> None:
    folder = tmp_path / "odd?name#x%41"
    folder.mkdir()
    path = folder / "rec?mode=rw&x=1#frag.sqlite"
    path.write_bytes(good_recording)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert inspector.load(path).meta.exit_code == 3
    assert sorted(p.name for p in tmp_path.rglob("*")) == before, "no stray files"


def test_loading_never_executes_anything_from_the_file(tmp_path: Path,
                                                       good_recording: bytes) -> None:
    package = Path(inspector.recording.__file__).parent
    for module in package.glob("*.py"):
        source = module.read_text()
        for forbidden in ("pickle", "eval(", "exec(", "marshal", "load_extension", "__import__"):
            assert forbidden not in source, (module.name, forbidden)
    # A file whose `processes` is a view that tries to load a shared library: SQLite's
    # extension loading stays off, so this is a bad file, not code run.
    path = tmp_path / "evil.sqlite"
    path.write_bytes(good_recording)
    db = sqlite3.connect(path)
    db.executescript("DROP TABLE processes; CREATE VIEW processes AS "
                     "SELECT load_extension('/tmp/inspector-evil') AS proc_id;")
    db.commit()
    db.close()
    with pytest.raises(RecordingError):
        inspector.load(path)
    # meta values are JSON data, never evaluated
    path = tmp_path / "code-in-meta.sqlite"
    path.write_bytes(good_recording)
    code = f"__import__('os').system('touch {tmp_path}/pwned')"
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ? WHERE key = 'hostname'", (json.dumps(code),))
    db.commit()
    db.close()
    assert inspector.load(path).meta.hostname == code
    assert not (tmp_path / "pwned").exists()


# -- the commands that read recordings: one line for a bad file, still useful for an empty one

# Every command reads through inspector.load (whose bad files are all tested above): two
# kinds each are enough to show the command turns RecordingError into one line.
BAD_FOR_COMMANDS = {"summary": ("truncated", "newer"), "report": ("text", "other-sqlite"),
                    "explain": ("missing", "zeroed-page"), "compare": ("newer", "truncated")}


def reading_argv(command: str, recording: Path, good: Path, tmp: Path) -> list[str]:
    argv = [command]
    if command == "report":
        argv += ["-o", str(tmp / f"{recording.name}.html")]
    if command == "compare":
        argv += ["-o", str(tmp / f"compare-{recording.name}.html"), str(good)]
    return [*argv, str(recording)]


# The one of them run as its own process (`python -m inspector`, start-up to exit); the
# others run in this process, through the same main() (the error line is the CLI's).
WHOLE_PROCESS = ("summary", "truncated")


@pytest.fixture(scope="module")
def commands_on_bad_files(tmp_path_factory: pytest.TempPathFactory,
                          endings: dict[str, Finished]) -> dict[tuple[str, str], Finished]:
    from inspector.cli import main as cli_main

    tmp = tmp_path_factory.mktemp("bad-for-commands")
    good = endings["exit3"].out
    files = bad_files(tmp, good.read_bytes())
    keys = [(command, kind) for command, kinds in BAD_FOR_COMMANDS.items() for kind in kinds]
    done = {}
    for command, kind in keys:
        argv = reading_argv(command, files[kind], good, tmp)
        if (command, kind) == WHOLE_PROCESS:
            run = inspector_cli(*argv, timeout=TIMEOUT_S)
            done[command, kind] = Finished(run.returncode, run.stdout, run.stderr, files[kind])
            continue
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            status = cli_main(argv)
        done[command, kind] = Finished(status, out.getvalue(), err.getvalue(), files[kind])
    return done


@pytest.mark.parametrize("command", sorted(BAD_FOR_COMMANDS))
def test_commands_say_a_bad_recording_is_bad_in_one_line(
        commands_on_bad_files: dict[tuple[str, str], Finished], command: str) -> None:
    for kind in BAD_FOR_COMMANDS[command]:
        run = commands_on_bad_files[command, kind]
        assert run.returncode != 0, (command, kind, run.stdout)
        assert "Traceback" not in run.stderr, (command, kind, run.stderr)
        lines = run.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("inspector: "), (command, kind,
                                                                       run.stderr)
        assert str(run.out) in lines[0], (command, kind, lines[0])


def test_summary_and_report_of_a_recording_without_samples_say_so(
        endings: dict[str, Finished], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from inspector.cli import main as cli_main
    from inspector.recording import RecordingWriter

    empty = tmp_path / "empty.sqlite"
    writer = RecordingWriter(empty)
    writer.set_meta({"complete": True, "duration_s": 0.0, "command": ["true"]})
    writer.close()
    # the summary of the empty file as its own process; the rest in this process, through
    # the same main()
    summary = inspector_cli("summary", str(empty), timeout=TIMEOUT_S)
    assert summary.returncode == 0, summary.stderr
    assert "no samples" in summary.stdout.lower()
    # `true` ends before the recorder's first tick on a quiet machine; on a busy one it may
    # live into it, and its recording then has samples: what the summary says of those is
    # tested elsewhere
    real = endings["true"].out
    for recording in [empty] + ([real] if inspector.load(real).thread_samples.empty else []):
        if recording != empty:
            status = cli_main(["summary", str(recording)])
            out, err = capsys.readouterr()
            assert status == 0, err
            assert "no samples" in out.lower()
        html = tmp_path / f"{recording.stem}.html"
        status = cli_main(["report", "-o", str(html), str(recording)])
        assert status == 0, capsys.readouterr().err
        assert "no samples" in html.read_text().lower()
