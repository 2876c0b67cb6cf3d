"""Timed slices of pure-Python work, for calibrate.py: in forked workers kept over several
rounds (one alone, several at once, one split over two threads, with the GIL's hand-offs
between them), and the starts of a thread and of a spawn-like interpreter.
"""

from __future__ import annotations

import json
import os
import pickle
import select
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from queue import SimpleQueue

from inspector.errors import CalibrationError

# What a worker is told to do: its slice on its one thread, or split over two.
ALONE, SPLIT = b"a", b"s"
# Pure-Python iterations between two timestamps: ~60 us here, fine enough to see each GIL
# hand-off, coarse enough that reading the clock costs under 1% of the work.
CHUNK_ITERATIONS = 1000

# A spawn-like start that takes longer than this has hung (a broken interpreter).
SPAWN_TIMEOUT_S = 10.0

# What a spawned pool worker does before its first task: start the interpreter (site and its
# .pth files included), import what spawn_main imports, unpickle the task.
# It leaves out re-importing the program's __main__, which only the program's own imports
# can say (the recording shows them), and the resource tracker, started once per program.
# Then, in the same small interpreter (a program's parent, not the recorder), the lives of
# three real multiprocessing pools of forked workers, of 1, 1 again and POOL_SIZES[1]:
# created, one trivial task each, closed and joined. A pool costs a fixed part (its pipes,
# its three handler threads, its end; the first pool also the modules Pool() imports, which
# a program's first pool pays too: 5-10 ms here) and a part per worker (a fork, its
# bootstrap, its end): the sizes part them. A pool of 2 alone cost 10-20 ms a worker here,
# one of 16 4-6 ms.
_SPAWN_LIKE = (
    "import time\n"
    "started = time.monotonic()\n"
    "import json, pickle, sys\n"
    "from multiprocessing import resource_tracker, spawn\n"
    "function, args, k = pickle.load(sys.stdin.buffer)\n"
    "print(json.dumps([started, function(*args)]), flush=True)\n"
    "import multiprocessing\n"
    "try:\n"
    "    context = multiprocessing.get_context('fork')\n"
    "except ValueError:\n"
    "    print('[null]', flush=True)\n"
    "    raise SystemExit\n"
    "lives = []\n"
    "for n in (1, 1, k):\n"
    "    began = time.monotonic()\n"
    "    with context.Pool(n) as pool:\n"
    "        pool.map(abs, range(n), chunksize=1)\n"
    "        pool.close()\n"
    "        pool.join()\n"
    "    lives.append(time.monotonic() - began)\n"
    "print(json.dumps(lives), flush=True)\n"
)
# The pools' sizes: one worker (twice: the first pays the imports), and this many: enough
# that the per-worker part is several times the noise of one pool's life, few enough for
# the calibration's budget.
POOL_SIZES = (1, 4)


@dataclass(frozen=True)
class Starts:
    """What spawn_like_start() measured (seconds)."""

    interpreter_s: float         # sys.executable to its first line of code
    spawn_s: float               # ... to a spawn-like worker's first result in our hands
    pool_worker_s: float | None  # a forked pool's cost per worker (None: not measured)
    pool_fixed_s: float | None   # ... and its fixed cost, whatever its workers


def spin(iterations: int) -> int:
    """Pure-Python work that holds the GIL throughout and allocates nothing that lasts."""
    x = 0
    for i in range(iterations):
        x = (x * 31 + i) & 0xFFFF
    return x


