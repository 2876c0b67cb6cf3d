"""The diagnosis on a labelled corpus of real programs (tests/workloads/), each recorded once
per module, plus the `summary` and `explain` commands on them and on bad input: run in this
process (inspector.cli.main) where what is checked is their output, and as `python -m
inspector` once per kind of outcome (the contract's JSON, a refused file, a usage error, a
live program)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import turns
from conftest import inspector_cli, record_at_raised_priority
from machine import cores_left, for_the_recording, judged_on

import inspector
from inspector.analyze import Diagnosis, diagnose, thread_states
from inspector.analyze.states import STATE_COLUMNS
from inspector.cli import main
from inspector.text.evidence import said
from inspector.text.json import diagnosis_data

PY = sys.executable
WORKLOADS = Path(__file__).parent / "workloads"
CORES = os.cpu_count() or 1
COMM = Path(PY).name[:15]  # what htop and /proc/PID/comm call our Python processes


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`inspector ARGS` run in this process: its exit status, stdout and stderr."""
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def _record(tmp: Path, name: str, *command: str, cores: int | None = None) -> Path:
    return record_at_raised_priority(tmp / f"{name}.sqlite", *command, cores=cores)


class Case:
    """One workload: its recording, loaded, and its diagnosis."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rec = inspector.load(path)
        self.states = thread_states(self.rec)
        self.diag: Diagnosis = diagnose(self.rec, self.states)
        self.v = self.diag.verdict

    def threads_named(self, prefix: str) -> list:
        return [t for t in self.diag.threads if (t.name or "").startswith(prefix)]


def _case(tmp_path_factory: pytest.TempPathFactory, name: str, *command: str,
          cores: int | None = None) -> Case:
    return Case(_record(tmp_path_factory.mktemp(name), name, *command, cores=cores))


@pytest.fixture(scope="module")
def gil_threads(gil_threads_recording: Path) -> Case:
    return Case(gil_threads_recording)


@pytest.fixture(scope="module")
def process_pool(process_pool_recording: Path) -> Case:
    return Case(process_pool_recording)


@pytest.fixture(scope="module")
def hash_threads(tmp_path_factory: pytest.TempPathFactory) -> Case:
    # Two threads running at once need two free cores: judged on those the recording had.
    return _case(tmp_path_factory, "hash_threads", PY, str(WORKLOADS / "hash_threads.py"),
                 cores=2)


@pytest.fixture(scope="module")
def http_threads(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return _case(tmp_path_factory, "http_threads", PY, str(WORKLOADS / "http_threads.py"))


@pytest.fixture(scope="module")
def asyncio_http(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return _case(tmp_path_factory, "asyncio_http", PY, str(WORKLOADS / "asyncio_http.py"))


@pytest.fixture(scope="module")
def asyncio_blocked(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return _case(tmp_path_factory, "asyncio_blocked", PY,
                 str(WORKLOADS / "asyncio_blocked.py"))


@pytest.fixture(scope="module")
def cpu_processes(tmp_path_factory: pytest.TempPathFactory) -> Case:
    # Four runnable processes per core, whatever the machine (8 on these 2-core machines).
    return _case(tmp_path_factory, "cpu_processes", PY, str(WORKLOADS / "cpu_processes.py"),
                 str(4 * CORES))


@pytest.fixture(scope="module")
def sleeper(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return _case(tmp_path_factory, "sleeper", PY, str(WORKLOADS / "sleeper.py"))


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Case:
    # `; echo` keeps the shell alive as the parent (a lone command may be exec'd by sh).
    return _case(tmp_path_factory, "shell", "sh", "-c",
                 f"'{PY}' '{WORKLOADS / 'gil_threads.py'}' 1; echo shell-done")


# -- thread states -------------------------------------------------------------------------

def test_thread_states_split_every_interval_exactly(gil_threads: Case) -> None:
    s = gil_threads.states
    assert len(s) > 50
    total = s[list(STATE_COLUMNS)].sum(axis=1)
    assert ((total - s["dt_s"]).abs() < 1e-6).all()
    assert (s[list(STATE_COLUMNS)] >= 0).all().all()
    assert set(s["state"]) <= {"cpu", "gil", "lock", "io", "sleep", "runqueue", "other"}


def test_gil_bound_threads_mostly_wait_for_the_gil_in_their_own_code(gil_threads: Case) -> None:
    workers = gil_threads.threads_named("arith-")
    assert len(workers) == 4
    for t in workers:
        assert t.state_s["gil"] > t.state_s["lock"] + t.state_s["io"] + t.state_s["sleep"]
    leaves = gil_threads.states[gil_threads.states["name"].str.startswith("arith-", na=False)]
    assert leaves["leaf"].str.contains("arithmetic", na=False).mean() > 0.9


def test_joining_main_thread_waits_on_a_lock_not_the_gil(gil_threads: Case) -> None:
    main = gil_threads.threads_named("MainThread")[0]
    assert main.state_s["lock"] > 0.8 * main.sampled_s
    # it takes the GIL back after starting each thread and after each join: a few real GIL
    # waits (seen at the GIL's own futex), never a share of its life
    assert main.state_s["gil"] < 0.1 * main.sampled_s


# -- the corpus --------------------------------------------------------------------------

def test_four_python_threads_are_gil_limited_and_told_to_use_processes(gil_threads: Case) -> None:
    v = gil_threads.v
    assert (v.bound, v.gil_limited, v.parallel_threads, v.advice) == (
        "cpu", True, False, "multiprocessing")
    assert any("GIL" in e for e in said(v.evidence))
    proc = gil_threads.diag.processes[0]
    assert proc.gil_limited and proc.cpu_percent_mean < 130
    # told from the futex addresses alone: py-spy --gil (its cross-check) runs only with
    # --gil-check (tests/test_recording_cost.py)
    assert proc.gil_held_share is None


def test_a_free_threaded_interpreter_is_never_told_the_gil_capped_it(gil_threads: Case) -> None:
    rec = gil_threads.rec
    free = replace(rec, processes=rec.processes.assign(python_gil="disabled"))
    diag = diagnose(free)
    assert not diag.verdict.gil_limited
    assert all(t.state_s["gil"] == 0 for t in diag.threads)
    assert not any("GIL capped" in e for e in said(diag.verdict.evidence))


def test_a_two_process_pool_is_cpu_bound_without_the_gil(process_pool: Case) -> None:
    v = process_pool.v
    assert v.bound == "cpu" and not v.gil_limited
    assert v.advice != "multiprocessing"
    assert process_pool.diag.process_count == 3  # parent and 2 workers (fork)
    parent = process_pool.diag.processes[0]
    workers = [p for p in process_pool.diag.processes if p.ppid == parent.pid]
    assert len(workers) == 2 and all(p.bound == "cpu" for p in workers)


def test_hashing_threads_run_in_parallel(hash_threads: Case) -> None:
    v = hash_threads.v
    proc = hash_threads.diag.processes[0]
    # whatever the load: CPU-bound, and not held back by the GIL (hashlib releases it; a
    # py-spy --gil run that never saw it held leaves no rows)
    assert (v.bound, v.gil_limited) == ("cpu", False), v
    assert proc.gil_held_share is None or proc.gil_held_share < 0.5
    hashers = hash_threads.threads_named("hash-")
    assert len(hashers) == 2
    assert all(t.state_s["gil"] < 0.25 * t.sampled_s for t in hashers), hashers
    if judged_on("two threads hashing", cores_left(hash_threads.diag), 2):
        assert v.parallel_threads and v.advice == "keep", v
        assert proc.cpu_percent_peak > 130 and proc.parallel_threads


def test_threads_fetching_from_a_slow_server_are_io_bound(http_threads: Case) -> None:
    v = http_threads.v
    assert v.bound == "io" and not v.gil_limited
    fetchers = http_threads.threads_named("fetch-")
    assert len(fetchers) == 10
    for t in fetchers:
        assert t.state_s["io"] > 0.7 * t.sampled_s


def test_asyncio_with_many_connections_is_io_bound(asyncio_http: Case) -> None:
    v = asyncio_http.v
    assert v.bound == "io" and v.advice == "keep"
    # never a confident block; at load 12 one interval of asyncio.run's teardown (after the
    # last await) was seen as a possible one, said as no more than that
    blocks = asyncio_http.diag.event_loop_blocks
    assert all(b.confidence == "possible" and b.duration_s <= 0.15 for b in blocks), blocks
    main = asyncio_http.threads_named("MainThread")[0]
    assert main.state_s["io"] > main.state_s["cpu"]


def test_blocked_event_loop_names_the_coroutines(asyncio_blocked: Case) -> None:
    blocks = asyncio_blocked.diag.event_loop_blocks
    functions = {b.function for b in blocks}
    assert {"sleepy_handler", "crunching_handler"} <= functions, blocks
    assert all(b.duration_s >= 0.1 for b in blocks)
    assert "ticker" not in functions
    assert all(b.tid == asyncio_blocked.diag.processes[0].pid for b in blocks)  # main thread


def test_more_cpu_processes_than_cores_are_oversubscribed(cpu_processes: Case) -> None:
    v = cpu_processes.v
    assert v.oversubscribed and v.bound == "cpu" and not v.gil_limited
    assert cpu_processes.diag.process_count == 4 * CORES + 1
    assert sum(t.state_s["runqueue"] for t in cpu_processes.diag.threads) > \
        sum(t.state_s["cpu"] for t in cpu_processes.diag.threads)


def test_a_sleeper_is_idle(sleeper: Case) -> None:
    v = sleeper.v
    assert (v.bound, v.gil_limited, v.oversubscribed, v.advice) == ("idle", False, False, "keep")
    main = sleeper.diag.threads[0]
    assert main.state_s["sleep"] > 0.9 * main.sampled_s


def test_python_behind_a_shell_is_diagnosed_through_it(shell: Case) -> None:
    d = shell.diag
    assert d.process_count == 2
    sh, py = d.processes
    assert not sh.python and py.python and py.ppid == sh.pid
    assert py.gil_limited and d.verdict.gil_limited and d.verdict.advice == "multiprocessing"
    assert d.peak_threads == 6 == d.htop_rows_peak  # the shell's 1 + Python's 5


def test_other_workloads_are_not_oversubscribed_or_gil_limited(
        process_pool: Case, hash_threads: Case, http_threads: Case, sleeper: Case) -> None:
    for case in (process_pool, hash_threads, http_threads, sleeper):
        assert not case.v.gil_limited, case.path
    for case in (http_threads, sleeper):
        assert not case.v.oversubscribed, case.path


# -- summary -------------------------------------------------------------------------------

CONTRACT_TOP = {"command", "exit_code", "duration_s", "cpu_count", "process_count",
                "peak_threads", "htop_rows_peak", "processes", "threads", "verdict",
                "event_loop_blocks"}


def test_summary_json_keeps_the_contract(process_pool: Case) -> None:
    proc = inspector_cli("summary", "--json", str(process_pool.path))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) >= CONTRACT_TOP
    assert data["process_count"] == 3 and data["cpu_count"] == CORES
    for p in data["processes"]:
        assert {"pid", "ppid", "cmdline", "python", "threads_peak", "cpu_percent_mean",
                "cpu_percent_peak", "rss_peak_bytes", "start_s", "end_s"} <= set(p)
        assert isinstance(p["cmdline"], list) and p["python"] is True
    for t in data["threads"]:
        assert {"pid", "tid", "name", "cpu_s", "state_s"} <= set(t)
        assert set(t["state_s"]) == {"cpu", "gil", "lock", "io", "sleep", "runqueue", "other"}
    assert {"bound", "gil_limited", "parallel_threads", "oversubscribed", "advice",
            "evidence"} <= set(data["verdict"])
    assert data["verdict"]["evidence"] and all(isinstance(e, str) for e in
                                               data["verdict"]["evidence"])
    assert data == json.loads(json.dumps(diagnosis_data(process_pool.diag)))


def test_summary_json_lists_blocked_loops(asyncio_blocked: Case,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _cli(capsys, "summary", "--json", str(asyncio_blocked.path))
    assert status == 0, err
    data = json.loads(out)
    blocks = data["event_loop_blocks"]
    assert blocks and {"pid", "tid", "start_s", "duration_s", "function"} <= set(blocks[0])


def test_summary_text_puts_verdict_then_processes_then_busy_threads(
        gil_threads: Case, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _cli(capsys, "summary", str(gil_threads.path))
    assert status == 0, err
    verdict, advice = out.index("VERDICT:"), out.index("ADVICE:  multiprocessing")
    processes, busy = out.index("PROCESSES:"), out.index("WHERE BUSY THREADS")
    assert verdict < advice < processes < busy
    assert "GIL" in out[verdict:processes]
    assert out.count("arith-") >= 8  # in the process's thread list and among the busy ones
    assert "arithmetic (" in out[busy:]


def test_summary_and_report_say_the_vocabularys_words(
        gil_threads: Case, capsys: pytest.CaptureFixture[str]) -> None:
    """Each word is written once, in analyze/vocabulary.py: the summary and the report's
    verdict and state bars say the run's bound, advice and thread states in its words."""
    from inspector.analyze.vocabulary import ADVICE, BOUNDS, THREAD_STATES
    from inspector.report.markup import esc
    from inspector.report.sections import state_bar, verdict_section

    v, threads = gil_threads.v, gil_threads.diag.threads
    busiest = max(threads, key=lambda t: t.sampled_s)
    top = max(busiest.state_s, key=lambda s: busiest.state_s[s])
    out = _cli(capsys, "summary", str(gil_threads.path))[1]
    assert f"VERDICT: {BOUNDS[v.bound].phrase}" in out
    assert f"ADVICE:  {v.advice}: {ADVICE[v.advice].title}" in out
    assert f"{THREAD_STATES[top].word} " in out
    page = verdict_section(gil_threads.diag, {}, None)
    assert esc(ADVICE[v.advice].title) in page and esc(ADVICE[v.advice].sentence) in page
    assert esc(THREAD_STATES[top].word) in state_bar(busiest.state_s)


