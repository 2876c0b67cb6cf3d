"""Issue 22's principles on labelled programs written for them, each recorded once: children
run one after another could run at once (whatever they do), a straggler is named with its
cost and never flips a well-split program's advice, a program's start-up is no evidence of
its work, and the advice never contradicts the predictions shown beside it. (Cores followed
per process over time: test_usable_cores.py; a forked child's inherited loop frames:
test_eventloop_fork.py.)"""

from __future__ import annotations

import pytest
import turns
from conftest import inspector_cli, record_at_raised_priority
from machine import cores_left, judged_on
from test_diagnose import PY, WORKLOADS, Case, _case
from test_predict import calibration

from inspector.analyze import evidence as ev
from inspector.analyze.advice import ADVICE_MARGIN, contradictions
from inspector.analyze.predict import Prediction
from inspector.text.evidence import basis_text, said


@pytest.fixture(scope="module")
def children_wait(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return _case(tmp_path_factory, "children_wait", PY, str(WORKLOADS / "shape_children_wait.py"))


@pytest.fixture(scope="module")
def straggler(tmp_path_factory: pytest.TempPathFactory) -> Case:
    # Its two workers must have had two cores side by side for a while, or there is no
    # parallel work for the last task to straggle after: judged on the cores it had.
    return _case(tmp_path_factory, "straggler", PY, str(WORKLOADS / "shape_straggler.py"))


def test_commands_that_wait_one_after_another_are_told_to_run_at_once(
        children_wait: Case) -> None:
    d = children_wait.diag
    shape = [f for f in d.verdict.evidence if isinstance(f, ev.ChildrenOneAfterAnother)]
    assert shape and shape[0].children == 6, said(d.verdict.evidence)
    # nothing computed, yet this is not "idle, keep": running them at once gains
    assert d.verdict.advice == "threading", said(d.verdict.evidence)
    gain = d.predicted["threading"]
    assert isinstance(gain, Prediction) and gain.low >= ADVICE_MARGIN, gain
    assert gain.speedup >= 2.5, gain  # six waits of 0.3 s, six at a time
    assert "6 children" in basis_text(gain.basis)
    assert any("which a recording cannot tell" in e for e in said(d.verdict.evidence))


def test_a_straggler_is_named_with_its_cost_and_the_split_program_is_not_told_to_split(
        straggler: Case) -> None:
    d = straggler.diag
    if not judged_on("a 2-process pool whose last task straggles", cores_left(d), 2):
        return  # no two cores side by side, no parallel phase to straggle after
    named = [f for f in d.verdict.evidence if isinstance(f, ev.Straggler)]
    assert named, said(d.verdict.evidence)
    assert named[0].alone_s >= 0.5 and named[0].idle_cores >= 1.0
    assert d.verdict.advice not in ("multiprocessing", "more-processes"), said(
        d.verdict.evidence)


@pytest.mark.parametrize("name", ["children_wait", "straggler"])
def test_the_advice_never_contradicts_its_predictions(name: str,
                                                      request: pytest.FixtureRequest) -> None:
    d = request.getfixturevalue(name).diag
    assert contradictions(d.verdict.advice, d.predicted) == []


def test_a_run_whose_work_fits_in_the_rounds_of_its_start_up_is_advised_unknown(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """Imports take most of this program; its work (0.12 s of waits) fits in the two rounds
    after them at the default interval: its start-up is no evidence of what the work is bound
    by, so the advice is `unknown`, saying why and what to do. Sampled finer, the same work
    has rounds of its own and gets advice."""
    program = (PY, str(WORKLOADS / "shape_short_after_imports.py"))
    folder = tmp_path_factory.mktemp("short")
    coarse = Case(record_at_raised_priority(folder / "coarse.sqlite", *program))
    assert coarse.v.advice == "unknown", said(coarse.v.evidence)
    why = [f for f in coarse.v.evidence if isinstance(f, ev.Advised)][0]
    told = said(why.why)
    assert any("start-up" in t and "--interval" in t for t in told), told
    fine = Case(record_at_raised_priority(folder / "fine.sqlite", *program,
                                          extra=("--interval", "0.02")))
    assert fine.v.advice != "unknown", said(fine.v.evidence)


def test_a_round_in_which_threads_waited_on_io_is_work_though_another_imported() -> None:
    """A program's first requests import lazily (encodings.idna and the like): one thread
    imports while the others wait on their sockets. Those rounds are its work, not its
    start-up; the demo's I/O job in 16 threads, counted so, had no round of work left and
    was advised `unknown` (a CI run of the suite). Rounds of imports alone, and the start
    before the first stack, stay start-up."""
    import importlib

    import pandas as pd

    diagnose_module = importlib.import_module("inspector.analyze.diagnose")
    zero = dict.fromkeys(("cpu_s", "io_s"), 0.0)
    rows = [  # t_s, tid, importing, startup_s, cpu_s, io_s
        {"t_s": 0.02, "tid": 1, "importing": False, "startup_s": 0.02, **zero},
        {"t_s": 0.04, "tid": 1, "importing": True, "startup_s": 0.0, **zero, "cpu_s": 0.02},
        {"t_s": 0.06, "tid": 1, "importing": True, "startup_s": 0.0, **zero, "cpu_s": 0.02},
        {"t_s": 0.06, "tid": 2, "importing": False, "startup_s": 0.0, **zero, "io_s": 0.02},
        {"t_s": 0.08, "tid": 1, "importing": True, "startup_s": 0.0, **zero, "cpu_s": 0.02},
        {"t_s": 0.08, "tid": 2, "importing": True, "startup_s": 0.0, **zero},
    ]
    states = pd.DataFrame([{**r, "dt_s": 0.02} for r in rows])
    start = diagnose_module._startup_per_round(states)
    assert start.to_dict() == pytest.approx({0.02: 0.02, 0.04: 0.02, 0.06: 0.0, 0.08: 0.02})


@pytest.fixture(scope="module")
def executor_cpu(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return _case(tmp_path_factory, "executor_cpu", PY, str(WORKLOADS / "shape_executor_cpu.py"))


@pytest.mark.parametrize("two_processes, gil_turns, worker_start_s, advised", [
    (1.1, 0.8, 0.25, "fewer-workers"),   # the turns cost more than processes gain
    (1.1, 0.8, 0.003, "multiprocessing"),  # alike: processes skip the turns and add a core
    (1.9, 0.05, 0.003, "multiprocessing"),
])
def test_python_threads_of_an_event_loops_executor_are_never_told_asyncio(
        executor_cpu: Case, two_processes: float, gil_turns: float, worker_start_s: float,
        advised: str) -> None:
    """CPU work run in an event loop's executor takes turns on the GIL. On a machine where
    the turns cost more than processes gain (two processes 1.1x of one, the turns +80%, a
    worker 0.25 s to start), one thread is the fastest way, and it is said as that, not as
    asyncio, which adds nothing to CPU work. Predicted alike with processes, processes: they
    skip the turns too and use the cores besides."""
    import dataclasses

    import inspector
    from inspector.analyze import diagnose

    rec = inspector.load(executor_cpu.path)
    # the recording on a machine measured so (calibrate.py's fields)
    pace = 2.0 / two_processes - 1.0  # capacity._gil_cost's pace term for this gain
    machine = calibration(
        process_speedup=two_processes, process_speedup_low=two_processes,
        process_speedup_high=two_processes, gil_handoff_cost=max(0.0, gil_turns - pace),
        gil_handoff_cost_low=None, gil_handoff_cost_high=None,
        worker_start_fork_s=worker_start_s, pool_worker_fork_s=worker_start_s,
        pool_fixed_fork_s=0.02)
    d = diagnose(dataclasses.replace(rec, meta=dataclasses.replace(rec.meta,
                                                                   calibration=machine)))
    assert d.verdict.gil_limited, said(d.verdict.evidence)
    assert d.verdict.advice == advised, said(d.verdict.evidence)
    if advised == "fewer-workers":
        why = [f for f in d.verdict.evidence if isinstance(f, ev.Advised)][0].why
        assert any(isinstance(f, ev.GilTurns) for f in why), said(why)
        assert "one thread of Python a process" in " ".join(said(why))


@pytest.fixture(scope="module")
def native_threads_beside_hogs(tmp_path_factory: pytest.TempPathFactory) -> Case:
    import subprocess
    import sys

    # at the hogs' priority (not raised, as _case records): the threads get about one core.
    # Alone (tests/turns.py): the hogs would take the cores from the tests beside them, and
    # those tests' programs would take them from the threads judged here.
    out = tmp_path_factory.mktemp("native_hogs") / "native_hogs.sqlite"
    with turns.alone():
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
        try:
            proc = inspector_cli("record", "-q", "-o", str(out), "--", PY,
                                 str(WORKLOADS / "shape_native_threads_beside_hogs.py"))
        finally:
            for h in hogs:
                h.kill()
                h.wait()
    assert proc.returncode == 0, proc.stderr
    return Case(out)


def test_threads_runnable_at_once_need_no_gil_whatever_cores_others_left_them(
        native_threads_beside_hogs: Case) -> None:
    """A thread waiting for the GIL sleeps; two threads of one process runnable at once (on
    a CPU or queued for one) need none then. Beside two CPU hogs the zlib threads got about
    one core between them: their work still spreads as processes' would, and processes are
    not advised for what the threads already do."""
    d = native_threads_beside_hogs.diag
    [proc] = [p for p in d.processes if p.python]
    assert not proc.gil_limited, said(d.verdict.evidence)
    assert proc.parallel_threads or proc.threads_runnable_together, said(d.verdict.evidence)
    threads = d.predicted["threading"]
    assert isinstance(threads, Prediction)
    assert "released the GIL" in basis_text(threads.basis), basis_text(threads.basis)
    assert d.verdict.advice not in ("multiprocessing", "asyncio"), said(d.verdict.evidence)


def test_a_loop_blocked_in_sleeps_is_told_to_unblock_not_that_it_is_idle_and_fine(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """A run that sleeps is idle; an event loop that sleeps in time.sleep stalls all its
    tasks meanwhile: made non-blocking they would overlap. The gain the recording cannot
    tell (how many tasks waited), so none is claimed."""
    d = _case(tmp_path_factory, "sleeps_blocking", PY,
              str(WORKLOADS / "shape_asyncio_sleeps_blocking.py")).diag
    assert d.event_loop_blocks, said(d.verdict.evidence)
    assert d.verdict.advice == "unblock-loop", said(d.verdict.evidence)
    advised = [f for f in d.verdict.evidence if isinstance(f, ev.Advised)][0]
    assert not any(isinstance(f, ev.PredictedGain) for f in advised.why), said(advised.why)
