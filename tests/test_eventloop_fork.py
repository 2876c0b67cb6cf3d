"""A forked child's inherited event-loop frames are not a running loop (issue 22): workers that
a process running asyncio forks (multiprocessing, ProcessPoolExecutor) start with a copy of the
loop's frames below their bootstrap; only a loop started above it runs in the child. Real
recordings of tests/workloads/shape_loop_forks_workers.py, then stack texts taken from them."""

from __future__ import annotations

import pandas as pd
import pytest
from test_diagnose import PY, WORKLOADS, Case, _case

from inspector.analyze.eventloop import loop_blocks
from inspector.analyze.frames import parse_stack, stack_facts
from inspector.analyze.verdict import uses_asyncio

WORKLOAD = str(WORKLOADS / "shape_loop_forks_workers.py")


@pytest.fixture(scope="module")
def parent_blocks(tmp_path_factory: pytest.TempPathFactory) -> Case:
    # Workers that only compute, and a 0.4 s time.sleep on the parent's own loop.
    return _case(tmp_path_factory, "loop_forks_workers", PY, WORKLOAD, "--block", cores=2)


@pytest.fixture(scope="module")
def loop_in_worker(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return _case(tmp_path_factory, "loop_in_worker", PY, WORKLOAD, "--loop-in-worker",
                 cores=2)


def _worker_pids(case: Case) -> set[int]:
    procs = case.rec.processes
    return {int(p) for p in procs.loc[~procs["is_target"].astype(bool), "pid"]}


def _target_pid(case: Case) -> int:
    procs = case.rec.processes
    return int(procs.loc[procs["is_target"].astype(bool), "pid"].iloc[0])


def _inherits_loop_frames(case: Case, pid: int) -> bool:
    """The trap is there: this process's stacks hold loop frames (those copied by fork)."""
    texts = case.rec.stacks.loc[case.rec.stacks["pid"] == pid, "stack"].unique()
    return any(f.is_loop for t in texts for f in parse_stack(t))


def test_forked_workers_computing_are_not_reported_as_blocked_loops(
        parent_blocks: Case) -> None:
    workers = _worker_pids(parent_blocks)
    assert len(workers) == 2, parent_blocks.rec.processes
    assert all(_inherits_loop_frames(parent_blocks, pid) for pid in workers)
    d = parent_blocks.diag
    in_workers = [b for b in (*d.event_loop_blocks, *d.loop_starved) if b.pid in workers]
    assert not in_workers, in_workers


def test_the_parents_own_loop_is_still_seen_and_its_block_reported(
        parent_blocks: Case) -> None:
    assert uses_asyncio(parent_blocks.rec.stacks)
    parent = _target_pid(parent_blocks)
    mine = [b for b in parent_blocks.diag.event_loop_blocks if b.pid == parent]
    assert [b.confidence for b in mine] == ["confirmed"], mine
    assert "sleep" in (mine[0].blocking_call or ""), mine
    assert mine[0].coroutine == "main", mine


def test_a_loop_a_worker_runs_itself_is_a_loop(loop_in_worker: Case) -> None:
    workers = _worker_pids(loop_in_worker)
    assert all(_inherits_loop_frames(loop_in_worker, pid) for pid in workers)
    d = loop_in_worker.diag
    # Each job computes 0.7 s inside asyncio.run without yielding: the worker's loop is
    # blocked (or, on a machine too busy to give it the CPU, starved), and it is its own.
    in_workers = [b for b in (*d.event_loop_blocks, *d.loop_starved) if b.pid in workers]
    assert in_workers, (d.event_loop_blocks, d.loop_starved)
    assert {b.coroutine for b in in_workers} == {"crunch_in_a_loop"}, in_workers


# -- stack texts as recorded (py-spy 0.4.3, CPython 3.11.7); each joined text is one that
# the recordings above hold verbatim ---------------------------------------------------------
LIB = "/root/.pyenv/versions/3.11.7/lib/python3.11"
APP = "/work/wt-forkloop/tests/workloads/shape_loop_forks_workers.py"
LOOP = (f"run ({LIB}/asyncio/runners.py:190);Runner.run ({LIB}/asyncio/runners.py:118);"
        f"BaseEventLoop.run_until_complete ({LIB}/asyncio/base_events.py:640);"
        f"BaseEventLoop.run_forever ({LIB}/asyncio/base_events.py:607)")
PARENT_LOOP = f"<module> ({APP}:49);{LOOP}"
PARENT_IN_SELECTOR = (f"{PARENT_LOOP};BaseEventLoop._run_once ({LIB}/asyncio/base_events.py:1884);"
                      f"EpollSelector.select ({LIB}/selectors.py:468)")
RUNNING = (f"BaseEventLoop._run_once ({LIB}/asyncio/base_events.py:1922);"
           f"Handle._run ({LIB}/asyncio/events.py:80)")
SUBMIT = (f"{PARENT_LOOP};{RUNNING};main ({APP}:41);main.<locals>.<listcomp> ({APP}:41);"
          f"BaseEventLoop.run_in_executor ({LIB}/asyncio/base_events.py:829);"
          f"ProcessPoolExecutor.submit ({LIB}/concurrent/futures/process.py:809);"
          "ProcessPoolExecutor._start_executor_manager_thread "
          f"({LIB}/concurrent/futures/process.py:748);"
          f"ProcessPoolExecutor._launch_processes ({LIB}/concurrent/futures/process.py:775);"
          f"ProcessPoolExecutor._spawn_process ({LIB}/concurrent/futures/process.py:785);"
          f"BaseProcess.start ({LIB}/multiprocessing/process.py:121);"
          f"ForkProcess._Popen ({LIB}/multiprocessing/context.py:281);"
          f"Popen.__init__ ({LIB}/multiprocessing/popen_fork.py:19)")
PARENT_FORKING = f"{SUBMIT};Popen._launch ({LIB}/multiprocessing/popen_fork.py:66)"
WORKER = (f"{SUBMIT};Popen._launch ({LIB}/multiprocessing/popen_fork.py:71);"
          f"BaseProcess._bootstrap ({LIB}/multiprocessing/process.py:314);"
          f"BaseProcess.run ({LIB}/multiprocessing/process.py:108)")
WORKER_COMPUTING = (f"{WORKER};_process_worker ({LIB}/concurrent/futures/process.py:261);"
                    f"crunch ({APP}:23)")
WORKER_SENDING = (f"{WORKER};_process_worker ({LIB}/concurrent/futures/process.py:267);"
                  f"_sendback_result ({LIB}/concurrent/futures/process.py:217);"
                  f"SimpleQueue.put ({LIB}/multiprocessing/queues.py:377);"
                  f"_ConnectionBase.send_bytes ({LIB}/multiprocessing/connection.py:200);"
                  f"Connection._send_bytes ({LIB}/multiprocessing/connection.py:427);"
                  f"Connection._send ({LIB}/multiprocessing/connection.py:384)")
WORKER_OWN_LOOP = (f"{WORKER};_process_worker ({LIB}/concurrent/futures/process.py:261);"
                   f"crunch_under_asyncio ({APP}:33);{LOOP};{RUNNING};"
                   f"crunch_in_a_loop ({APP}:29);crunch ({APP}:23)")
# multiprocessing.Process(target=crunch) started with fork from a coroutine (no pool).
MP = "/tmp/mpproc.py"
PROCESS_CHILD = (f"<module> ({MP}:14);{LOOP};{RUNNING};main ({MP}:10);"
                 f"BaseProcess.start ({LIB}/multiprocessing/process.py:121);"
                 f"ForkProcess._Popen ({LIB}/multiprocessing/context.py:281);"
                 f"Popen.__init__ ({LIB}/multiprocessing/popen_fork.py:19);"
                 f"Popen._launch ({LIB}/multiprocessing/popen_fork.py:71);"
                 f"BaseProcess._bootstrap ({LIB}/multiprocessing/process.py:314);"
                 f"BaseProcess.run ({LIB}/multiprocessing/process.py:108);crunch ({MP}:6)")


def test_a_pool_worker_under_inherited_loop_frames_runs_no_loop() -> None:
    for text in (WORKER_COMPUTING, WORKER_SENDING):
        facts = stack_facts(text)
        assert not facts.in_loop and not facts.in_selector, text
    assert stack_facts(WORKER_COMPUTING).user_leaf == f"crunch ({APP}:23)"
    assert stack_facts(WORKER_SENDING).waits_on_program  # unchanged by the rule


def test_a_process_forked_by_multiprocessing_runs_no_loop() -> None:
    assert not stack_facts(PROCESS_CHILD).in_loop


def test_the_parent_forking_and_selecting_is_in_its_own_loop() -> None:
    forking, selecting = stack_facts(PARENT_FORKING), stack_facts(PARENT_IN_SELECTOR)
    assert forking.in_loop and not forking.in_selector
    assert selecting.in_loop and selecting.in_selector


def test_a_loop_started_above_the_workers_bootstrap_runs() -> None:
    facts = stack_facts(WORKER_OWN_LOOP)
    assert facts.in_loop and not facts.in_selector
    assert facts.user_leaf == f"crunch ({APP}:23)"


def _spans(rows: list[tuple[float, float, str]]) -> pd.DataFrame:
    return pd.DataFrame({"t_s": [r[0] for r in rows], "duration_s": [r[1] for r in rows],
                         "pid": 11, "tid": 11, "stack": [r[2] for r in rows]})


def test_a_worker_is_blocked_only_by_its_own_loop_and_its_own_coroutine_is_named() -> None:
    assert loop_blocks(_spans([(0.0, 0.5, WORKER_COMPUTING), (0.5, 0.5, WORKER_SENDING)])) == []
    # Between two jobs the worker waits for the next one: that gap is no part of a block.
    blocks = loop_blocks(_spans([(0.0, 0.3, WORKER_OWN_LOOP), (0.3, 0.2, WORKER_SENDING),
                                 (0.5, 0.3, WORKER_OWN_LOOP)]))
    assert [(b.start_s, b.coroutine) for b in blocks] == [(0.0, "crunch_in_a_loop"),
                                                          (0.5, "crunch_in_a_loop")]