def _stamped_spin(iterations: int, stamps: list[float]) -> None:
    """spin() in chunks, stamping the clock before each and at the end."""
    clock = time.monotonic
    for _ in range(max(1, iterations // CHUNK_ITERATIONS)):
        stamps.append(clock())
        spin(CHUNK_ITERATIONS)
    stamps.append(clock())


def alone(iterations: int) -> list[float]:
    """[start, end, CPU] of one slice on this process's one thread."""
    stamps: list[float] = []
    cpu = time.process_time()
    _stamped_spin(iterations, stamps)
    return [stamps[0], stamps[-1], time.process_time() - cpu]


def two_threads(iterations: int) -> list[float]:
    """[start, end, CPU, hand-offs, their cost] of one slice split over two threads of this
    process. A hand-off's cost is the gap between the last chunk stamped by one thread and the
    first stamped by the other, less one chunk: on average the parts of chunks cut by the
    switch (the end of one thread's, the rest of the other's) add up to one."""
    stamps: tuple[list[float], list[float]] = ([], [])
    go = threading.Event()

    def half(mine: list[float]) -> None:
        go.wait()
        _stamped_spin(iterations // 2, mine)

    threads = [threading.Thread(target=half, args=(s,)) for s in stamps]
    for t in threads:
        t.start()
    cpu = time.process_time()
    go.set()
    for t in threads:
        t.join()
    cpu = time.process_time() - cpu
    turns = sorted((t, who) for who, s in enumerate(stamps) for t in s)  # two sorted runs
    gaps = [b - a for (a, x), (b, y) in zip(turns, turns[1:]) if x != y]
    chunk = statistics.median(b - a for s in stamps for a, b in zip(s, s[1:]))
    return [turns[0][0], turns[-1][0], cpu, len(gaps), sum(gaps) - len(gaps) * chunk]


def _serve(iterations: int, commands_r: int, results_w: int) -> None:
    """A worker's life: one JSON line per command byte (ALONE, SPLIT), its job's result and
    the worker's CPU so far; ends at EOF (the parent is done, or gone)."""
    os.write(results_w, b"[]\n")  # its first result: the fork start ends here
    while (command := os.read(commands_r, 1)) in (ALONE, SPLIT):
        done = alone(iterations) if command == ALONE else two_threads(iterations)
        os.write(results_w, (json.dumps([*done, time.process_time()]) + "\n").encode())


class Workers:
    """k forked workers, kept for every round, each doing a fixed slice of Python on command.
    Kept rather than forked each round: a fork costs ~1-2 ms of CPU, and a fresh worker's
    first slice pays copy-on-write faults that a slice alone does not."""

    def __init__(self, k: int, iterations: int) -> None:
        self._pipes: list[tuple[int, int]] = []  # the parent's ends: commands_w, results_r
        self._pids: list[int] = []
        self.iterations = iterations
        self.start_s: list[float] = []  # each worker's fork to its first result
        self.cpu_s = [0.0] * k          # each worker's CPU as last told
        self._cpus = (sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else [0])
        self._pinned: list[int | None] = [None] * k  # the CPU each worker is pinned to
        try:
            for _ in range(k):
                self._fork(iterations)
        except BaseException:
            self.close()
            raise

    def _fork(self, iterations: int) -> None:
        started = time.monotonic()
        commands_r, commands_w = os.pipe()
        results_r, results_w = os.pipe()
        # Python 3.12+ warns on forking a process with threads (the recorder's): the worker
        # runs only this module's loop, touching no lock another thread could hold.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            status = 1
            try:
                for fd in (commands_w, results_r, *(fd for p in self._pipes for fd in p)):
                    os.close(fd)  # the others' ends held here would hide the parent's EOF
                _serve(iterations, commands_r, results_w)
                status = 0
            finally:
                os._exit(status)
        os.close(commands_r)
        os.close(results_w)
        self._pids.append(pid)
        self._pipes.append((commands_w, results_r))
        self._reply(len(self._pipes) - 1)
        self.start_s.append(time.monotonic() - started)

    def _reply(self, worker: int) -> list[float]:
        line = b""
        while not line.endswith(b"\n"):
            chunk = os.read(self._pipes[worker][1], 4096)
            if not chunk:
                raise CalibrationError(f"calibration worker {self._pids[worker]} ended early")
            line += chunk
        reply: list[float] = json.loads(line)
        if reply:
            self.cpu_s[worker] = reply[-1]
        return reply[:-1]

    def run(self, command: bytes, workers: Sequence[int], spread: bool = False
            ) -> list[list[float]]:
        """Each of `workers` runs `command` at once; their results. `spread` puts worker i on
        the i-th CPU this process may use (round the list): see _place."""
        for w in workers:
            self._place(w, spread)
            os.write(self._pipes[w][0], command)
        return [self._reply(w) for w in workers]

    def _place(self, worker: int, spread: bool) -> None:
        """Pins a worker to its own CPU, or lets it run on all this process may use. Workers
        woken at once on a machine with no idle CPU are queued where they were woken, two on
        one CPU, and the kernel's balancer moves one only after several ms: a 10-ms slice then
        measures the wake-up placement, not what the cores give a program running for
        seconds. One alone is not pinned: it goes where the kernel finds room, as it would."""
        cpus = self._cpus[worker % len(self._cpus)] if spread else None
        if not hasattr(os, "sched_setaffinity") or self._pinned[worker] == cpus:
            return
        try:
            os.sched_setaffinity(self._pids[worker], {cpus} if cpus is not None else self._cpus)
            self._pinned[worker] = cpus
        except OSError:  # not ours to place (a sandbox): measured where the kernel puts it
            pass

    def close(self) -> None:
        for fds in self._pipes:
            for fd in fds:
                os.close(fd)
        self._pipes = []
        for pid in self._pids:
            os.waitpid(pid, 0)
        self._pids = []


def iterations_per_cpu_s() -> float:
    """The pace of spin() on this thread's CPU: doubles a run until it takes 1 ms."""
    n = 2000
    while True:
        cpu = time.thread_time()
        spin(n)
        cpu = time.thread_time() - cpu
        if cpu >= 0.001:
            return n / cpu
        n *= 2


def thread_start_s() -> float:
    """Thread.start() to the thread's first result in the caller's hands."""
    results: SimpleQueue[int] = SimpleQueue()
    started = time.monotonic()
    t = threading.Thread(target=lambda: results.put(spin(1)))
    t.start()
    results.get()
    elapsed = time.monotonic() - started
    t.join()
    return elapsed


def spawn_like_start() -> Starts | None:
    """A spawn-like start of sys.executable and, in it, forked pools of POOL_SIZES workers;
    None when there is no interpreter to start or it fails."""
    if not sys.executable:
        return None
    started = time.monotonic()
    try:
        proc = subprocess.Popen([sys.executable, "-c", _SPAWN_LIKE], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except OSError:
        return None
    assert proc.stdin is not None and proc.stdout is not None
    lines: list[bytes] = []
    got = None
    try:
        proc.stdin.write(pickle.dumps((pow, (2, 10), POOL_SIZES[1])))
        proc.stdin.close()
        fd, pending = proc.stdout.fileno(), b""
        while len(lines) < 2:
            if not select.select([fd], [], [], SPAWN_TIMEOUT_S)[0]:
                break
            chunk = os.read(fd, 256)
            if not chunk:
                break
            pending += chunk
            while b"\n" in pending and len(lines) < 2:
                line, pending = pending.split(b"\n", 1)
                lines.append(line)
                if got is None:
                    got = time.monotonic()
    except OSError:  # it died before reading its task
        pass
    finally:
        if len(lines) < 2:
            proc.kill()
        proc.stdout.close()
        proc.wait()
    try:
        child_started = float(json.loads(lines[0])[0])
    except (ValueError, TypeError, IndexError):
        return None
    assert got is not None
    each = fixed = None
    try:
        first, one, many = (float(x) for x in json.loads(lines[1]))
        if min(first, one, many) > 0:
            # life(n) = fixed + n x each, the first pool's fixed part with its imports; noise
            # can make the difference nothing or less: then the larger pool's life over its
            # workers, and the first pool's imports as the fixed part
            each = (many - one) / (POOL_SIZES[1] - 1)
            fixed = first - each
            if each <= 0 or fixed < 0:
                each, fixed = many / POOL_SIZES[1], max(0.0, first - one)
    except (ValueError, TypeError, IndexError):
        pass
    return Starts(child_started - started, got - started, each, fixed)
