"""Predicted speed-ups: from one recording, about how much faster the same work would run
under each concurrency model (multiprocessing, threading, asyncio), with a low-high range
and the basis of the estimate. A model of the recorded wall time, not a simulation:

    recorded wall = computing + waiting on I/O + the rest (locks, sleeps, start-up)
    work (core-seconds) = computing seconds x cores used at once

and each model changes one part: processes spread the work over the usable cores (less what
the recorder itself took) at a start-up cost per worker; threads overlap the I/O waits but,
holding the GIL, not Python's work; asyncio overlaps socket waits on one thread.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from inspector.analyze.wall import WallTime

MODELS = ("multiprocessing", "threading", "asyncio")

# Requests in flight assumed for the I/O part when the caller states none: the size at which
# concurrent.futures' default thread pool stops growing (min(32, cpus + 4)) is the usual
# upper bound of a thread pool; 16 is a common choice below it (and the demo's).
DEFAULT_IO_CONCURRENCY = 16
# Starting a worker process and handing it its work: forking a Python worker, its pool's
# pipes and its exit. Measured here: the demo's I/O job starts and ends 16 forked workers in
# ~0.2 s on 2 cores (~0.02 s each, spread over the cores); spawn, which imports the program
# again in each worker, costs more (the low end of the range allows twice this).
PROCESS_START_S = 0.02
# Parallel efficiency of processes on the work, low end: pickling arguments and results,
# the last lone task, cores shared with the rest of the machine.
PROCESS_EFFICIENCY_LOW = 0.8
# Threads taking turns on the GIL cost a little more than one thread doing the same work
# (switches every 5 ms, cache misses): up to this much more, measured 0.89-0.95x here.
GIL_SWITCH_COST = 0.12
# Overlapping waits is never perfect (connection set-up, the server's own limits): the low
# end assumes this share of the ideal overlap.
OVERLAP_EFFICIENCY_LOW = 0.75


# However busy the recorder kept the machine, a model gets some of a core.
MIN_FREE_CORES = 0.1


@dataclass(frozen=True)
class Prediction:
    model: str
    speedup: float
    low: float
    high: float
    workers: int
    basis: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("speedup", "low", "high"):
            d[k] = round(d[k], 2)
        return d


@dataclass(frozen=True)
class Segment:
    """A stretch of the run predicted on its own (a phase, or the whole run)."""

    wall: WallTime
    python_holds_gil: bool       # its work is Python under a GIL (no parallel threads seen)
    name: str = ""               # the phase's kind, where the run has phases


@dataclass(frozen=True)
class PredictionInputs:
    segments: tuple[Segment, ...]
    usable_cores: float
    recorder_cores: float = 0.0  # cores the recorder and py-spy took meanwhile (mean)
    other_cores: float = 0.0     # cores other programs kept busy meanwhile (mean; evidence)
    io_concurrency: int = DEFAULT_IO_CONCURRENCY
    socket_waits: bool = True    # the I/O waits are on sockets (asyncio can overlap them)


# (mid, best, worst) seconds, workers, basis: one model's estimate of one segment
_Estimate = tuple[tuple[float, float, float], int, str]


def predict(x: PredictionInputs) -> dict[str, Prediction | str]:
    """model -> Prediction, or a string saying why there is none. Each segment (phase) is
    estimated on its own and the times added: a parallel phase of native code and a serial
    phase of Python gain differently."""
    wall = sum(seg.wall.wall_s for seg in x.segments)
    if wall <= 0:
        return {m: "nothing was measured" for m in MODELS}
    out: dict[str, Prediction | str] = {}
    for model, estimate in (("multiprocessing", _processes), ("threading", _threads),
                            ("asyncio", _asyncio)):
        parts: list[_Estimate] = []
        why_not = None
        for seg in x.segments:
            e = estimate(x, seg)
            if isinstance(e, str):
                why_not = e
                break
            parts.append(e)
        if why_not is not None:
            out[model] = why_not
            continue
        mid, best, worst = (sum(p[0][k] for p in parts) for k in range(3))
        if model == "multiprocessing":  # the workers start once, not once per phase
            workers = max(p[1] for p in parts)
            start = PROCESS_START_S * workers / _free_cores(x)
            mid, worst = mid + start, worst + 2 * start
            basis = _joined(x, parts) + f"; {start:.2f} s to start {workers} processes"
        else:
            workers = max(p[1] for p in parts)
            basis = _joined(x, parts)
        out[model] = _made(model, wall, mid, best, worst, workers, basis)
    return out


def _joined(x: PredictionInputs, parts: list[_Estimate]) -> str:
    if len(parts) == 1:
        return parts[0][2]
    return "; ".join(f"{seg.name or 'phase'} phase: {p[2]}" for seg, p in zip(x.segments, parts))


def _split(seg: Segment) -> tuple[float, float, float]:
    """Seconds computing, the I/O waits as if made one at a time (the seconds waiting on
    I/O with nothing computing, times the waits that were in flight at once), and the rest."""
    w = seg.wall
    in_flight = max(1.0, w.io_waits_mean)
    return w.computing_s, w.io_s * in_flight, max(w.wall_s - w.computing_s - w.io_s, 0.0)


def _free_cores(x: PredictionInputs) -> float:
    """Cores a model's workers can spread over: the usable ones, less the recorder's share."""
    return max(MIN_FREE_CORES, x.usable_cores - x.recorder_cores)


def _recorded_cores(x: PredictionInputs, seg: Segment) -> float:
    """How many cores the recorded program's structure could use while it computed: one per
    process wanting a CPU where Python held a GIL, else the threads runnable at once; at
    least one, at most the usable cores. A model using k cores runs the computing part
    k / this times as fast (other programs' load slows both alike)."""
    w = seg.wall
    n = w.wanting_processes_mean if seg.python_holds_gil else w.runnable_mean
    return max(1.0, min(x.usable_cores, n))


def _ratio(wall: float, t: float) -> float:
    return wall / t if t > 0 else 1.0


def _processes(x: PredictionInputs, seg: Segment) -> _Estimate:
    computing, io, rest = _split(seg)
    rec = _recorded_cores(x, seg)
    io_bound = io > computing
    workers = x.io_concurrency if io_bound else max(1, int(x.usable_cores))
    # Work spreads over min(workers, free cores); waits overlap `workers` at a time.
    spread = min(float(workers), _free_cores(x))
    best_spread = min(float(workers), x.usable_cores)
    mid = computing * rec / spread + io / workers + rest
    best = computing * rec / best_spread + io / workers + rest
    worst = computing * rec / (spread * PROCESS_EFFICIENCY_LOW) \
        + io / (workers * OVERLAP_EFFICIENCY_LOW) + rest
    basis = (f"{computing:.1f} s of computing on {rec:.1f} cores' worth, spread over "
             f"{spread:.1f} usable cores"
             + (f" (of {x.usable_cores:g}, less {x.recorder_cores:.2f} the recorder took)"
                if x.recorder_cores > 0.01 else "")
             + (f", {io:.1f} s of I/O waits overlapped {workers} at a time" if io > 0.05 else ""))
    return (mid, best, worst), workers, basis


def _threads(x: PredictionInputs, seg: Segment) -> _Estimate:
    computing, io, rest = _split(seg)
    rec = _recorded_cores(x, seg)
    c = max(1, x.io_concurrency)
    if seg.python_holds_gil:
        t = computing * rec  # one core's worth at a time, under one GIL
        cpu_mid, cpu_best, cpu_worst = (t * (1 + GIL_SWITCH_COST / 2), t,
                                        t * (1 + GIL_SWITCH_COST))
        why = f"{computing:.1f} s of computing in Python stay on one core under the GIL"
    else:
        cores = _free_cores(x)
        cpu_mid, cpu_best, cpu_worst = (computing * rec / cores,
                                        computing * rec / x.usable_cores,
                                        computing * rec / (cores * PROCESS_EFFICIENCY_LOW))
        why = (f"{computing:.1f} s of computing released the GIL: it spreads over "
               f"{cores:.1f} cores")
    mid = cpu_mid + io / c + rest
    best = cpu_best + io / c + rest
    worst = cpu_worst + io / (c * OVERLAP_EFFICIENCY_LOW) + rest
    basis = why + (f"; {io:.1f} s of I/O waits overlapped {c} at a time" if io > 0.05 else "")
    return (mid, best, worst), c, basis


def _asyncio(x: PredictionInputs, seg: Segment) -> _Estimate | str:
    computing, io, rest = _split(seg)
    if io > 0.05 and not x.socket_waits:
        return "the I/O waits are not on sockets (files, disks): an event loop cannot overlap them"
    rec = _recorded_cores(x, seg)
    c = max(1, x.io_concurrency)
    t = computing * rec  # one thread
    mid = t + io / c + rest
    worst = t * (1 + GIL_SWITCH_COST / 2) + io / (c * OVERLAP_EFFICIENCY_LOW) + rest
    basis = (f"{computing:.1f} s of computing on one thread"
             + (f"; {io:.1f} s of socket waits overlapped {c} at a time, with non-blocking calls"
                if io > 0.05 else ""))
    return (mid, mid, worst), c, basis


def _made(model: str, wall: float, mid: float, best: float, worst: float, workers: int,
          basis: str) -> Prediction:
    s = _ratio(wall, mid)
    hi = max(_ratio(wall, best), s)
    lo = min(_ratio(wall, worst), s)
    return Prediction(model=model, speedup=s, low=lo, high=hi, workers=workers, basis=basis)
