"""`inspector try`: real programs re-run with their pools swapped by the hook, the speed-up
measured on unrecorded interleaved runs and held to issue 22's test (within 30% of the
predicted speed-up); the swaps that cannot work refused in one line; a library's pool and the
user's own sitecustomize left as they were."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from machine import for_the_recording

from inspector.machine_load import BUSY_SHARE
from inspector.text.trial import TRIAL_TEXT, check_sentence
from inspector.trial.launch import python_flag_refusal
from inspector.trial.outcome import PREDICTION_TOLERANCE, Predicted, Timing, TrialResult
from inspector.trial.runner import first_difference

# Each runs `inspector try` at raised priority, most measure its speed-ups: nothing else runs
# beside them (tests/turns.py).
pytestmark = pytest.mark.alone

PY = sys.executable
WORKLOADS = Path(__file__).resolve().parent / "workloads"
REPEAT = "2"  # unrecorded runs of each side: 6 runs of each program in all


def run_try(*args: str, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    # at raised priority in a session of its own, as recordings that need the CPU run
    # (tests/machine.py): a busy neighbour then takes ~1% of a core from its runs, not half
    return subprocess.run([PY, "-m", "inspector", "try", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, preexec_fn=for_the_recording())


def trial(out: Path, workload: str, model: str, repeat: str = REPEAT,
          env: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    proc = run_try("--json", "-n", repeat, "--to", model, "-o", str(out), "--", PY,
                   str(WORKLOADS / workload), env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def busy_runs(result: dict[str, Any]) -> int:
    """The runs during which other programs took more than BUSY_SHARE of the machine, as the
    result flags them (checked against the loads it gives)."""
    busy = 0
    for side in ("original", "swapped"):
        loads = result[side]["foreign_load"]
        assert len(loads) == len(result[side]["runs_s"])
        assert result[side]["busy_runs"] == sum(x > BUSY_SHARE for x in loads)
        busy += result[side]["busy_runs"]
    return busy


def assert_near_prediction(result: dict[str, Any], tmp_path: Path, workload: str, model: str
                           ) -> None:
    """Issue 22's test: the measured speed-up (median of the unrecorded runs) within 30% of
    the predicted one; a larger miss fails, whatever the output says. Judged on runs the
    machine left alone: while others' programs took the cores (runs flagged busy), the
    measured speed-up is theirs as much as the program's, and the trial runs once more; busy
    again, what holds is that it says so (the flags, checked above)."""
    if busy_runs(result):
        result, _ = trial(tmp_path / "again", workload, model)
        if busy_runs(result):
            return
    measured, predicted = result["measured"], result["predicted"]
    assert predicted["speedup"] is not None, predicted
    off = measured["speedup"] / predicted["speedup"] - 1
    assert abs(off) <= PREDICTION_TOLERANCE, (
        f"measured {measured['speedup']}x ({measured['low']}-{measured['high']}), predicted "
        f"{predicted['speedup']}x ({predicted['low']}-{predicted['high']}): {off:+.0%}; "
        f"original {result['original']['runs_s']} s, swapped {result['swapped']['runs_s']} s")
    assert result["check"]["verdict"] in ("in_range", "near")


def assert_one_swap(result: dict[str, Any], was: str, now: str, workload: str,
                    workers: int) -> None:
    assert [(s["from"], s["to"], s["workers"]) for s in result["swaps"]] == [(was, now, workers)]
    assert result["swaps"][0]["site"].split(":")[0].endswith(workload)


def assert_reported(result: dict[str, Any], out: Path) -> None:
    """One recorded run of each side, the comparison page and try.json beside them."""
    for key in ("original", "swapped"):
        assert Path(result["recordings"][key]).stat().st_size > 0
    assert Path(result["page"]).read_text(encoding="utf-8").count("swapped to") >= 1
    assert json.loads((out / "try.json").read_text())["measured"] == result["measured"]


# -- the four kinds of pool -----------------------------------------------------------------

def test_thread_pool_of_python_sums_swapped_to_processes(tmp_path: Path) -> None:
    result, said = trial(tmp_path / "out", "try_thread_pool_cpu.py", "multiprocessing")
    assert "will run up to 6 times, side effects and all" in said
    assert_one_swap(result, "ThreadPoolExecutor", "ProcessPoolExecutor",
                    "try_thread_pool_cpu.py", 2)
    assert len(result["original"]["runs_s"]) == len(result["swapped"]["runs_s"]) == 2
    assert_reported(result, tmp_path / "out")
    assert_near_prediction(result, tmp_path, "try_thread_pool_cpu.py", "multiprocessing")


def test_process_pool_of_waits_swapped_to_threads(tmp_path: Path) -> None:
    result, _ = trial(tmp_path / "out", "try_process_pool_waits.py", "threading")
    assert_one_swap(result, "ProcessPoolExecutor", "ThreadPoolExecutor",
                    "try_process_pool_waits.py", 4)
    assert_near_prediction(result, tmp_path, "try_process_pool_waits.py", "threading")


def test_multiprocessing_thread_pool_swapped_to_pool(tmp_path: Path) -> None:
    result, _ = trial(tmp_path / "out", "try_mp_thread_pool_cpu.py", "multiprocessing")
    assert_one_swap(result, "multiprocessing.pool.ThreadPool", "multiprocessing.pool.Pool",
                    "try_mp_thread_pool_cpu.py", 2)
    assert_near_prediction(result, tmp_path, "try_mp_thread_pool_cpu.py", "multiprocessing")


def test_joblib_threads_swapped_to_loky(tmp_path: Path) -> None:
    result, _ = trial(tmp_path / "out", "try_joblib_threads_cpu.py", "multiprocessing")
    assert_one_swap(result, "joblib threading backend", "joblib loky backend",
                    "try_joblib_threads_cpu.py", 2)
    assert_near_prediction(result, tmp_path, "try_joblib_threads_cpu.py", "multiprocessing")


# -- what is left alone ---------------------------------------------------------------------

def test_a_library_pool_and_the_users_sitecustomize_are_left_as_they_were(tmp_path: Path
                                                                           ) -> None:
    site_packages = tmp_path / "lib" / "site-packages"
    site_packages.mkdir(parents=True)
    shutil.copy(WORKLOADS / "try_fake_library.py", site_packages / "fakelib_pools.py")
    user_site = tmp_path / "user"
    user_site.mkdir()
    marks = tmp_path / "marks"
    (user_site / "sitecustomize.py").write_text(
        "import builtins, os\n"
        "builtins.TRY_SITECUSTOMIZE = 'ran'\n"
        "if os.environ.get('INSPECTOR_TRY_TO'):  # a swapped run's process\n"
        f"    with open({str(marks)!r}, 'a') as f:\n"
        "        f.write(os.environ['INSPECTOR_TRY_TO'] + '\\n')\n")
    env = {**os.environ, "PYTHONPATH": f"{user_site}{os.pathsep}{site_packages}"}
    result, _ = trial(tmp_path / "out", "try_library_pool.py", "multiprocessing", repeat="1",
                      env=env)
    # The program's own pool swapped; the library's (mapping a lambda: no process could
    # have taken it) left alone, so the run counted.
    assert_one_swap(result, "ThreadPoolExecutor", "ProcessPoolExecutor",
                    "try_library_pool.py", 2)
    library = site_packages / "fakelib_pools.py"
    line = library.read_text().splitlines().index(
        "    with ThreadPoolExecutor(2) as pool:") + 1
    assert result["left_alone"] == [f"ThreadPoolExecutor at {library}:{line} (made by a library)"]
    # The user's sitecustomize ran in both swapped runs (the unrecorded and the recorded
    # one), after the hook: the program printed what it set, as the original did.
    assert marks.read_text().split() == ["processes", "processes"]


def test_the_advice_to_keep_the_model_is_an_answer_not_an_error(tmp_path: Path) -> None:
    proc = run_try("-o", str(tmp_path / "out"), "--", PY, "-c",
                   "import time; time.sleep(0.8); print('slept')")
    assert proc.returncode == 0, proc.stderr
    assert "nothing to try" in proc.stderr.splitlines()[-1]
    assert (tmp_path / "out" / "original.sqlite").exists()
    assert not (tmp_path / "out" / "try.json").exists()


# -- refusals: one line, a non-zero exit, no traceback, nothing claimed ----------------------

def assert_refused(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    last = proc.stderr.splitlines()[-1]
    assert last.startswith("inspector: try: ")
    for fragment in fragments:
        assert fragment in last
    return last


@pytest.mark.parametrize("workload, model, said", [
    ("try_refuse_lambda.py", "multiprocessing", "the function <lambda> cannot be pickled"),
    ("try_refuse_no_guard.py", "multiprocessing",
     'outside `if __name__ == "__main__":`; spawn workers'),
    ("try_refuse_lock.py", "multiprocessing", "the workers are handed a threading.Lock"),
    ("try_refuse_shared_list.py", "multiprocessing",
     "the swapped run printed another standard output (line 1: '100 results, sum 328350' "
     "became '0 results, sum 0')"),
    ("try_refuse_worker_global.py", "threading",
     "tally assigns the module global calls, which each worker process had to itself"),
])
def test_a_swap_that_cannot_work_is_refused_in_one_line(tmp_path: Path, workload: str,
                                                        model: str, said: str) -> None:
    proc = run_try("-n", "1", "--to", model, "-o", str(tmp_path / "out"), "--",
                   PY, str(WORKLOADS / workload))
    assert_refused(proc, said, "nothing is claimed")
    assert not (tmp_path / "out" / "try.json").exists()


def test_python_isolated_mode_is_refused_before_any_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    proc = run_try("-o", str(tmp_path / "out"), "--", PY, "-I", "-c",
                   f"open({str(marker)!r}, 'w')")
    assert_refused(proc, "runs Python with -I (isolated mode)")
    assert not marker.exists()


def test_the_options_that_keep_the_hook_out_are_found(tmp_path: Path) -> None:
    assert python_flag_refusal([PY, "-IS", "x.py"])
    assert python_flag_refusal(["python3", "-X", "dev", "-E", "x.py"])
    assert python_flag_refusal([PY, "-u", "-W", "ignore", "x.py"]) is None
    assert python_flag_refusal([PY, "-c", "pass", "-I"]) is None  # the program's argument
    assert python_flag_refusal([PY, "-m", "pkg", "-E"]) is None
    assert python_flag_refusal(["sh", "-c", "python -I x.py"]) is None  # told by the hook
    script = tmp_path / "tool"
    script.write_text(f"#!{PY} -I\nprint('hi')\n")
    script.chmod(0o755)
    assert python_flag_refusal([str(script)])
    script.write_text("#!/usr/bin/env -S python3 -E\nprint('hi')\n")
    assert python_flag_refusal([str(script)])


def test_first_difference_names_the_line() -> None:
    assert first_difference("a\nb\n", "a\nb\n") is None
    assert first_difference("a\nb\n", "a\nc\n") == "line 2: 'b' became 'c'"
    assert first_difference("a\n", "a\nb\n") == "1 line became 2, from line 2: 'b'"


def test_the_check_reads_the_measured_speedup_against_the_prediction(tmp_path: Path) -> None:
    def result(original: tuple[float, ...], swapped: tuple[float, ...],
               predicted: Predicted | None) -> TrialResult:
        return TrialResult(command=("x",), advice="multiprocessing", model="multiprocessing",
                           swaps=(), left=(), original=Timing(original),
                           swapped=Timing(swapped), predicted=predicted,
                           no_prediction=None if predicted else "none",
                           recordings=(tmp_path / "a", tmp_path / "b"))

    p = Predicted(speedup=1.8, low=1.5, high=1.9, basis="")
    inside = result((2.0, 2.1, 2.2), (1.1, 1.2, 1.3), p)  # 2.1 / 1.2 = 1.75x
    assert (round(inside.speedup, 2), inside.check.verdict) == (1.75, "in_range")
    assert (round(inside.speedup_low, 2), round(inside.speedup_high, 2)) == (1.54, 2.0)
    near = result((2.0,), (1.5,), p)  # 1.33x: 26% below 1.8x
    assert near.check.verdict == "near" and "26% below" in check_sentence(near.check)
    missed = result((2.0,), (2.0,), p)  # 1.0x: 44% below
    assert missed.check.verdict == "missed" and "44% below" in check_sentence(missed.check)
    assert "1.00x measured" in TRIAL_TEXT.lines(missed)[-1]
    assert result((2.0,), (1.0,), None).check.verdict == "no_prediction"
