"""Predicted speed-ups: from one recording, about how much faster the same work would run
under each concurrency model (multiprocessing, threading, asyncio), with a low-high range
and the basis of the estimate. A model of the recorded wall time, not a simulation:

    recorded wall = computing + waiting on I/O + the rest (locks, sleeps, start-up)
    work (one core's seconds) = computing seconds x what the recorded structure got of its cores

and each model changes one part: processes spread the work over the usable cores (as many as
the machine really gives: analyze/capacity.py) at a start-up cost per worker; threads overlap
the I/O waits but, holding the GIL, not Python's work (and take turns at a measured cost);
asyncio overlaps socket waits on one thread. Child processes run one after another could run
at once; a straggler's last task and work under one lock are not spread by any model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from inspector.analyze import evidence as ev
from inspector.analyze.capacity import Capacity
from inspector.analyze.evidence import Fact
from inspector.analyze.wall import WallTime

MODELS = ("multiprocessing", "threading", "asyncio")

# However busy the recorder kept the machine, a model gets some of a core.
MIN_FREE_CORES = 0.1


@dataclass(frozen=True)
class Prediction:
    model: str
    speedup: float
    low: float
    high: float
    workers: int
    basis: tuple[Fact, ...]        # worded by the text layer


@dataclass(frozen=True)
class Children:
    """Child processes run one after another while their parent waited for each."""

    lives_s: tuple[float, ...]     # each child's life
    cpu_s: tuple[float, ...]       # each child's CPU time

    @property
    def span_s(self) -> float:
        return sum(self.lives_s)


@dataclass(frozen=True)
class Segment:
    """A stretch of the run predicted on its own (a phase, or the whole run)."""

    wall: WallTime
    python_holds_gil: bool         # its work is Python under a GIL (no parallel threads seen)
    name: str = ""                 # the phase's kind, where the run has phases
    gil_contended: bool = False    # its computing was threads of one process taking turns
    indivisible_s: float = 0.0     # computing no model spreads: a straggler's last task
    serial: bool = False           # all of it queued on one lock: no model changes it
    children: Children | None = None  # its time is children run one after another


@dataclass(frozen=True)
class PredictionInputs:
    segments: tuple[Segment, ...]
    capacity: Capacity
    io_concurrency: int            # waits in flight the thread and asyncio models overlap
    io_concurrency_own: bool       # the program's own (seen in the recording), or assumed
    recorder_cores: float = 0.0    # cores the recorder and py-spy took meanwhile (mean)
    in_flight: float = 1.0         # I/O waits of one kind the program had in flight at once
    multiplexed: bool = False      # its waits were mostly in a selector: many at once already
    socket_waits: bool = True      # the I/O waits are on sockets (asyncio can overlap them)
    wait_s: float | None = None    # a typical single I/O wait, where the recording tells
    spawns: bool = False           # its processes would start by spawn or forkserver
    # the program's own start (its interpreter and imports, from the recording): a spawned
    # worker imports the program again, so it starts no sooner than this
    program_start_s: float = 0.0


@dataclass(frozen=True)
class _Time:
    """Seconds a model's run would take: fastest, middle, slowest."""

    best: float
    mid: float
    worst: float

    def __add__(self, other: _Time) -> _Time:
        return _Time(self.best + other.best, self.mid + other.mid, self.worst + other.worst)


_ZERO = _Time(0.0, 0.0, 0.0)


def predict(x: PredictionInputs) -> dict[str, Prediction | str]:
    """model -> Prediction, or a string saying why there is none. Each segment (phase) is
    estimated on its own and the times added: a parallel phase of native code and a serial
    phase of Python gain differently."""
    wall = sum(seg.wall.wall_s for seg in x.segments)
    if wall <= 0:
        return {m: "nothing was measured" for m in MODELS}
    out: dict[str, Prediction | str] = {}
    for model in MODELS:
        total = _ZERO
        basis: list[Fact] = []
        workers = 1
        why_not = None
        for seg in x.segments:
            got = _segment(model, x, seg)
            if isinstance(got, str):
                why_not = got
                break
            t, n, said = got
            total = total + t
            workers = max(workers, n)
            basis += said if len(x.segments) == 1 else [ev.InPhase(seg.name or "phase",
                                                                   tuple(said))]
        if why_not is not None:
            out[model] = why_not
            continue
        if model == "multiprocessing" and workers > 1:
            start = _start(x, workers)
            total = total + start
            basis.append(ev.WorkersStart(workers, start.mid, start.worst,
                                         _spawn_s(x) if x.spawns else x.capacity.fork_start_s,
                                         x.spawns, x.capacity.pooled,
                                         0.0 if x.spawns else x.capacity.pool_fixed_s))
        out[model] = _made(model, wall, total, workers, tuple(basis))
    return out