def test_summary_of_a_recording_without_samples_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # `true` ends before a second sample at any priority: nothing here is judged of the CPU
    path = tmp_path / "instant.sqlite"
    proc = inspector_cli("record", "-q", "-o", str(path), "--", "true")
    assert proc.returncode == 0, proc.stderr
    status, out, err = _cli(capsys, "summary", str(path))
    assert status == 0, err
    assert "NO SAMPLES" in out
    data = json.loads(_cli(capsys, "summary", "--json", str(path))[1])
    assert data["verdict"]["bound"] == "idle" and not data["verdict"]["gil_limited"]
    assert data["intervals"] == 0 and data["event_loop_blocks"] == []


@pytest.mark.parametrize("command", ["summary", "explain"])
def test_a_corrupt_recording_is_one_line_and_exit_1(
        tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    proc = inspector_cli(command, str(bad))  # the real command: its status, no traceback
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("inspector: ")
    for path in (bad, tmp_path / "missing.sqlite", tmp_path):
        status, out, err = _cli(capsys, command, str(path))
        assert status == 1, (path, out, err)
        assert err.count("\n") == 1 and err.startswith("inspector: "), err


def test_summary_without_a_recording_is_a_usage_error() -> None:
    proc = inspector_cli("summary")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


# -- explain -------------------------------------------------------------------------------

def test_explain_a_recording_tells_threads_from_child_processes(
        shell: Case, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _cli(capsys, "explain", str(shell.path))
    assert status == 0, err
    py = shell.diag.processes[1]
    assert f"these 5 `{COMM}` rows in htop are 1 process (pid {py.pid}) with 5 threads" \
        in out
    assert f"process {py.pid} is a real child process of pid {shell.diag.processes[0].pid}" \
        in out
    assert "only 1 thread at a time runs Python code" in out


def test_explain_pid_looks_at_a_live_program(tmp_path: Path) -> None:
    # the program and the recorder both get their cores (tests/machine.py): its GIL-bound
    # threads must compete with each other, not with the machine's other programs
    # nor with another test's program at raised priority (tests/turns.py)
    with turns.alone():
        live = subprocess.Popen([PY, str(WORKLOADS / "live_threads_and_child.py")],
                                stdout=subprocess.PIPE, text=True,
                                preexec_fn=for_the_recording(2))
        try:
            assert live.stdout is not None
            words = live.stdout.readline().split()
            assert words[0] == "ready", words
            pid, child = int(words[1]), int(words[2])
            proc = inspector_cli("explain", "--pid", str(pid), "--duration", "1", timeout=60,
                                 preexec_fn=for_the_recording())
        finally:
            live.kill()
            live.wait()
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"these 9 `{COMM}` rows in htop are 1 process (pid {pid}) with 9 threads" in out
    assert f"process {child} is a real child process of pid {pid}" in out
    assert "htop (default settings) shows 10 rows" in out and "top shows 2" in out
    assert "only 1 thread at a time runs Python code" in out
    for name in ("arith-0", "waiter-4"):
        assert name in out


def test_explain_pid_of_no_process_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    status, _out, err = _cli(capsys, "explain", "--pid", "999999999")
    assert status == 1 and err.count("\n") == 1
    assert "no process" in err
