"""The verdicts on common program shapes (issue 12): each `tests/workloads/shape_*.py` is a
small real program of one shape, recorded once per module, with the verdict a user needs from
it asserted. The recording helpers are test_diagnose's, so both corpora are read alike."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_diagnose import PY, WORKLOADS, Case, _case

from inspector.text.evidence import basis_text, said

# Of its sampled time, the most a parked pool worker may be said to wait for the GIL.
PARKED_GIL_SHARE_MAX = 0.10


def _shape(tmp_path_factory: pytest.TempPathFactory, name: str) -> Case:
    return _case(tmp_path_factory, name, PY, str(WORKLOADS / f"shape_{name}.py"))


@pytest.fixture(scope="module")
def idle_listeners(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return _shape(tmp_path_factory, "cpu_main_idle_listeners")


@pytest.fixture(scope="module")
def pinned_threads(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return _shape(tmp_path_factory, "pinned_cpu_threads")


@pytest.fixture(scope="module")
def idle_pool(idle_pool_recording: Path) -> Case:
    return Case(idle_pool_recording)


@pytest.fixture(scope="module")
def lock_across_io(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return _shape(tmp_path_factory, "lock_held_across_io")


@pytest.fixture(scope="module")
def sequential_children(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return _shape(tmp_path_factory, "sequential_children")


@pytest.fixture(scope="module")
def parallel_then_serial(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return _shape(tmp_path_factory, "parallel_then_serial")


@pytest.fixture(scope="module")
def blocking_urlopen(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return _shape(tmp_path_factory, "asyncio_blocking_urlopen")


@pytest.fixture(scope="module")
def chunked_yield(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return _shape(tmp_path_factory, "asyncio_chunked_yield")


@pytest.fixture(scope="module")
def sequential_squares(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return _shape(tmp_path_factory, "sequential_sum_squares")


@pytest.fixture(scope="module")
def thread_pool_squares(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return _shape(tmp_path_factory, "thread_pool_sum_squares")


@pytest.fixture(scope="module")
def process_pool_squares(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return _shape(tmp_path_factory, "process_pool_sum_squares")


# -- threads that wait on nothing the program needs ---------------------------------------

def test_idle_listeners_do_not_make_a_cpu_bound_program_io_bound(idle_listeners: Case) -> None:
    listeners = (idle_listeners.threads_named("metrics-server")
                 + idle_listeners.threads_named("subscriber-"))
    assert len(listeners) == 3  # the shape as written: three listeners alive beside main
    v = idle_listeners.v
    assert (v.bound, v.gil_limited, v.advice) == ("cpu", False, "multiprocessing"), v


def test_parked_pool_workers_wait_for_work_not_for_the_gil(idle_pool: Case) -> None:
    workers = idle_pool.threads_named("pool_")
    assert len(workers) == 8
    for t in workers:
        assert t.state_s["gil"] < PARKED_GIL_SHARE_MAX * t.sampled_s, (t.name, t.state_s)


def test_a_main_thread_computing_beside_a_parked_pool_is_told_to_use_processes(
        idle_pool: Case) -> None:
    v = idle_pool.v
    assert (v.bound, v.gil_limited, v.advice) == ("cpu", False, "multiprocessing"), v


# -- the cores a program may use ---------------------------------------------------------

def test_threads_pinned_to_one_core_are_never_told_to_use_processes(
        pinned_threads: Case) -> None:
    v = pinned_threads.v
    assert v.bound == "cpu"
    assert v.advice == "keep", v  # on one usable core, processes would not be faster
    assert any(re.search(r"1 usable|affinity", e) for e in said(v.evidence)), v.evidence


# -- waits on the program itself ---------------------------------------------------------

def test_threads_queued_on_a_lock_held_across_io_wait_on_the_lock_not_the_gil(
        lock_across_io: Case) -> None:
    workers = lock_across_io.threads_named("locker-")
    assert len(workers) == 4
    # threading.Lock is not fair: a holder may take it again at once and starve the others,
    # so not every worker queues. Those that wait, wait on the lock (each needs the GIL only
    # briefly when woken), and the waits of all four are lock waits.
    waiting = [t for t in workers if t.state_s["lock"] + t.state_s["gil"] > 0.3 * t.sampled_s]
    assert len(waiting) >= 2, [(t.name, t.state_s) for t in workers]
    for t in waiting:
        assert t.state_s["lock"] > t.state_s["gil"], (t.name, t.state_s)
    assert sum(t.state_s["lock"] for t in workers) > 5 * sum(t.state_s["gil"] for t in workers)
    contention = lock_across_io.diag.lock_contention
    assert contention is not None and contention.threads >= 2, contention


def test_a_lock_held_across_io_is_not_a_gil_limit_processes_would_lift(
        lock_across_io: Case) -> None:
    busy = lock_across_io.threads_named("busy")[0]  # the shape: it wanted a CPU throughout
    wanted_s = busy.state_s["cpu"] + busy.state_s["gil"] + busy.state_s["runqueue"]
    assert wanted_s > 0.8 * busy.sampled_s, busy.state_s
    v = lock_across_io.v
    assert not v.gil_limited, v
    assert v.advice != "multiprocessing", v


# -- concurrency over time ---------------------------------------------------------------

def test_children_run_one_after_another_use_one_core_at_a_time(
        sequential_children: Case) -> None:
    parent = sequential_children.diag.processes[0]
    children = [p for p in sequential_children.diag.processes if p.ppid == parent.pid]
    assert len(children) == 5, sequential_children.diag.processes
    v = sequential_children.v
    assert v.bound == "cpu", v
    # running the five at once is the change that gains: threads calling subprocess.run (the
    # lightest of the three models that do it), predicted from the children's own CPU
    assert v.advice == "threading", said(v.evidence)
    gain = sequential_children.diag.predicted["threading"]
    assert gain.low >= 1.1 and "5 children" in basis_text(gain.basis), gain
    assert any("5 child processes one after another" in e for e in said(v.evidence))


def test_a_long_serial_phase_after_a_short_parallel_one_is_told_to_use_processes(
        parallel_then_serial: Case) -> None:
    v = parallel_then_serial.v
    assert v.bound == "cpu", v
    assert v.advice == "multiprocessing", v


def test_a_parallel_phase_then_a_serial_one_are_two_phases(parallel_then_serial: Case) -> None:
    phases = getattr(parallel_then_serial.diag, "phases", None)
    assert phases is not None, "the diagnosis has no phases"
    assert len(phases) >= 2, phases


# -- asyncio -----------------------------------------------------------------------------

def test_blocking_urlopen_in_coroutines_is_named_and_not_kept(blocking_urlopen: Case) -> None:
    blocks = blocking_urlopen.diag.event_loop_blocks
    assert blocks
    named = [b for b in blocks
             if "urlopen" in f"{b.function} {b.frame}" or "fetch_status" in
             f"{b.function} {b.coroutine}"]
    assert named, blocks
    assert blocking_urlopen.v.advice != "keep", blocking_urlopen.v


def test_a_loop_yielding_every_few_ms_is_never_reported_confidently_blocked(
        chunked_yield: Case) -> None:
    confident = [b for b in chunked_yield.diag.event_loop_blocks
                 if getattr(b, "confidence", "confirmed") == "confirmed"]
    assert not confident, confident


# -- the classic CPU scripts: right today, must stay right -------------------------------

def test_the_sequential_sum_of_squares_is_told_to_use_processes(
        sequential_squares: Case) -> None:
    v = sequential_squares.v
    assert (v.bound, v.gil_limited, v.advice) == ("cpu", False, "multiprocessing"), v


def test_the_sum_of_squares_in_five_pool_threads_is_gil_limited(
        thread_pool_squares: Case) -> None:
    assert len(thread_pool_squares.threads_named("squares_")) == 5
    v = thread_pool_squares.v
    assert (v.bound, v.gil_limited, v.advice) == ("cpu", True, "multiprocessing"), v


def test_the_sum_of_squares_in_a_process_pool_is_not_told_to_use_processes(
        process_pool_squares: Case) -> None:
    d = process_pool_squares.diag
    assert d.process_count == 1 + d.cpu_count  # Pool(): one worker per core
    v = process_pool_squares.v
    assert v.bound == "cpu" and not v.gil_limited, v
    assert v.advice != "multiprocessing", v
