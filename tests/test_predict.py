"""The prediction model and the advice, on their own: every model, phases, children,
stragglers, locks, the refusals, the machine measured or assumed, and the advice's one
story (never contradicting the predictions it stands beside). Pure: no recording needed."""

from __future__ import annotations

import dataclasses

import pytest

from inspector.analyze import evidence as ev
from inspector.analyze.advice import ADVICE_MARGIN, Fix, choose, contradictions
from inspector.analyze.capacity import Capacity, Machine, Range, capacity_of, machine
from inspector.analyze.predict import (
    MODELS,
    Children,
    Prediction,
    PredictionInputs,
    Segment,
    io_concurrency_of,
    predict,
)
from inspector.analyze.wall import WallTime
from inspector.recording.calibration import Calibration
from inspector.text.evidence import say

# A machine whose two cores give 1.8x of one, threads taking turns cost 5%, a fork 3 ms.
MEASURED = Capacity(usable_cores=2.0, processes=2, process_gain=Range(1.6, 1.8, 1.9),
                    gil_cost=Range(0.02, 0.05, 0.1), fork_start_s=0.003, spawn_start_s=0.06,
                    thread_start_s=0.0003, measured=True)


def wall(wall_s: float = 4.0, computing_s: float = 0.0, io_s: float = 0.0, *,
         runnable: float = 1.0, wanting: float = 1.0) -> WallTime:
    return WallTime(wall_s=wall_s, computing_s=computing_s, parallel_s=0.0, io_s=io_s,
                    waiting_s=max(0.0, wall_s - computing_s - io_s),
                    cores_at_once_mean=runnable, cores_at_once_peak=runnable,
                    busy_processes_mean=wanting, runnable_mean=runnable,
                    wanting_processes_mean=wanting)


def inputs(*segments: Segment, capacity: Capacity = MEASURED, concurrency: int = 8,
           **kw: object) -> PredictionInputs:
    return PredictionInputs(segments=segments, capacity=capacity,
                            io_concurrency=concurrency, io_concurrency_own=False, **kw)


def got(predicted: dict, model: str) -> Prediction:
    p = predicted[model]
    assert isinstance(p, Prediction), p
    return p


# -- the models ---------------------------------------------------------------------------

def test_one_thread_of_python_gains_what_the_machine_gives_two_processes() -> None:
    p = predict(inputs(Segment(wall(4.0, computing_s=4.0), python_holds_gil=True)))
    mp = got(p, "multiprocessing")
    assert mp.speedup == pytest.approx(1.8, rel=0.02)   # the measured 1.8x, a fork's start
    assert mp.low < mp.speedup <= mp.high <= 1.9 + 1e-9
    assert got(p, "threading").speedup < 1.0             # taking turns costs, never gains
    assert got(p, "asyncio").speedup == pytest.approx(1.0)


def test_threads_that_took_turns_on_the_gil_gain_their_handoffs_back_on_one_thread() -> None:
    seg = Segment(wall(4.0, computing_s=4.0), python_holds_gil=True, gil_contended=True)
    p = predict(inputs(seg))
    assert got(p, "threading").speedup == pytest.approx(1.0, abs=0.01)  # the same structure
    assert got(p, "asyncio").speedup == pytest.approx(1.05)   # one thread: no hand-offs
    assert got(p, "multiprocessing").speedup == pytest.approx(1.8 * 1.05, rel=0.02)


def test_work_already_on_both_cores_gains_nothing_from_processes() -> None:
    seg = Segment(wall(4.0, computing_s=4.0, runnable=2.0, wanting=2.0),
                  python_holds_gil=True)
    mp = got(predict(inputs(seg)), "multiprocessing")
    assert mp.speedup == pytest.approx(1.0, abs=0.02)
    assert mp.low < 1.0 < mp.high  # the machine's own spread, both ways


