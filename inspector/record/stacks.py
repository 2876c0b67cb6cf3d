"""Python stacks from py-spy: one chain of runs (record/runs) kept going on every Python
process, all at one rate within the CPU budget (record/budget), each finished run's output
read (record/pyspy_output) and handed to the sampler's thread to write (record/stack_rows).

Each run's spans are put on the recording's clock (py-spy's ts 0 is within a few ms of our
launch) and written as soon as the run ends. Nonblocking mode keeps the target's slowdown
within noise at any thread count (shared/MEASUREMENTS.md); blocking mode cost up to 1.57x
with many waiting threads. On Python < 3.11 it names threads by pthread id, turned into OS
thread ids by record/pthreads.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

from inspector.record import procfs
from inspector.record.budget import (
    COST_CHECK_AFTER_S,
    GIL_RATE_HZ,
    PY_SPY_LAUNCH_CPU_S,
    STACKS_BUDGET_CORES,
    RateBudget,
    gil_rate_hz,
)
from inspector.record.output import PYSPY_TEMP_PREFIX
from inspector.record.processes import ProcInfo
from inspector.record.pthreads import PthreadTids
from inspector.record.pyspy import PY_SPY_STARTUP_S, may_trace, names_pthreads
from inspector.record.pyspy_output import TidOf, parse_chrometrace, parse_gil_counts
from inspector.record.runs import (
    CHUNK_S,
    MAX_ATTACH_TRIES,
    OVERLAP_S,
    RUN_LENGTHS_S,
    PySpyRun,
    RunChain,
)
from inspector.record.sampler import Sampler
from inspector.record.stack_rows import StackRows

MAX_RATE_CHANGES = 200  # meta stacks.rates_hz_used keeps at most this many changes
# The runs are looked after this often: well within OVERLAP_S, so the next run starts before
# the current one ends (at 0.02 s, the look-ups alone took ~0.5% of a core).
LOOP_S = 0.04


class StackSampler:
    """Keeps one py-spy run going on every Python process, all at one rate within budget."""

    def __init__(self, sampler: Sampler, exe: str, rate: int, quiet: bool,
                 ignore_pids: set[int], gil_check: bool = False,
                 budget_cores: float = STACKS_BUDGET_CORES) -> None:
        self.sampler = sampler
        self.gil_check = gil_check  # the py-spy --gil cross-check chain (opt-in)
        self.budget = RateBudget(rate, budget_cores, sampler.recorder_cpu_so_far)
        self.ignore_pids = ignore_pids  # py-spy runs are ours, not the target's
        self.exe = exe
        self.rate = rate
        self.quiet = quiet
        # 0700; named by our pid, so a later run removes it if we are killed (it holds
        # command lines): output.clean_stale_temp_folders
        self.out_dir = tempfile.mkdtemp(prefix=f"{PYSPY_TEMP_PREFIX}{os.getpid()}-")
        self.runs: dict[int, list[PySpyRun]] = {}  # by root proc_id, in launch order
        self.gil_runs: dict[int, PySpyRun] = {}  # by root proc_id: one --gil run at a time
        self.gil_rate = min(rate, GIL_RATE_HZ)
        self.lowest_rate_hz: int | None = None  # of the stack runs so far (meta rate_hz_used)
        # (t_s, pid, rate) each time a tree's rate changed: meta stacks.rates_hz_used
        self.rate_changes: list[tuple[float, int, int]] = []
        self._last_rate: dict[int, int] = {}  # by root proc_id
        self._launches: dict[int, int] = {}  # stack runs launched, by root proc_id
        self.py_spy_cpu_s = 0.0  # all finished stack runs together
        self.stacks_chain = RunChain("stacks")
        self.gil_chain = RunChain("--gil")
        self.rows = StackRows(sampler)
        # Python < 3.11: py-spy names pthread ids
        self.pthread_tids = PthreadTids(
            on_skip=lambda pid, why: sampler.problem("py-spy", "c-library", why, pid=pid))
        self._scanned_threads: dict[int, int] = {}  # proc_id -> its thread count then
        self.permission_denied = False
        self.failed: str | None = None  # why the stacks stopped early (an unexpected error)
        self.runs_done = 0
        self.spans_written = 0
        self._seq = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="inspector-stacks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        shutil.rmtree(self.out_dir, ignore_errors=True)

    # -- loop ------------------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            self._sample_until_stopped()
        except Exception as e:  # a py-spy output or a case we do not know: see _give_up
            self._give_up(e)

    def _give_up(self, error: Exception) -> None:
        """An unexpected error ends the stacks, never the recording: said in a problem row
        and, at the end, a warning; the py-spy runs are ended and /proc sampling goes on."""
        self.failed = f"{type(error).__name__}: {error}"
        self.sampler.problem("py-spy", "stacks-stopped",
                             f"Python stacks stopped at {self.sampler.now_s():.1f} s by an "
                             f"unexpected error: {self.failed}")
        for run in [*(r for runs in self.runs.values() for r in runs), *self.gil_runs.values()]:
            run.kill()
            run.remove_files()
        self.runs.clear()
        self.gil_runs.clear()

    def _sample_until_stopped(self) -> None:
        while not self._stop.is_set():
            self._scan_pthreads()
            self._reap()
            self._launch()
            self._stop.wait(LOOP_S)
        for runs in self.runs.values():
            for run in runs:
                run.stop()
        for run in self.gil_runs.values():
            run.stop()
        for proc_id, runs in list(self.runs.items()):
            for run in runs:
                code = run.wait(5.0)
                if code is None:
                    run.kill()
                self._ingest(proc_id, run, code)
        self.runs.clear()
        for proc_id, run in list(self.gil_runs.items()):
            code = run.wait(5.0)
            run.t_end_s = self.sampler.now_s()
            if code is None:
                run.kill()
            self._ingest_gil(proc_id, run, code)
        self.gil_runs.clear()

    def _tid_of_for_one_run(self) -> TidOf:
        """pthread id -> tid, read once per thread of one run's output (not per sample)."""
        return functools.lru_cache(maxsize=None)(self.pthread_tids.tid_of)

    def _scan_pthreads(self) -> None:
        """On Python < 3.11, learns each thread's pthread id while it lives: a thread that
        ends during a py-spy run could not be named when the run's output is read."""
        for p in self.sampler.snapshot:
            if (p.alive and p.is_python and names_pthreads(p.python_version)
                    and self._scanned_threads.get(p.proc_id) != p.threads):
                self._scanned_threads[p.proc_id] = p.threads
                self.pthread_tids.scan(p.pid)

    def _roots(self, covered: set[int], chain: RunChain) -> list[ProcInfo]:
        """The Python processes with no ancestor that a run of this chain covers."""
        procs = {p.proc_id: p for p in self.sampler.snapshot}
        roots = []
        for p in procs.values():
            if not (p.alive and p.is_python) or p.proc_id in chain.gave_up:
                continue
            ancestor = p.parent_proc_id
            is_covered = False
            while ancestor is not None:
                if ancestor in covered:
                    is_covered = True
                    break
                ancestor = procs[ancestor].parent_proc_id if ancestor in procs else None
            if not is_covered:
                roots.append(p)
        return roots

    def _subtree(self, root_proc_id: int) -> list[ProcInfo]:
        """The live processes a `--subprocesses` run on this root samples."""
        procs = [p for p in self.sampler.snapshot if p.alive]
        children: dict[int | None, list[ProcInfo]] = {}
        for p in procs:
            children.setdefault(p.parent_proc_id, []).append(p)
        tree, todo = [], [p for p in procs if p.proc_id == root_proc_id]
        while todo:
            p = todo.pop()
            tree.append(p)
            todo.extend(children.get(p.proc_id, []))
        return tree

    def _tree_threads(self, root: ProcInfo) -> int:
        return max(1, sum(p.threads for p in self._subtree(root.proc_id)))

    def _sampled(self) -> list[ProcInfo]:
        """The Python processes the stack runs sample (each its own run)."""
        return [p for p in self.sampler.snapshot
                if p.alive and p.is_python and p.proc_id not in self.stacks_chain.gave_up]

    def _gil_rate_for(self, root: ProcInfo) -> int:
        return gil_rate_hz(self.gil_rate, self._tree_threads(root))

    def _sampled_threads(self) -> int:
        return sum(max(1, p.threads) for p in self._sampled())

    def _note_rate(self, root: ProcInfo, rate: int) -> None:
        self.lowest_rate_hz = min(rate, self.lowest_rate_hz or rate)
        if self._last_rate.get(root.proc_id) != rate:
            self._last_rate[root.proc_id] = rate
            if len(self.rate_changes) < MAX_RATE_CHANGES:
                self.rate_changes.append((round(self.sampler.now_s(), 3), root.pid, rate))
        if rate < self.rate:
            self.sampler.problem("py-spy", "rate-lowered",
                                 f"{self._sampled_threads()} threads: stacks sampled at "
                                 f"{rate} Hz instead of {self.rate} Hz to keep the recorder "
                                 f"within {self.budget.budget_cores:.1%} of a core", pid=root.pid,
                                 once_key=f"rate-{rate}")

    def _stop_if_too_fast(self, run: PySpyRun | None, rate: int) -> None:
        """A --gil run whose tree grew many threads: ended now (SIGINT, py-spy writes what
        it has) so the next one starts at a lower rate."""
        if run is None or run.stopping:
            return
        if run.rate > 2 * rate:
            run.stop()

    def _stop_if_over_budget(self, p: ProcInfo, run: PySpyRun, now: float) -> None:
        """A stack run whose rate the budget no longer allows: ended now (SIGINT: py-spy
        writes what it has) so the next one starts at a lower rate, if it is worth a launch
        (RateBudget.worth_cutting)."""
        if run.stopping:
            return
        remaining = run.t_launch_s + run.duration_s - now
        if remaining <= 0:
            return
        if self.budget.worth_cutting(p, run.rate, remaining, self._sampled()):
            run.stop()

    def _check_cost(self, root: ProcInfo, run: PySpyRun, now: float) -> None:
        """py-spy's CPU so far in a run, from /proc, once a second past its start-up: the
        cost is learnt, and a run costing well beyond the budget is cut short rather than
        kept for up to 30 s."""
        elapsed = now - run.t_launch_s
        if run.stopping or elapsed < COST_CHECK_AFTER_S or now - run.cost_checked_s < 1.0:
            return
        run.cost_checked_s = now
        try:
            cpu = procfs.parse_stat(procfs.read_text(f"/proc/{run.pid}/stat"))
        except (procfs.Gone, procfs.Unreadable, ValueError):
            return
        self._learn_cost(root.proc_id, run, cpu.utime_s + cpu.stime_s - PY_SPY_LAUNCH_CPU_S,
                         elapsed)

    def _learn_cost(self, proc_id: int, run: PySpyRun, cpu_s: float, elapsed_s: float) -> None:
        threads = max(1, next((p.threads for p in self.sampler.snapshot
                               if p.proc_id == proc_id), 1))
        self.budget.learn(proc_id, threads, run.rate, cpu_s, elapsed_s)

    def _launch(self) -> None:
        if self.permission_denied:
            return
        now = self.sampler.now_s()
        for p in self._sampled():
            runs = self.runs.get(p.proc_id, [])
            if runs:
                self._check_cost(p, runs[-1], now)
                self._stop_if_over_budget(p, runs[-1], now)
            gil_run = self.gil_runs.get(p.proc_id)
            if gil_run is not None:
                self._stop_if_too_fast(gil_run, self._gil_rate_for(p))
            # The next run starts OVERLAP_S before the current one ends, so the seams
            # (py-spy's start-up, 10-50 ms) are covered; _ingest trims the overlap.
            if runs and (len(runs) > 1 or (
                    not runs[-1].stopping
                    and now - runs[-1].t_launch_s < runs[-1].duration_s - OVERLAP_S)):
                continue
            if not runs and not self.stacks_chain.ready(p.proc_id, now):
                continue
            self._seq += 1
            n = self._launches[p.proc_id] = self._launches.get(p.proc_id, 0) + 1
            length = RUN_LENGTHS_S[min(n, len(RUN_LENGTHS_S)) - 1]
            rate = self.budget.rate_for(self._sampled(), length, launches=1)
            self._note_rate(p, rate)
            run_or_error = self._spawn(p.pid, rate, now, duration_s=length)
            if isinstance(run_or_error, OSError):
                self.sampler.problem("py-spy", "launch-failed", str(run_or_error), pid=p.pid,
                                     once_key="launch")
                self.stacks_chain.gave_up.add(p.proc_id)
                continue
            self.runs.setdefault(p.proc_id, []).append(run_or_error)
        if not self.gil_check:
            return
        # A --gil run ends before the next starts: between the two, the stacks runs (which
        # overlap) still say which processes a run on an ancestor covers.
        for p in self._roots(set(self.gil_runs) | set(self.runs), self.gil_chain):
            if p.proc_id in self.gil_runs or not self.gil_chain.ready(p.proc_id, now):
                continue
            self._seq += 1
            rate = self._gil_rate_for(p)
            run_or_error = self._spawn(p.pid, rate, now, gil=True)
            if isinstance(run_or_error, OSError):
                self.sampler.problem("py-spy", "launch-failed", f"--gil: {run_or_error}",
                                     pid=p.pid, once_key="launch-gil")
                self.gil_chain.gave_up.add(p.proc_id)
                continue
            self.gil_runs[p.proc_id] = run_or_error

    def _spawn(self, pid: int, rate: int, now: float, gil: bool = False,
               duration_s: int = CHUNK_S) -> PySpyRun | OSError:
        """Starts a py-spy run, known as ours before the sampler can see it: the sampler's
        orphan scan waits while a run is being started (between fork and the pid's entry
        in ignore_pids, a py-spy child of the recorder looks like a re-parented orphan)."""
        with self.sampler.spawning:
            try:
                run = PySpyRun(self.exe, pid, rate, self.out_dir, now, self._seq, gil=gil,
                               duration_s=duration_s)
            except OSError as e:
                return e
            self.ignore_pids.add(run.pid)
            return run

    def _reap(self) -> None:
        for proc_id, runs in list(self.runs.items()):
            # in launch order, so the overlap is trimmed from the later run
            while runs:
                code = runs[0].poll(self.sampler.now_s())
                if code is None:
                    break
                self._ingest(proc_id, runs.pop(0), code)
            if not runs:
                del self.runs[proc_id]
        for proc_id, run in list(self.gil_runs.items()):
            code = run.poll(self.sampler.now_s())
            if code is not None:
                del self.gil_runs[proc_id]
                self._ingest_gil(proc_id, run, code)

    def _ingest_gil(self, proc_id: int, run: PySpyRun, code: int | None) -> None:
        try:
            text = Path(run.out).read_text(errors="replace")
        except OSError:
            text = None
        if text is None:
            self._failed(proc_id, run, code, self.gil_chain)  # reads the log: keep it till then
        run.remove_files()
        if text is None:
            return
        self.gil_chain.succeeded(proc_id)
        end = run.t_end_s if run.t_end_s is not None else self.sampler.now_s()
        # py-spy takes its first sample 10-50 ms after it starts: count from then
        start = run.t_launch_s + PY_SPY_STARTUP_S
        counts = parse_gil_counts(text, self._tid_of_for_one_run())
        # Every Python process the run sampled gets a row, even if nobody held its GIL:
        # "held 0% of the time" must not look like "not sampled".
        pids = {c.pid for c in counts} | {p.pid for p in self._subtree(proc_id) if p.is_python}
        if pids and end > start:
            self.sampler.submit(functools.partial(
                self.rows.write_gil, t_s=start, duration_s=end - start, counts=counts,
                rate=run.rate, pids=pids))

    def _ingest(self, proc_id: int, run: PySpyRun, code: int | None) -> None:
        self.runs_done += 1
        if run.cpu_s is not None:
            self.py_spy_cpu_s += run.cpu_s
            end = run.t_end_s if run.t_end_s is not None else self.sampler.now_s()
            if end - run.t_launch_s >= 0.5:  # a run cut at once says little of its cost
                self._learn_cost(proc_id, run, run.cpu_s - PY_SPY_LAUNCH_CPU_S,
                                 end - run.t_launch_s)
        events = None
        try:
            with open(run.out, "rb") as f:
                events = json.load(f)
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as e:
            self.sampler.problem("py-spy", "bad-output", str(e), pid=run.root_pid)
        if events is None:
            self._failed(proc_id, run, code, self.stacks_chain)  # reads the log: keep it
        run.remove_files()
        if events is None:
            return
        self.stacks_chain.succeeded(proc_id)
        if isinstance(events, dict):
            events = events.get("traceEvents", [])
        spans = self.rows.trim(parse_chrometrace(events, run.t_launch_s,
                                                 tid_of=self._tid_of_for_one_run()))
        if spans:
            self.spans_written += len(spans)
            self.sampler.submit(functools.partial(self.rows.write, spans=spans, rate=run.rate,
                                                  t_launch_s=run.t_launch_s))

    def _failed(self, proc_id: int, run: PySpyRun, code: int | None, chain: RunChain) -> None:
        """A run that wrote nothing: its reason (py-spy's first line) becomes a problem of
        the process, once per reason; the chain retries after a pause, or gives up."""
        message = run.message()
        alive = any(p.proc_id == proc_id and p.alive for p in self.sampler.snapshot)
        lowered = message.lower()
        if ("permission" in lowered or "not permitted" in lowered
                or (alive and not may_trace(run.root_pid))):
            self.permission_denied = True  # the recorder warns once, at the end
            self.sampler.problem("py-spy", "permission", message, pid=run.root_pid,
                                 once_key="pyspy-permission")
            return
        if not alive:
            return  # the process ended before py-spy could read it: normal for short lives
        reason = run.first_line()
        if not reason and run.stopping:
            # we stopped it (the recording ended, or its tree grew threads and the next run
            # samples at a lower rate) before py-spy had written anything
            self.sampler.problem("py-spy", "run-failed", f"{chain.name}: stopped by the "
                                 "recorder before py-spy wrote anything",
                                 pid=run.root_pid, once_key=f"{chain.name}-cut")
            return
        reason = reason or (f"py-spy exited with {code}" if code is not None
                            else "py-spy was stopped before it wrote anything")
        self.sampler.problem("py-spy", "run-failed", f"{chain.name}: {reason}",
                             pid=run.root_pid, once_key=f"{chain.name}-failed: {reason}")
        if chain.failed(proc_id, self.sampler.now_s()):
            what = "Python stacks" if chain is self.stacks_chain else "GIL holders"
            self.sampler.problem("py-spy", "gave-up",
                                 f"{chain.name}: no {what} for this process after "
                                 f"{MAX_ATTACH_TRIES} failed runs; the last said: {reason}",
                                 pid=run.root_pid, once_key=f"{chain.name}-gave-up")