def _segment(model: str, x: PredictionInputs, seg: Segment
             ) -> tuple[_Time, int, list[Fact]] | str:
    w = seg.wall
    if seg.serial:
        return _Time(w.wall_s, w.wall_s, w.wall_s), 1, [ev.QueuedOnOneLock(w.wall_s)]
    if seg.children is not None:
        return _children(x, seg.children, w)
    computing = max(0.0, w.computing_s - seg.indivisible_s)
    # the waits as if made one at a time; a selector's were already overlapped as far as any
    # model would (their number is not in the recording)
    io = w.io_s * (float(x.io_concurrency) if x.multiplexed else max(1.0, x.in_flight))
    rest = max(w.wall_s - w.computing_s - w.io_s, 0.0) + seg.indivisible_s
    said: list[Fact] = []
    if seg.indivisible_s > 0.05:
        said.append(ev.Indivisible(seg.indivisible_s))
    if model == "asyncio" and io > 0.05 and not x.socket_waits:
        return "the I/O waits are not on sockets (files, disks): an event loop cannot overlap them"
    work = _work(x, seg, computing)
    cap = x.capacity
    n = max(1, int(math.floor(cap.usable_cores + 1e-9)))
    if model == "multiprocessing":
        workers = x.io_concurrency if io > computing else n
        spread = min(float(workers), float(n))
        free = _free_share(x, spread)
        cpu = _Time(work.best / (cap.gain(spread, "high")),
                    work.mid / (cap.gain(spread, "mid") * free),
                    work.worst / (cap.gain(spread, "low") * free))
        said.append(ev.ComputingSpread(computing, work.mid, spread,
                                       cap.gain(spread, "mid") * free, x.recorder_cores))
        # the CPU between the waits runs in every process at once, on the cores there are
        waits = _overlapped(x, io, workers,
                            min(w.io_cpu_s, io) / (cap.gain(spread, "mid") * free))
    elif model == "threading" or model == "asyncio":
        waiting = io > 0.05
        workers = x.io_concurrency if waiting else (n if model == "threading" else 1)
        if seg.python_holds_gil or model == "asyncio":
            turns = model == "threading"
            if not turns:
                cpu = work
            elif seg.gil_contended:  # the recorded threads took turns already
                cpu = _Time(computing, computing, computing)
            else:
                cost = cap.gil_cost
                cpu = _Time(work.best * (1 + cost.low), work.mid * (1 + cost.mid),
                            work.worst * (1 + cost.high))
            said.append(ev.ComputingOnOneCore(computing, work.mid, turns))
        else:  # native code released the GIL: threads spread it as processes would
            free = _free_share(x, n)
            cpu = _Time(work.best / cap.gain(n, "high"), work.mid / (cap.gain(n, "mid") * free),
                        work.worst / (cap.gain(n, "low") * free))
            said.append(ev.ComputingSpread(computing, work.mid, n, cap.gain(n, "mid") * free,
                                           x.recorder_cores, released_gil=True))
        serial = (min(w.io_cpu_s, io) if seg.python_holds_gil or model == "asyncio"
                  else 0.0)
        waits = _overlapped(x, io, workers, serial)
        if model == "threading" and workers > 1:
            waits = waits + _Time(0.0, workers * cap.thread_start_s,
                                  workers * cap.thread_start_s)
    else:
        raise ValueError(model)
    if io > 0.05:
        said.append(ev.WaitsOverlapped(io, min(workers, _waits(x, io)), model == "asyncio",
                                       serial if model != "multiprocessing" else 0.0))
    return cpu + waits + _Time(rest, rest, rest), workers, said


def _work(x: PredictionInputs, seg: Segment, computing: float) -> _Time:
    """The computing part in one core's seconds (least, middle, most): what the recorded
    structure got of the cores it used at once; threads that took turns on a GIL did one
    thread's work and the hand-offs' cost besides."""
    w = seg.wall
    if seg.gil_contended:
        cost = x.capacity.gil_cost
        return _Time(computing / (1 + cost.high), computing / (1 + cost.mid),
                     computing / (1 + cost.low))
    used = w.wanting_processes_mean if seg.python_holds_gil else w.runnable_mean
    used = max(1.0, min(x.capacity.usable_cores, used))
    cap = x.capacity
    return _Time(computing * cap.gain(used, "low"), computing * cap.gain(used, "mid"),
                 computing * cap.gain(used, "high"))


