"""Python stacks from py-spy, in back-to-back runs of growing length.

py-spy writes its output only when it stops (its issue #604), so each Python process is
sampled by `py-spy record --pid P -d N --nonblocking --threads --idle -f chrometrace`
(no --subprocesses: the recorder knows the tree and starts one per process), one run after
another, N growing 1, 2, 4, ... 30 s: the first stacks land
at once and a long recording pays py-spy's start-up rarely. Every graceful finish ends the
runs with SIGINT (py-spy writes what it has); a SIGKILLed recorder loses the current runs'
stacks, up to RUN_LENGTHS_S[-1] of them. Each run's spans are put on the recording's clock
(py-spy's ts 0 is within a few ms of our launch) and written as soon as the run ends.
The rate keeps the recorder and its py-spy runs within a CPU budget (STACKS_BUDGET_CORES)
on average since the recording began, measured as it goes.
Nonblocking mode keeps the target's slowdown within noise at any thread count
(shared/MEASUREMENTS.md); blocking mode cost up to 1.57x with many waiting threads. On
Python < 3.11 it names threads by pthread id, turned into OS thread ids by record/pthreads.
A run that fails is a problem of its process, in py-spy's words, and is retried.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspector.record import procfs
from inspector.record.pthreads import PthreadTids
from inspector.record.sampler import ProcInfo, Sampler
from inspector.recording import RecordingWriter

# py-spy's -d takes whole seconds. Each run of a process is longer than the one before: the
# first stacks land after 1 s, and the launches (a process start, py-spy reading the target's
# maps and symbols, 20-50 ms before its first sample) that runs of 1 s paid twice a second
# (two chains) become rare. The last length bounds what a SIGKILLed recorder loses.
RUN_LENGTHS_S = (1, 2, 4, 8, 16, 30)
CHUNK_S = RUN_LENGTHS_S[0]  # the first run's length
OVERLAP_S = 0.1  # next run starts this early: py-spy takes 10-50 ms to take its first sample
PY_SPY_STARTUP_S = 0.03  # typical delay from launching py-spy to its first sample
GIL_RATE_HZ = 20  # the GIL runs count holders per second: 20 samples give its share in 5% steps
# The recorder and everything it starts use at most this share of one core, on average over
# the recording so far (issue 13): the py-spy runs get what the recorder's own sampling
# leaves, and their rate follows. py-spy reads every thread's stack at every sample, waiting
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
NOBODY_TID = 0  # gil_samples row of "no thread held the GIL" (no OS thread has id 0)
# A process caught before its interpreter is loaded (just exec'd, libpython not mapped or
# not initialised) makes py-spy fail with "No python processes found" or "Failed to find
# python version" (after ~1 s of looking): runs are retried after these pauses, then given up.
RETRY_PAUSES_S = (0.05, 0.2, 0.5)
MAX_ATTACH_TRIES = len(RETRY_PAUSES_S) + 1
# `thread (TID): name`; on Python < 3.11 under --nonblocking, `thread (0x7F..)`: a pthread id
_THREAD_ROOT = re.compile(r"^thread \((0x[0-9A-Fa-f]+|\d+)\)(?::\s?(.*))?$")
TidOf = Callable[[int, int], "int | None"]  # (pid, pthread id) -> OS thread id


def _root_tid(pid: int, text: str, name: str | None, tid_of: TidOf | None) -> int | None:
    """The OS thread id of a `thread (...)` root frame's id."""
    if not text.startswith("0x"):
        return int(text)
    tid = tid_of(pid, int(text, 16)) if tid_of is not None else None
    if tid is None and name == "MainThread":
        return pid  # the main thread's tid is its process's pid
    return tid


# The rates a tree is sampled at, highest first: a measured cost moves the rate between
# a few steps, not to a new value every run (each lowered rate is a problem row, once).
RATE_STEPS_HZ = (1000, 500, 200, 100, 50, 40, 30, 20, 15, 10, 7, 5, 3, 2, 1)
MAX_RATE_CHANGES = 200  # meta stacks.rates_hz_used keeps at most this many changes
COST_CHECK_AFTER_S = 1.5  # a run's CPU is checked mid-run once past its start-up
# The runs are looked after this often: well within OVERLAP_S, so the next run starts before
# the current one ends (at 0.02 s, the look-ups alone took ~0.5% of a core).
LOOP_S = 0.04


