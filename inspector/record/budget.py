"""The CPU budget of the stack runs: py-spy's measured cost per thread sample, and the rate
that keeps the recorder and its py-spy runs within STACKS_BUDGET_CORES on average since the
recording began, measured as it goes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from inspector.record.pyspy import PY_SPY_STARTUP_S

if TYPE_CHECKING:
    from inspector.record.processes import ProcInfo

GIL_RATE_HZ = 20  # the GIL runs count holders per second: 20 samples give its share in 5% steps
# The recorder and everything it starts use at most this share of one core, on average over
# the recording so far: the py-spy runs get what the recorder's own sampling leaves, and
# their rate follows. py-spy reads every thread's stack at every sample, waiting
# or not, mostly in system calls: 35-48 us each on a quiet machine (benchmarks/RESULTS.md),
# about 100 us on a busy one, so at 100 Hz fifty waiting threads would cost it half a core.
# Counting from the start, launches included, is what keeps a short recording within it too
# (measured per run alone, the 1-s and 2-s first runs' start-ups took a 4-s recording of one
# thread to 3.6% for py-spy and 5-7% in all). A few threads keep the asked rate; fifty get
# 5-15 Hz; hundreds 1-3 Hz.
STACKS_BUDGET_CORES = 0.045  # 5%, less a margin for what a launch or a busy machine adds unforeseen
# Before a process's first run has been measured: py-spy's CPU per thread sample (35-48 us in
# RESULTS.md, 61-73 us measured again on 2026-11-30) and per sample of the process (a guess;
# the first run corrects both).
PRIOR_THREAD_SAMPLE_S = 60e-6
PRIOR_TREE_SAMPLE_S = 50e-6
PY_SPY_LAUNCH_CPU_S = 0.02  # a run's start-up CPU, not counted in its cost per sample
# A run's CPU teaches the cost per thread sample once it took this many (fewer: launch and
# tick noise), and the lesson is kept within these bounds (measured 2026-11-30: 61-73 us for
# 51 waiting threads at 10-100 Hz, with the launch, 10-20 ms, apart).
MIN_LEARN_SAMPLES = 500
MIN_THREAD_SAMPLE_S = 10e-6
MAX_THREAD_SAMPLE_S = 2e-3
# py-spy's sampling gets at least this much whatever the recorder has used: its own start-up
# (identifying interpreters, reading pthread ids on Python < 3.11) took 0.06 s of CPU in the
# first 0.3 s of a recording of a 3.9 target, and charging that to py-spy left the 5 threads
# of that short recording sampled at 1 Hz. A short recording may then exceed the budget.
STACKS_FLOOR_CORES = 0.015
# The recorder's own CPU (its /proc sampling, writing, reading py-spy's output) before a
# second of it has been measured: 1-3% of a core, with a few to 64 threads.
OWN_PRIOR_CORES = 0.015
OWN_MEASURED_AFTER_S = 1.0
MIN_RATE_HZ = 1
GIL_THREAD_SAMPLES_PER_S = 1000  # the opt-in --gil chain's budget in thread samples per second
# The rates a tree is sampled at, highest first: a measured cost moves the rate between
# a few steps, not to a new value every run (each lowered rate is a problem row, once).
RATE_STEPS_HZ = (1000, 500, 200, 100, 50, 40, 30, 20, 15, 10, 7, 5, 3, 2, 1)
COST_CHECK_AFTER_S = 1.5  # a run's CPU is checked mid-run once past its start-up


def _rounded_rate(rate: float) -> int:
    """The highest step at or below `rate` (at least MIN_RATE_HZ)."""
    return next((r for r in RATE_STEPS_HZ if r <= rate), MIN_RATE_HZ)


def gil_rate_hz(asked_hz: int, threads: int) -> int:
    """The --gil chain's rate for a tree of `threads` threads."""
    return max(MIN_RATE_HZ, min(asked_hz, GIL_THREAD_SAMPLES_PER_S // threads))


class RateBudget:
    """What py-spy's sampling costs each process, as its runs measure it, and the rate the
    budget allows for it."""

    def __init__(self, asked_hz: int, budget_cores: float,
                 cpu_so_far: Callable[[], tuple[float, float, float] | None]) -> None:
        self.asked_hz = asked_hz
        self.budget_cores = budget_cores
        # (seconds, own CPU s, py-spy runs' CPU s) since the recorder's first tick
        self._cpu_so_far = cpu_so_far
        # py-spy's CPU per thread sample, by root proc_id, as its last finished run measured
        self._thread_sample_cost_s: dict[int, float] = {}

    def rate_for(self, sampled: Iterable[ProcInfo], horizon_s: float = 1.0,
                 launches: int = 0) -> int:
        """The stack runs' rate for the next `horizon_s`, one for every `sampled` process:
        the asked one, or lower so that the recorder and its py-spy runs (`launches` of them
        about to start) stay within the budget on average since the recording began, at the
        cost per sample each process's last run measured (a prior before its first)."""
        per_second = sum(self.cost_at_1hz(p) for p in sampled)
        if per_second <= 0:
            return self.asked_hz
        within = self.allowance_cores(horizon_s, launches) / per_second
        return (self.asked_hz if within >= self.asked_hz
                else min(self.asked_hz, _rounded_rate(within)))

    def cost_at_1hz(self, p: ProcInfo) -> float:
        """py-spy's CPU per second sampling this process at 1 Hz."""
        per_thread = self._thread_sample_cost_s.get(p.proc_id)
        threads = max(1, p.threads)
        return (per_thread * threads if per_thread is not None
                else PRIOR_TREE_SAMPLE_S + PRIOR_THREAD_SAMPLE_S * threads)

    def allowance_cores(self, horizon_s: float, launches: int) -> float:
        """What py-spy's sampling may use, in cores, over the next `horizon_s`: the budget
        over the recording so far and that horizon, less what the recorder and its runs
        have used, the recorder's own use to come (at its rate so far) and the launches."""
        so_far = self._cpu_so_far()
        elapsed, own_s, helpers_s = so_far if so_far is not None else (0.0, 0.0, 0.0)
        own_cores = own_s / elapsed if elapsed >= OWN_MEASURED_AFTER_S else OWN_PRIOR_CORES
        left = (self.budget_cores * (elapsed + horizon_s) - own_s - helpers_s
                - own_cores * horizon_s - launches * PY_SPY_LAUNCH_CPU_S)
        return max(left / horizon_s, STACKS_FLOOR_CORES)

    def worth_cutting(self, p: ProcInfo, run_rate: int, remaining_s: float,
                      sampled: Iterable[ProcInfo]) -> bool:
        """Whether a run of `p` at `run_rate` with `remaining_s` to go should end now so the
        next one starts at the lower rate the budget allows (its process grew threads, or
        py-spy costs more than thought): when what the rest of it would save is more than a
        launch costs (cutting brings the next launch forward: at most one more). Cutting on
        any excess, seen on 64 threads: six runs launched in 0.3 s, each cut for the launch
        cost of the one before."""
        rate = self.rate_for(sampled, max(remaining_s, 1.0))
        return (run_rate - rate) * self.cost_at_1hz(p) * remaining_s > PY_SPY_LAUNCH_CPU_S

    def learn(self, proc_id: int, threads: int, rate: int, cpu_s: float,
              elapsed_s: float) -> None:
        """py-spy's CPU per thread sample, from a run's CPU past its launch. A run of few
        samples says little (its CPU is counted in 10-ms ticks, its launch varies by as
        much): the estimate before it stands. Seen without this: a 2-s run at 1 Hz on 64
        threads measured ~0 per sample, and the next run went back to 100 Hz."""
        samples = rate * max(elapsed_s - PY_SPY_STARTUP_S, 0.1) * threads
        if samples < MIN_LEARN_SAMPLES:
            return
        self._thread_sample_cost_s[proc_id] = min(max(cpu_s / samples, MIN_THREAD_SAMPLE_S),
                                                  MAX_THREAD_SAMPLE_S)