def _free_share(x: PredictionInputs, spread: float) -> float:
    """Of `spread` cores, the share left when the recorder takes its own."""
    if spread <= 0:
        return 1.0
    return max(MIN_FREE_CORES, spread - x.recorder_cores) / spread


def _waits(x: PredictionInputs, io: float) -> int:
    """How many waits the I/O was, as far as the recording tells (at least one)."""
    if x.wait_s is None or x.wait_s <= 0:
        return 10**6
    return max(1, round(io / x.wait_s))


def _overlapped(x: PredictionInputs, io: float, workers: int, serial: float = 0.0) -> _Time:
    """The waits, made `workers` at a time: their sum over `workers` at best; at worst one
    more wait's length (a pool's last batch: Graham's bound for list scheduling). `serial`:
    the CPU between the waits (making each request, reading its answer) that one GIL runs one
    at a time. At best it hides under the other waits (no sooner than itself, though); at
    worst none of it does: the waits come back together and queue for the GIL (the demo's I/O
    job, 16 at a time, ran at the worst). Which it will be the recording cannot tell: the
    middle, between."""
    if io <= 0:
        return _ZERO
    c = max(1, min(workers, _waits(x, io)))
    longest = x.wait_s if x.wait_s is not None else io / c
    best = max(io / c, serial)
    queued = serial + (io - serial) / c
    return _Time(best, (best + queued) / 2, queued + min(longest, io))


def _children(x: PredictionInputs, ch: Children, w: WallTime
              ) -> tuple[_Time, int, list[Fact]]:
    """Children run at once: no sooner than the longest, than their CPU over the cores the
    machine gives, or than their lives overlapped `io_concurrency` at a time."""
    cap = x.capacity
    n = max(1, int(math.floor(cap.usable_cores + 1e-9)))
    longest = max(ch.lives_s)
    cpu = sum(ch.cpu_s)
    at_once = max(1, min(x.io_concurrency, len(ch.lives_s)))
    free = _free_share(x, n)

    def bound(gain: float) -> float:
        return max(longest, cpu / (gain * free), ch.span_s / at_once)

    t = _Time(bound(cap.gain(n, "high")), bound(cap.gain(n, "mid")), bound(cap.gain(n, "low"))
              + longest)
    other = max(0.0, w.wall_s - ch.span_s)
    return (t + _Time(other, other, other), at_once,
            [ev.ChildrenAtOnce(len(ch.lives_s), ch.span_s, cpu, longest, at_once)])


def _start(x: PredictionInputs, workers: int) -> _Time:
    """Starting the workers (and, where the calibration measured a real pool's life, ending
    them). Spawned ones start their interpreters side by side: spread over the free cores,
    one after another at worst. Forked ones are forked by the pool's parent in turn: spread
    at best, about one after another, twice that at worst (the program's parent is bigger
    than the calibration's, its pages dearer: a parent of 130 MiB here doubled a pool
    worker's cost)."""
    each = _spawn_s(x) if x.spawns else x.capacity.fork_start_s
    cores = max(MIN_FREE_CORES, x.capacity.usable_cores - x.recorder_cores)
    spread = workers * each / min(float(workers), cores)
    if x.spawns:
        return _Time(spread, spread, workers * each)
    pool = x.capacity.pool_fixed_s  # the pool's own threads, pipes and end: once
    return _Time(spread + pool, workers * each + pool, 2 * (workers * each + pool))


def _spawn_s(x: PredictionInputs) -> float:
    """A spawned worker's start: an interpreter's (measured) or the program's own start-up
    (the recording's), whichever is longer."""
    return max(x.capacity.spawn_start_s, x.program_start_s)


def _made(model: str, wall: float, t: _Time, workers: int, basis: tuple[Fact, ...]
          ) -> Prediction:
    def ratio(s: float) -> float:
        return wall / s if s > 0 else 1.0

    mid = ratio(t.mid)
    return Prediction(model=model, speedup=mid, low=min(ratio(t.worst), mid),
                      high=max(ratio(t.best), mid), workers=workers, basis=basis)


def io_concurrency_of(in_flight: float, io_s: float, asked: int | None, usable_cores: float
                      ) -> tuple[int, bool]:
    """The waits in flight the models overlap, and whether they are the program's own: what
    the user asked for; else the program's own where it already overlapped its waits; else
    an assumption, concurrent.futures' default thread pool (min(32, cores + 4))."""
    if asked is not None:
        return max(1, asked), True
    if io_s > 0 and in_flight >= 1.5:
        return max(2, round(in_flight)), True
    return min(32, int(usable_cores) + 4), False