def _rounded_rate(rate: float) -> int:
    """The highest step at or below `rate` (at least MIN_RATE_HZ)."""
    return next((r for r in RATE_STEPS_HZ if r <= rate), MIN_RATE_HZ)


def names_pthreads(python_version: str | None) -> bool:
    """Whether py-spy --nonblocking gives this Python's threads as pthread ids (< 3.11)."""
    m = re.match(r"(\d+)\.(\d+)", python_version or "")
    return m is not None and (int(m[1]), int(m[2])) < (3, 11)

PERMISSION_HINT = (
    "inspector: cannot read Python stacks (ptrace not permitted); recording everything else. "
    "Run as root, or `sudo sysctl kernel.yama.ptrace_scope=0`, or in a container add "
    "--cap-add SYS_PTRACE.")


_CAP_SYS_PTRACE = 19  # bit in /proc/self/status CapEff (<linux/capability.h>)


def may_trace(pid: int) -> bool:
    """Whether a py-spy we start may read `pid`'s memory. Asked of the kernel, because
    `py-spy record --subprocesses` reports a refused attach only as "No python processes
    found". Opening /proc/PID/mem makes the ptrace access check py-spy meets (uid,
    dumpable, capabilities); Yama's ptrace_scope >= 1 also refuses it, py-spy being our
    child and not the target's ancestor, unless we hold CAP_SYS_PTRACE."""
    try:
        os.close(os.open(f"/proc/{pid}/mem", os.O_RDONLY))
    except PermissionError:
        return False
    except OSError:
        return True  # gone, or not a question of permission
    try:
        scope = int(Path("/proc/sys/kernel/yama/ptrace_scope").read_text())
    except (OSError, ValueError):
        return True  # no Yama
    if scope == 0:
        return True
    if scope >= 3:
        return False
    try:
        status = Path("/proc/self/status").read_text()
        cap_eff = int(next(ln.split()[1] for ln in status.splitlines()
                           if ln.startswith("CapEff:")), 16)
    except (OSError, ValueError, StopIteration):
        return True
    return bool(cap_eff >> _CAP_SYS_PTRACE & 1)


def find_py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which("py-spy")


def py_spy_version(exe: str) -> str | None:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().replace("py-spy ", "") or None


@dataclass
class StackSpan:
    t_s: float
    duration_s: float
    pid: int
    tid: int
    thread_name: str | None
    stack: str