def test_native_code_in_parallel_spreads_under_threads_too() -> None:
    seg = Segment(wall(4.0, computing_s=4.0), python_holds_gil=False)
    p = predict(inputs(seg))
    assert got(p, "threading").speedup == pytest.approx(got(p, "multiprocessing").speedup,
                                                         rel=0.02)


def test_io_waits_overlap_as_many_at_once_as_the_concurrency() -> None:
    seg = Segment(wall(4.0, computing_s=0.1, io_s=3.9), python_holds_gil=True)
    p = predict(inputs(seg, concurrency=8, wait_s=0.2))
    th = got(p, "threading")
    assert 4.0 / (0.1 + 3.9 / 8 + 0.01) < th.speedup < 4.0 / (0.1 + 3.9 / 8) + 0.1
    assert th.low < th.speedup  # at worst a pool's last batch: one wait more
    assert th.workers == 8 and got(p, "asyncio").workers == 8


def test_a_selectors_waits_are_already_overlapped() -> None:
    seg = Segment(wall(4.0, computing_s=0.1, io_s=3.9), python_holds_gil=True)
    p = predict(inputs(seg, multiplexed=True))
    for model in MODELS:
        assert got(p, model).speedup < ADVICE_MARGIN, model


def test_disk_waits_get_no_asyncio_estimate() -> None:
    seg = Segment(wall(4.0, io_s=3.9), python_holds_gil=True)
    p = predict(inputs(seg, socket_waits=False))
    assert isinstance(p["asyncio"], str) and "not on sockets" in p["asyncio"]
    assert isinstance(p["threading"], Prediction)


def test_nothing_measured_is_said_for_every_model() -> None:
    p = predict(inputs(Segment(wall(0.0), python_holds_gil=True)))
    assert all(p[m] == "nothing was measured" for m in MODELS)


def test_phases_are_estimated_apart_and_added() -> None:
    parallel = Segment(wall(1.0, computing_s=1.0, runnable=2.0), python_holds_gil=False,
                       name="parallel")
    serial = Segment(wall(3.0, computing_s=3.0), python_holds_gil=True, name="serial")
    p = predict(inputs(parallel, serial))
    mp = got(p, "multiprocessing")
    # the parallel phase stays (already on both cores), the serial one spreads
    expected = 4.0 / (1.0 + 3.0 / 1.8)
    assert mp.speedup == pytest.approx(expected, rel=0.03)
    assert all(isinstance(f, ev.InPhase) for f in mp.basis if not isinstance(
        f, ev.WorkersStart))


def test_children_run_one_after_another_are_predicted_run_at_once() -> None:
    waiting = Children(lives_s=(0.5,) * 6, cpu_s=(0.0,) * 6)
    seg = Segment(wall(3.0), python_holds_gil=True, name="children", children=waiting)
    th = got(predict(inputs(seg, concurrency=6)), "threading")
    assert th.speedup == pytest.approx(6.0, rel=0.01)   # six waits of 0.5 s at once
    assert th.low < th.speedup                          # at worst one child's length more
    computing = Children(lives_s=(0.5,) * 6, cpu_s=(0.5,) * 6)
    seg = Segment(wall(3.0, computing_s=3.0), python_holds_gil=True, name="children",
                  children=computing)
    th = got(predict(inputs(seg, concurrency=6)), "threading")
    assert th.speedup == pytest.approx(1.8, rel=0.01)   # their CPU over what 2 cores give


def test_a_stragglers_task_and_a_locks_queue_are_spread_by_no_model() -> None:
    tail = Segment(wall(2.0, computing_s=2.0), python_holds_gil=True, indivisible_s=2.0)
    assert got(predict(inputs(tail)), "multiprocessing").speedup <= 1.0
    locked = Segment(wall(2.0, computing_s=1.0, io_s=1.0), python_holds_gil=True, serial=True)
    assert all(got(predict(inputs(locked)), m).speedup == pytest.approx(1.0) for m in MODELS)