def parse_chrometrace(events: Iterable[dict[str, Any]], t_launch_s: float,
                      end_ts_us: float | None = None,
                      tid_of: TidOf | None = None) -> list[StackSpan]:
    """Turns py-spy's B/E events into spans of one unchanged stack on one thread.

    py-spy writes each sample as the difference from the previous sample *with the same
    pthread id*, whatever its process, and forked processes share pthread ids (every pool
    worker's main thread has its parent's): so the frames are rebuilt per pthread id, as
    py-spy keeps them, and each sample is then given to its process (the events' `pid`) and
    OS thread (the root frame `thread (TID): name` that `--threads` adds; where that frame
    holds a pthread id, `tid_of` turns it into the OS thread id, and a sample whose thread
    it cannot name is dropped). A thread's stack holds from one of its samples until its
    next sample that differs.
    """
    frames_by_ptid: dict[int, list[str]] = {}
    current: dict[tuple[int, int], tuple[float, str, str | None]] = {}  # (pid, tid) -> span
    spans: list[StackSpan] = []
    # py-spy caches Python thread names by pthread id, and pthread ids are reused once a
    # thread ends: a later OS thread behind the same pthread id may carry a stale name.
    first_tid: dict[tuple[int, int], int] = {}

    def close(key: tuple[int, int], until: float) -> None:
        start, stack, name = current.pop(key)
        if until > start:
            spans.append(StackSpan(t_s=t_launch_s + start / 1e6,
                                   duration_s=(until - start) / 1e6, pid=key[0], tid=key[1],
                                   thread_name=name, stack=stack))

    def observe(ptid: int, pid: int, ts: float) -> None:
        frames = frames_by_ptid.get(ptid) or []
        # With --subprocesses the roots are `process PID:"cmdline"` frames, then the thread.
        i, m = next(((j, m) for j, m in enumerate(map(_THREAD_ROOT.match, frames)) if m),
                    (0, None))
        if m is None or i + 1 >= len(frames):
            return
        tid = _root_tid(pid, m.group(1), m.group(2), tid_of)
        if tid is None:
            return
        name = m.group(2) if first_tid.setdefault((pid, ptid), tid) == tid else None
        stack = ";".join(frames[i + 1:])
        key = (pid, tid)
        span = current.get(key)
        if span is not None:
            if span[1] == stack:
                return
            close(key, ts)
        current[key] = (ts, stack, name)

    group: tuple[int, float, int] | None = None  # the sample being read: pthread id, ts, pid
    began = False  # its B events have started (an E after a B starts the next sample)
    last_ts: float | None = None
    for ev in events:
        ph = ev.get("ph")
        if ph not in ("B", "E"):
            continue
        ptid, ts = int(ev["tid"]), float(ev["ts"])
        if group is None or group[0] != ptid or group[1] != ts or (ph == "E" and began):
            if group is not None:
                observe(group[0], group[2], group[1])
            group, began = (ptid, ts, int(ev["pid"])), False
        frames = frames_by_ptid.setdefault(ptid, [])
        if ph == "B":
            args = ev.get("args") or {}
            filename, line = args.get("filename") or "", args.get("line") or 0
            name = str(ev.get("name", "?"))
            frames.append(f"{name} ({filename}:{line})" if filename else name)
            began = True
        elif frames:
            frames.pop()
        last_ts = ts if last_ts is None else max(last_ts, ts)
    if group is not None:
        observe(group[0], group[2], group[1])
    end = end_ts_us if end_ts_us is not None else last_ts
    if end is not None:
        for key in list(current):
            close(key, end)
    return spans


@dataclass
class GilCount:
    pid: int
    tid: int
    thread_name: str | None
    samples: int


_PROCESS_ROOT = re.compile(r"^process (\d+):")


def parse_gil_counts(text: str, tid_of: TidOf | None = None) -> list[GilCount]:
    """Sums py-spy `--gil --threads -f raw` lines (`frames... COUNT`) per thread."""
    counts: dict[tuple[int, int], GilCount] = {}
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        pid = tid = None
        name = None
        for frame in stack.split(";"):
            m = _PROCESS_ROOT.match(frame)
            if m:
                pid = int(m.group(1))
                continue
            t = _THREAD_ROOT.match(frame)
            if t:
                if pid is not None:
                    tid, name = _root_tid(pid, t.group(1), t.group(2), tid_of), t.group(2)
                break
        if pid is None or tid is None:
            continue
        entry = counts.setdefault((pid, tid), GilCount(pid, tid, name, 0))
        entry.samples += int(count)
    return list(counts.values())


class _Run:
    """One py-spy run on one Python process tree."""

    def __init__(self, exe: str, root_pid: int, rate: int, out_dir: str, t_launch_s: float,
                 seq: int, gil: bool = False, duration_s: int = CHUNK_S) -> None:
        self.root_pid = root_pid
        self.gil = gil
        self.rate = rate
        self.duration_s = duration_s
        self.cpu_s: float | None = None  # py-spy's own CPU, once reaped
        self.out = os.path.join(out_dir, f"{root_pid}-{seq}.{'txt' if gil else 'json'}")
        self.log = os.path.join(out_dir, f"{root_pid}-{seq}.log")
        self.t_launch_s = t_launch_s
        self.t_end_s: float | None = None
        self.stopping = False
        self.cost_checked_s = t_launch_s
        # A GIL run keeps only the samples of the thread holding the GIL (--gil); chrometrace
        # would merge those into spans that never close, so it counts them (raw format).
        # Stack runs sample one process each: --subprocesses makes py-spy walk every pid of
        # the machine for children, 1-2% of a core however slow its rate, and its
        # chrometrace diffs stacks by pthread id, which forked processes share (so whole
        # stacks are written at every sample). The recorder already knows the tree.
        mode = (["--gil", "--subprocesses", "--format", "raw"] if gil
                else ["--idle", "--format", "chrometrace"])
        argv = [exe, "record", "--pid", str(root_pid), "--duration", str(duration_s),
                "--rate", str(rate), "--nonblocking", "--threads", *mode,
                "--output", self.out]
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ]
        # Its own process group, so a Ctrl-C at the terminal does not cut a run short, and
        # an empty signal mask: the recorder blocks the signals it forwards.
        self.pid = os.posix_spawn(exe, argv, os.environ, file_actions=actions,
                                  setpgroup=0, setsigmask=())

    def poll(self, now_s: float | None = None) -> int | None:
        pid, status, usage = os.wait4(self.pid, os.WNOHANG)
        if pid == 0:
            return None
        self.t_end_s = now_s
        self.cpu_s = usage.ru_utime + usage.ru_stime
        return os.waitstatus_to_exitcode(status)

    def wait(self, timeout_s: float) -> int | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            code = self.poll()
            if code is not None:
                return code
            time.sleep(0.01)
        return None

    def stop(self) -> None:
        """SIGINT makes py-spy write what it has (SIGTERM would lose it)."""
        self.stopping = True
        try:
            os.kill(self.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.wait4(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass

    def remove_files(self) -> None:
        for path in (self.out, self.log):
            try:
                os.unlink(path)
            except OSError:
                pass

    def first_line(self) -> str:
        """py-spy's own first line on stderr: the reason a run failed."""
        try:
            text = Path(self.log).read_text(errors="replace")
        except OSError:
            return ""
        return next((ln.strip() for ln in text.splitlines()
                     if ln.strip() and not ln.startswith("py-spy> ")), "")

    def message(self) -> str:
        """py-spy's error and its causes on one line (without a RUST_BACKTRACE dump)."""
        try:
            text = Path(self.log).read_text(errors="replace")
        except OSError:
            return ""
        text = text.split("Stack backtrace:", 1)[0]
        lines = [ln.strip() for ln in text.splitlines()
                 if ln.strip() and not ln.startswith("py-spy> ")]
        return " ".join(lines)


@dataclass
class _Chain:
    """One kind of py-spy run (stacks, or --gil counts) kept going on each process tree. Its
    failures are counted, retried after a pause and given up apart from the other chain's,
    so a failing --gil run never costs the stacks."""

    name: str  # as the problems say it
    failures: dict[int, int] = field(default_factory=dict)  # by root proc_id, in a row
    next_try_s: dict[int, float] = field(default_factory=dict)
    gave_up: set[int] = field(default_factory=set)

    def ready(self, proc_id: int, now_s: float) -> bool:
        return proc_id not in self.gave_up and now_s >= self.next_try_s.get(proc_id, 0.0)

    def succeeded(self, proc_id: int) -> None:
        self.failures.pop(proc_id, None)
        self.next_try_s.pop(proc_id, None)

    def failed(self, proc_id: int, now_s: float) -> bool:
        """Counts a failed run; whether the chain now gives up on this process."""
        n = self.failures[proc_id] = self.failures.get(proc_id, 0) + 1
        if n >= MAX_ATTACH_TRIES:
            self.gave_up.add(proc_id)
            return True
        self.next_try_s[proc_id] = now_s + RETRY_PAUSES_S[min(n, len(RETRY_PAUSES_S)) - 1]
        return False


class StackSampler:
    """Keeps one py-spy run going on every Python process, all at one rate within budget."""

    def __init__(self, sampler: Sampler, exe: str, rate: int, quiet: bool,
                 ignore_pids: set[int], gil_check: bool = False,
                 budget_cores: float = STACKS_BUDGET_CORES) -> None:
        self.sampler = sampler
        self.gil_check = gil_check  # the py-spy --gil cross-check chain (opt-in)
        self.budget_cores = budget_cores
        self.ignore_pids = ignore_pids  # py-spy runs are ours, not the target's
        self.exe = exe
        self.rate = rate
        self.quiet = quiet
        # 0700; named by our pid, so a later run removes it if we are killed (it holds
        # command lines): recorder.clean_stale_temp_folders
        self.out_dir = tempfile.mkdtemp(prefix=f"inspector-pyspy-{os.getpid()}-")
        self.runs: dict[int, list[_Run]] = {}  # by root proc_id, in launch order
        self.gil_runs: dict[int, _Run] = {}  # by root proc_id: one --gil run at a time
        self.gil_rate = min(rate, GIL_RATE_HZ)
        self.lowest_rate_hz: int | None = None  # of the stack runs so far (meta rate_hz_used)
        # (t_s, pid, rate) each time a tree's rate changed: meta stacks.rates_hz_used
        self.rate_changes: list[tuple[float, int, int]] = []
        self._last_rate: dict[int, int] = {}  # by root proc_id
        self._launches: dict[int, int] = {}  # stack runs launched, by root proc_id
        # py-spy's CPU per thread sample, by root proc_id, as its last finished run measured
        self._thread_sample_cost_s: dict[int, float] = {}
        self.py_spy_cpu_s = 0.0  # all finished stack runs together
        self.stacks_chain = _Chain("stacks")
        self.gil_chain = _Chain("--gil")
        self._covered_until: dict[tuple[int, int], float] = {}  # (pid, tid) -> t_s
        self.pthread_tids = PthreadTids()  # Python < 3.11: py-spy names pthread ids
        self._scanned_threads: dict[int, int] = {}  # proc_id -> its thread count then
        self.permission_denied = False
        self.runs_done = 0
        self.spans_written = 0
        self._seq = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="inspector-stacks", daemon=True)
        self._names: dict[tuple[int, int], str] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        shutil.rmtree(self.out_dir, ignore_errors=True)

    # -- loop ------------------------------------------------------------------------------
    def _loop(self) -> None:
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

    def _roots(self, covered: set[int], chain: _Chain) -> list[ProcInfo]:
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

    def _rate_for(self, horizon_s: float = 1.0, launches: int = 0) -> int:
        """The stack runs' rate for the next `horizon_s`, one for every process: the asked
        one, or lower so that the recorder and its py-spy runs (`launches` of them about to
        start) stay within the budget on average since the recording began, at the cost per
        sample each process's last run measured (a prior before its first)."""
        per_second = sum(self._cost_at_1hz(p) for p in self._sampled())
        if per_second <= 0:
            return self.rate
        within = self._allowance_cores(horizon_s, launches) / per_second
        return self.rate if within >= self.rate else min(self.rate, _rounded_rate(within))

    def _cost_at_1hz(self, p: ProcInfo) -> float:
        """py-spy's CPU per second sampling this process at 1 Hz."""
        per_thread = self._thread_sample_cost_s.get(p.proc_id)
        threads = max(1, p.threads)
        return (per_thread * threads if per_thread is not None
                else PRIOR_TREE_SAMPLE_S + PRIOR_THREAD_SAMPLE_S * threads)

    def _allowance_cores(self, horizon_s: float, launches: int) -> float:
        """What py-spy's sampling may use, in cores, over the next `horizon_s`: the budget
        over the recording so far and that horizon, less what the recorder and its runs
        have used, the recorder's own use to come (at its rate so far) and the launches."""
        so_far = self.sampler.recorder_cpu_so_far()
        elapsed, own_s, helpers_s = so_far if so_far is not None else (0.0, 0.0, 0.0)
        own_cores = own_s / elapsed if elapsed >= OWN_MEASURED_AFTER_S else OWN_PRIOR_CORES
        left = (self.budget_cores * (elapsed + horizon_s) - own_s - helpers_s
                - own_cores * horizon_s - launches * PY_SPY_LAUNCH_CPU_S)
        return max(left / horizon_s, STACKS_FLOOR_CORES)

    def _gil_rate_for(self, root: ProcInfo) -> int:
        threads = self._tree_threads(root)
        return max(MIN_RATE_HZ, min(self.gil_rate, GIL_THREAD_SAMPLES_PER_S // threads))

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
                                 f"within {self.budget_cores:.1%} of a core", pid=root.pid,
                                 once_key=f"rate-{rate}")

    def _stop_if_too_fast(self, run: _Run | None, rate: int) -> None:
        """A --gil run whose tree grew many threads: ended now (SIGINT, py-spy writes what
        it has) so the next one starts at a lower rate."""
        if run is None or run.stopping:
            return
        if run.rate > 2 * rate:
            run.stop()

    def _stop_if_over_budget(self, p: ProcInfo, run: _Run, now: float) -> None:
        """A stack run whose rate the budget no longer allows (its process grew threads,
        or py-spy costs more than thought): ended now (SIGINT: py-spy writes what it has)
        so the next one starts at a lower rate, when what the rest of it would save is more
        than a launch costs (cutting brings the next launch forward: at most one more).
        Cutting on any excess, seen on 64 threads: six runs launched in 0.3 s, each cut
        for the launch cost of the one before."""
        if run.stopping:
            return
        remaining = run.t_launch_s + run.duration_s - now
        if remaining <= 0:
            return
        rate = self._rate_for(max(remaining, 1.0))
        if (run.rate - rate) * self._cost_at_1hz(p) * remaining > PY_SPY_LAUNCH_CPU_S:
            run.stop()

    def _check_cost(self, root: ProcInfo, run: _Run, now: float) -> None:
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

    def _learn_cost(self, proc_id: int, run: _Run, cpu_s: float, elapsed_s: float) -> None:
        """py-spy's CPU per thread sample, from a run's CPU past its launch. A run of few
        samples says little (its CPU is counted in 10-ms ticks, its launch varies by as
        much): the estimate before it stands. Seen without this: a 2-s run at 1 Hz on 64
        threads measured ~0 per sample, and the next run went back to 100 Hz."""
        threads = max(1, next((p.threads for p in self.sampler.snapshot
                               if p.proc_id == proc_id), 1))
        samples = run.rate * max(elapsed_s - PY_SPY_STARTUP_S, 0.1) * threads
        if samples < MIN_LEARN_SAMPLES:
            return
        self._thread_sample_cost_s[proc_id] = min(max(cpu_s / samples, MIN_THREAD_SAMPLE_S),
                                                  MAX_THREAD_SAMPLE_S)

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
            rate = self._rate_for(length, launches=1)
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
               duration_s: int = CHUNK_S) -> _Run | OSError:
        """Starts a py-spy run, known as ours before the sampler can see it: the sampler's
        orphan scan waits while a run is being started (between fork and the pid's entry
        in ignore_pids, a py-spy child of the recorder looks like a re-parented orphan)."""
        with self.sampler.spawning:
            try:
                run = _Run(self.exe, pid, rate, self.out_dir, now, self._seq, gil=gil,
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

    def _ingest_gil(self, proc_id: int, run: _Run, code: int | None) -> None:
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
                self._write_gil, t_s=start, duration_s=end - start, counts=counts,
                rate=run.rate, pids=pids))

    def _write_gil(self, w: RecordingWriter, t_s: float, duration_s: float,
                   counts: list[GilCount], rate: int, pids: set[int]) -> None:
        procs = {p.pid: p.proc_id for p in self.sampler.snapshot}
        # py-spy takes rate * duration samples per process, catching up after a slow start,
        # and a run cut short takes fewer; never let the holders of one process exceed 100%.
        expected = max(1, round(rate * min(float(CHUNK_S), duration_s)))
        per_pid: dict[int, int] = dict.fromkeys(pids, 0)
        for c in counts:
            per_pid[c.pid] = per_pid.get(c.pid, 0) + c.samples
        rows = [(t_s, duration_s, procs.get(c.pid), c.pid, c.tid, c.thread_name, c.samples,
                 max(expected, per_pid[c.pid])) for c in counts]
        # tid 0: the samples in which no thread of the process held its GIL
        rows += [(t_s, duration_s, procs.get(pid), pid, NOBODY_TID, None,
                  max(expected, held) - held, max(expected, held))
                 for pid, held in per_pid.items()]
        w.add_gil_samples(rows)

    def _ingest(self, proc_id: int, run: _Run, code: int | None) -> None:
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
        spans = self._trim(parse_chrometrace(events, run.t_launch_s,
                                             tid_of=self._tid_of_for_one_run()))
        if spans:
            self.spans_written += len(spans)
            self.sampler.submit(functools.partial(self._write, spans=spans, rate=run.rate,
                                                  t_launch_s=run.t_launch_s))

    def _trim(self, spans: list[StackSpan]) -> list[StackSpan]:
        """Drops what an earlier, overlapping run already recorded for the same thread."""
        kept = []
        covered = self._covered_until
        for s in spans:
            key = (s.pid, s.tid)
            end = s.t_s + s.duration_s
            until = covered.get(key)
            if until is not None and s.t_s < until:
                if end <= until:
                    continue
                s = StackSpan(until, end - until, s.pid, s.tid, s.thread_name, s.stack)
            kept.append(s)
        for s in kept:
            key = (s.pid, s.tid)
            covered[key] = max(covered.get(key, 0.0), s.t_s + s.duration_s)
        return kept

    def _failed(self, proc_id: int, run: _Run, code: int | None, chain: _Chain) -> None:
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

    def _stale_name(self, w: RecordingWriter, proc_id: int, tid: int, name: str,
                    t_launch_s: float) -> bool:
        """py-spy caches names by pthread id, and a thread started during a run may have
        reused the pthread id of an ended one: if an ended thread of the process bore the
        same name, the name is not trusted for this run (the next run names it afresh)."""
        start = w.thread_start_s(proc_id, tid)
        if start is None or start < t_launch_s:
            return False
        return w.ended_thread_named(proc_id, tid, name)

    def _write(self, w: RecordingWriter, spans: list[StackSpan], rate: int,
               t_launch_s: float = 0.0) -> None:
        stale: dict[tuple[int, int, str], bool] = {}
        procs = {}
        for p in self.sampler.snapshot:
            procs[p.pid] = p.proc_id  # the latest process with that pid wins
        rows = []
        slack = self.sampler.interval_s
        for s in spans:
            proc_id = procs.get(s.pid)
            duration = s.duration_s
            if proc_id is not None:
                # py-spy closes a vanished thread's span only when its run ends: clip it to
                # the thread's life as /proc saw it.
                end = w.thread_end_s(proc_id, s.tid)
                if end is not None and s.t_s + duration > end + slack:
                    duration = end + slack - s.t_s
                    if duration <= 0:
                        continue
            if s.thread_name and proc_id is not None:
                skey = (proc_id, s.tid, s.thread_name)
                if skey not in stale:
                    stale[skey] = self._stale_name(w, proc_id, s.tid, s.thread_name,
                                                   t_launch_s)
                if stale[skey]:
                    s = StackSpan(s.t_s, s.duration_s, s.pid, s.tid, None, s.stack)
            samples = max(1, round(duration * rate))
            rows.append((s.t_s, duration, proc_id, s.pid, s.tid, s.thread_name, s.stack,
                         samples, None))
            if s.thread_name and proc_id is not None:
                key = (proc_id, s.tid)
                # remembered once it took: a thread py-spy met before the sampler did has
                # no row to name yet (seen: 5 of 50 threads left unnamed), so a later span
                # or run names it
                if self._names.get(key) != s.thread_name and w.name_thread(
                        proc_id, s.tid, s.thread_name):
                    self._names[key] = s.thread_name
        w.add_stacks(rows)