def test_spawn_starts_cost_more_than_forks() -> None:
    seg = Segment(wall(1.0, computing_s=1.0), python_holds_gil=True)
    fork = got(predict(inputs(seg)), "multiprocessing")
    spawn = got(predict(inputs(seg, spawns=True)), "multiprocessing")
    assert spawn.speedup < fork.speedup


def test_a_measured_pool_costs_its_own_part_once_and_each_worker_its_part() -> None:
    waits = Segment(wall(3.2, io_s=3.2), python_holds_gil=True)
    pooled = dataclasses.replace(MEASURED, pooled=True, fork_start_s=0.004, pool_fixed_s=0.02)
    p = got(predict(inputs(waits, capacity=pooled, concurrency=16)), "multiprocessing")
    start = [f for f in p.basis if isinstance(f, ev.WorkersStart)][0]
    assert start.workers == 16 and start.pooled and start.pool_s == 0.02
    assert start.mid_s == pytest.approx(16 * 0.004 + 0.02)  # forked in turn, one pool
    bare = got(predict(inputs(waits, concurrency=16)), "multiprocessing")
    assert p.speedup < bare.speedup  # 84 ms of pool against 16 bare forks' 48


# -- the machine ---------------------------------------------------------------------------

def test_without_a_calibration_the_machine_is_assumed_and_the_range_says_so() -> None:
    assumed = capacity_of(None, 2.0)
    assert not assumed.measured
    assert assumed.process_gain.low == 1.5 and assumed.process_gain.high == 2.0
    seg = Segment(wall(4.0, computing_s=4.0), python_holds_gil=True)
    mp = got(predict(inputs(seg, capacity=assumed)), "multiprocessing")
    measured = got(predict(inputs(seg)), "multiprocessing")
    assert mp.high - mp.low > measured.high - measured.low


def calibration(**changes: object) -> Calibration:
    base = Calibration(
        taken_at=0.0, wall_s=0.15, cpu_s=0.16, budget_cpu_s=0.2, processes=2, rounds=3,
        slice_cpu_s=0.015, process_speedup=1.8, process_speedup_low=1.6,
        process_speedup_high=1.9, process_cpu_inflation=1.0, iterations_per_s=1e7,
        gil_switch_interval_s=0.005, gil_handoffs=10, gil_handoff_s=0.0002,
        gil_handoff_cost=0.04, gil_handoff_cost_low=0.02, gil_handoff_cost_high=0.06,
        worker_start_fork_s=0.003, worker_start_spawn_s=0.06, interpreter_start_s=0.04,
        thread_start_s=0.0003, others_busy_cores=0.0, method="test")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_a_calibration_is_the_machine_never_more_than_k_cores_and_scaled_to_the_usable() -> None:
    c = capacity_of(calibration(process_speedup_high=2.7), 2.0)
    assert c.measured and c.process_gain.high == 2.0 and c.process_gain.mid == 1.8
    one = capacity_of(calibration(), 1.0)  # the program may use one core of the two
    assert one.processes == 1 and one.gain(1) == 1.0


def test_calibrations_together_average_a_flipping_pace_and_keep_every_rounds_range() -> None:
    # A host whose one process alone flips between 16 and 9 M iterations/s while two together
    # stay at 18 M: snapshots read 1.1x or 2.0x; a run of seconds gets the average pace.
    fast = calibration(iterations_per_s=16e6, process_speedup=1.125, process_speedup_low=1.1,
                       process_speedup_high=1.2, gil_handoff_cost=0.02)
    slow = calibration(iterations_per_s=9e6, process_speedup=2.0, process_speedup_low=1.9,
                       process_speedup_high=2.05, gil_handoff_cost=0.06)
    m = machine([fast, slow, slow, fast])
    assert m is not None and m.count == 4
    cal = m.calibration
    assert cal.iterations_per_s == pytest.approx(12.5e6)
    assert cal.process_speedup == pytest.approx(18e6 / 12.5e6)  # not a median's 1.125 or 2.0
    # the range: the middle half of what the calibrations gave, not one round's extremes
    assert (cal.process_speedup_low, cal.process_speedup_high) == (1.125, 2.0)
    wide = machine([fast, slow, slow, fast, calibration(process_speedup=1.0,
                                                        process_speedup_low=0.9)])
    assert wide is not None and wide.calibration.process_speedup_low == 1.125
    assert cal.gil_handoff_cost == pytest.approx(0.04) and cal.rounds == 12
    c = capacity_of(m, 2.0)
    assert c.calibrations == 4 and c.process_gain.mid == pytest.approx(1.44)
    assert "4 calibrations together" in say(ev.MachineBasis(c, 16, False, False, False))
    # one calibration stands for itself; other k's give way to the most common one
    assert machine([fast]) == Machine(fast, 1)
    assert machine([fast, slow, calibration(processes=4)]).count == 2
    assert machine([]) is None


# -- the advice ---------------------------------------------------------------------------

def prediction(model: str, low: float, mid: float, high: float) -> Prediction:
    return Prediction(model, mid, low, high, 2, ())


SITUATION = ev.OneAtATime(False, 1.0, ev.Cores(2, 2.0, None))


def test_the_advice_is_the_best_median_among_models_whose_low_end_beats_the_margin() -> None:
    p = {"multiprocessing": prediction("multiprocessing", 1.5, 1.8, 1.9),
         "threading": prediction("threading", 0.9, 1.0, 1.0),
         "asyncio": prediction("asyncio", 1.0, 1.0, 1.0)}
    a = choose(p, [], SITUATION)
    assert a.advice == "multiprocessing" and a.gain is p["multiprocessing"]
    # a higher median whose low end does not hold the margin is not advised
    p["threading"] = prediction("threading", 1.05, 2.5, 3.0)
    assert choose(p, [], SITUATION).advice == "multiprocessing"
    assert contradictions("multiprocessing", p) == []


def test_keep_when_nothing_beats_the_margin_and_it_says_the_best() -> None:
    p = {m: prediction(m, 0.95, 1.05, 1.2) for m in MODELS}
    a = choose(p, [], SITUATION)
    assert a.advice == "keep"
    best = [f for f in a.why if isinstance(f, ev.NoModelGains)][0]
    assert best.best is not None and best.margin == ADVICE_MARGIN


def test_alike_predictions_go_to_the_smaller_change() -> None:
    p = {m: prediction(m, 2.0, 3.0, 3.1) for m in MODELS}
    assert choose(p, [], SITUATION).advice == "threading"
    # alike: within a difference the user would not notice (the advice's own margin), not
    # only equal to the hundredth: processes 1% ahead of threads are no reason for processes
    q = {"multiprocessing": prediction("multiprocessing", 4.81, 5.14, 5.18),
         "threading": prediction("threading", 4.7, 5.10, 5.2),
         "asyncio": prediction("asyncio", 4.7, 4.9, 5.2)}
    a = choose(q, [], SITUATION)
    assert a.advice == "threading" and a.gain is q["threading"]
    # processes are a smaller change than asyncio (a pool's other kind, against every
    # blocking call rewritten): GIL-bound threads alike on one thread and in two processes
    r = {"multiprocessing": prediction("multiprocessing", 1.5, 1.8, 2.4),
         "threading": prediction("threading", 1.0, 1.0, 1.0),
         "asyncio": prediction("asyncio", 1.48, 1.68, 1.91)}
    assert choose(r, [], SITUATION).advice == "multiprocessing"
    # a difference beyond the margin still goes to the faster model
    q["multiprocessing"] = prediction("multiprocessing", 5.0, 5.10 * ADVICE_MARGIN + 0.01, 6.0)
    assert choose(q, [], SITUATION).advice == "multiprocessing"
    fix = Fix("unblock-loop", ev.BlockingCoroutines(("urlopen",)), p["asyncio"],
              replaces="asyncio")
    assert choose(p, [fix], SITUATION).advice == "unblock-loop"


def test_a_fix_replaces_the_model_it_is_and_one_without_a_gain_comes_before_keep() -> None:
    p = {m: prediction(m, 0.9, 1.0, 1.05) for m in MODELS}
    lock = Fix("shorter-lock", ev.LockHeldWhileWorking(3))
    assert choose(p, [lock], SITUATION).advice == "shorter-lock"
    p["asyncio"] = prediction("asyncio", 3.0, 4.0, 4.0)
    loop = Fix("unblock-loop", ev.BlockingCoroutines(("urlopen",)), p["asyncio"],
               replaces="asyncio")
    a = choose(p, [loop], SITUATION)
    assert a.advice == "unblock-loop" and a.gain is p["asyncio"]


def test_unknown_when_the_evidence_cannot_carry_a_prediction() -> None:
    a = choose({}, [], SITUATION, unknown="the run lasted 2 sampling rounds")
    assert a.advice == "unknown" and isinstance(a.why[0], ev.CannotPredict)


def test_contradictions_are_found_where_they_would_be() -> None:
    p = {"multiprocessing": prediction("multiprocessing", 1.3, 1.6, 1.8),
         "threading": prediction("threading", 0.7, 0.8, 0.9)}
    assert contradictions("keep", p)          # keep beside a 1.3x low end
    assert contradictions("threading", p)     # a model advised whose high end is below 1
    assert not contradictions("multiprocessing", p)


def test_the_programs_own_concurrency_or_the_assumption() -> None:
    assert io_concurrency_of(10.0, 2.0, None, 2.0) == (10, True)
    assert io_concurrency_of(1.0, 2.0, None, 2.0) == (6, False)   # min(32, cores + 4)
    assert io_concurrency_of(1.0, 2.0, 50, 2.0) == (50, True)     # --io-concurrency


# -- the demo's predicted column ----------------------------------------------------------

def test_the_predicted_speed_up_is_said_as_the_measured_one_a_ratio_of_median_walls() -> None:
    """The demo's five CPU recordings of a quiet run (commit 6f49f27): the host ran the
    sequential job at one of two paces, and each recording predicted threads for its own.
    The measured speed-up is the median sequential wall over the median threads' wall; the
    predicted one is the same statistic over the walls the recordings predict (0.70x, the
    threads measured 0.74x), not the median of the ratios (0.90x)."""
    from pathlib import Path

    from inspector.analyze.comparison import RunFacts, compare
    from inspector.analyze.model import Verdict

    verdict = Verdict("cpu", False, False, False, "keep", ())

    def run(variant: str, wall_s: float, threads: float | None = None) -> RunFacts:
        predicted = {} if threads is None else {
            "threading": Prediction("threading", threads, threads * 0.9, threads, 2, ())}
        return RunFacts(f"cpu {variant}", Path(f"{variant}-{wall_s}.sqlite"), [], "cpu",
                        variant, wall_s, wall_s, 100.0, 1, 1, 0, 0, verdict,
                        predicted=predicted)

    walls, said = [5.478, 4.975, 3.498, 3.094, 3.492], [1.0, 1.0, 0.9, 0.6, 0.7]
    sequential = [run("sequential", w, p) for w, p in zip(walls, said)]
    threads = [run("threading", w) for w in (4.748, 5.026, 5.105, 4.662, 4.62)]
    _, row = compare([sequential, threads])
    assert row.speedup == pytest.approx(3.498 / 4.748)
    assert row.predicted_speedup == pytest.approx(3.498 / 4.99, rel=0.01)
    assert row.predicted_low == pytest.approx(0.54) and row.predicted_high == 1.0
