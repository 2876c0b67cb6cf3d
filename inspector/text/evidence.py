"""The evidence's words: one sentence for each kind of fact the analysis finds
(inspector/analyze/evidence.py). The summary, the page, `top`, compare and the JSON call
`say()`, so a fact reads the same everywhere.
"""

from __future__ import annotations

from functools import singledispatch

from inspector.analyze import evidence as ev
from inspector.analyze.cluster import Clocks, ClusterSaid, UnevenWork, WorkerSaid, WorkerVerdict
from inspector.analyze.eventloop import LoopBlock
from inspector.analyze.evidence import Cores, Fact
from inspector.analyze.vocabulary import DASK_ADVICE, WORKER_KIND_WORDS


def cores_of(c: Cores) -> str:
    """'2' or '1 usable (affinity) of 2', for evidence sentences."""
    if c.limited:
        return f"{c.usable:g} usable ({c.limited_by or 'limited'}) of {c.machine}"
    return f"{c.machine}"


def cores_sentence(c: Cores) -> str:
    """'2 cores on this machine, 1 usable by this program (affinity)', or 'all usable'."""
    machine = f"{c.machine} core{'s' if c.machine != 1 else ''} on this machine"
    if c.limited_by and c.limited:
        return f"{machine}, {c.usable:g} usable by this program ({c.limited_by})"
    return f"{machine}, all usable by this program"


def said(facts: tuple[Fact, ...] | list[Fact]) -> list[str]:
    """Every fact as its sentence, in order."""
    return [say(f) for f in facts]


@singledispatch
def say(fact: Fact) -> str:
    """The fact as one sentence (no trailing full stop: lists and tables add their own)."""
    raise TypeError(f"no words for {type(fact).__name__}")


@say.register
def _(f: ev.NothingMeasured) -> str:
    return "no samples: nothing was measured, so nothing is claimed"


@say.register
def _(f: ev.CoresLimited) -> str:
    c = f.cores
    return (f"{c.machine} cores on this machine, {c.usable:g} usable by "
            f"this program ({c.limited_by or 'limited'})")


@say.register
def _(f: ev.PhasesSeen) -> str:
    return ("phases: " + ", ".join(f"{ph.start_s:.1f}-{ph.end_s:.1f} s {ph.kind} "
                                   f"({ph.share:.0%}, {ph.cores_mean:.2f} cores)"
                                   for ph in f.phases)
            + f"; the verdict is the {f.focus.kind} phase's, the costliest")


@say.register
def _(f: ev.WallSplit) -> str:
    w = f.wall
    return (f"of {w.wall_s:.1f} s, something computed in {w.computing_s:.1f} s (on "
            f"{w.cores_at_once_mean:.2f} cores at once on average), the program waited on "
            f"I/O with nothing computing in {w.io_s:.1f} s and on itself (locks, sleeps, "
            f"children) in {w.waiting_s:.1f} s -> {f.bound}")


@say.register
def _(f: ev.StateTotals) -> str:
    t = f.seconds
    return (f"threads spent {t['cpu']:.1f} s on a CPU, {t['runqueue']:.1f} s waiting "
            f"for a core, {t['gil']:.1f} s waiting for the GIL, {t['io']:.1f} s waiting "
            f"for I/O, {t['lock']:.1f} s waiting on locks/queues/joins/children and "
            f"{t['sleep']:.1f} s sleeping")


@say.register
def _(f: ev.GilCapped) -> str:
    return (f"pid {f.pid}: up to {f.wanting_threads} threads wanted the CPU at once, yet the "
            f"process used {f.cores_used:.2f} cores (of {cores_of(f.cores)}); GIL waits were "
            f"{f.gil_wait_share:.0%} of their CPU demand"
            + (f"; py-spy saw the GIL held in {f.gil_held_share:.0%} of its samples"
               if f.gil_held_share is not None else "")
            + " -> the GIL capped it")


@say.register
def _(f: ev.FreeThreaded) -> str:
    return (f"pid {f.pid} runs a free-threaded Python (no GIL): its threads can use "
            "several cores")


@say.register
def _(f: ev.ThreadsParallel) -> str:
    return (f"pid {f.pid}: threads ran at once, {f.cores_used:.2f} cores in "
            f"{f.intervals} intervals (native code releasing the GIL, or no GIL)"
            + (f"; the GIL was held in only {f.gil_held_share:.0%} of py-spy's samples"
               if f.gil_held_share is not None else ""))


@say.register
def _(f: ev.LockQueue) -> str:
    return (f"{f.threads} threads spent {f.share:.0%} of their time queued on "
            f"a lock their own code takes" + (f" (most at {f.line})" if f.line else ""))


@say.register
def _(f: ev.Oversubscribed) -> str:
    return (f"{f.runnable_mean:.1f} threads were runnable on average on {cores_of(f.cores)} "
            f"cores in {f.share:.0%} of the busy time: they waited for a core (run queue)")


@say.register
def _(f: ev.Advised) -> str:
    return f"advice {f.advice}: " + "; ".join(say(w) for w in f.why)


@say.register
def _(f: ev.LoopBlocked) -> str:
    return blocked_loop_sentence(f.block)


def blocked_loop_sentence(b: LoopBlock) -> str:
    if b.confidence == "confirmed":
        call = f" in {b.blocking_call}" if b.blocking_call else ""
        return (f"asyncio loop (pid {b.pid}, tid {b.tid}) blocked {b.duration_s:.2f} s at "
                f"{b.start_s:.2f} s{call}, called from {b.function}: await a non-blocking "
                "version, or run it with asyncio.to_thread / loop.run_in_executor")
    return (f"asyncio loop (pid {b.pid}, tid {b.tid}) possibly blocked {b.duration_s:.2f} s at "
            f"{b.start_s:.2f} s computing in {b.function}: the samples cannot tell one long "
            "callback from short ones that yield between samples; if it is one, move it to a "
            "process (run_in_executor) or split it")


@say.register
def _(f: ev.LoopStarved) -> str:
    b = f.block
    return (f"asyncio loop (pid {b.pid}, tid {b.tid}) was starved of CPU for "
            f"{b.duration_s:.2f} s at {b.start_s:.2f} s (waiting for the GIL or a core "
            "inside a callback): not a block by the task, but other threads took its CPU")


@say.register
def _(f: ev.RecorderShare) -> str:
    own = (f"{f.own_s:.1f} s of it its own threads queued beyond the cores it could use; "
           if f.own_s >= 0.05 else "")
    return (f"threads waited {f.queued_s:.1f} s for a core; {own}meanwhile the recorder and "
            f"its py-spy runs used {f.recorder_cores:.2f} cores on average and other programs "
            f"{f.other_cores:.2f}: about {f.recorder_share_s:.1f} s of that wait is the "
            "recorder's share")


# -- the run's shape, beside the advice ------------------------------------------------------

@say.register
def _(f: ev.LockHeldWhileWorking) -> str:
    return (f"{f.threads} threads take turns on a lock held while they work "
            "or wait; more threads or processes would queue on it too: hold it "
            "for less time (not across I/O or long computations)")


@say.register
def _(f: ev.GilWaitsCap) -> str:
    return ("CPU-bound Python threads wait for the GIL; processes (or "
            f"native code that releases the GIL) can use all {cores_of(f.cores)} cores")


@say.register
def _(f: ev.BlockingCoroutines) -> str:
    return (f"the coroutines make blocking calls ({', '.join(f.calls[:3])}) that "
            "stall the event loop: every other task waits meanwhile; use "
            "non-blocking versions (asyncio streams, aiohttp, "
            "asyncio.create_subprocess_exec) or asyncio.to_thread")


@say.register
def _(f: ev.LoopOverlapsWaits) -> str:
    return "an asyncio event loop already overlaps the waits"


@say.register
def _(f: ev.ManySlowWaits) -> str:
    return (f"up to {f.peak} slow I/O waits at once (typically {f.typical_s:.2f} s): "
            "more than a thread pool should hold")


@say.register
def _(f: ev.ThreadsOverlapWaits) -> str:
    return (f"threads overlap their I/O waits: up to {f.peak} threads waited at "
            f"once, each for stretches of typically {f.typical_s:.2f} s")


@say.register
def _(f: ev.SlowWaitsInSequence) -> str:
    return (f"{f.waits} slow I/O waits one after another "
            f"(typically {f.typical_s:.2f} s): overlap them")


@say.register
def _(f: ev.OneThreadWaits) -> str:
    return (f"one thread waits for I/O, {f.waits} waits one after another "
            f"(typically {f.typical_s:.2f} s)")


@say.register
def _(f: ev.NeitherDominates) -> str:
    return "neither CPU nor I/O dominates; look at the threads below for the slow part"


@say.register
def _(f: ev.MostlyWaitedOnItself) -> str:
    return "the program mostly slept or waited on itself"


@say.register
def _(f: ev.TooManyWorkers) -> str:
    return (f"more threads or processes were runnable than the {f.cores.usable:g} usable "
            f"core{'s' if f.cores.usable != 1 else ''}: use about {f.cores.usable:g} workers "
            "(one per usable core) instead of more")


@say.register
def _(f: ev.GilTurns) -> str:
    return (f"up to {f.threads} threads of Python took turns on their process's GIL: the "
            "same work on one thread a process (or in processes: one GIL each) skips the turns")


@say.register
def _(f: ev.OneUsableCore) -> str:
    return (f"one core's worth of work at a time, and {f.cores.usable:g} usable core "
            f"({f.cores.limited_by or 'limited'}): processes would share it, not be "
            "faster")


@say.register
def _(f: ev.OneAtATime) -> str:
    who = "one process at a time computes" if f.processes_take_turns else "one thread computes"
    return f"{who}, on {f.cores_used:.2f} of {cores_of(f.cores)} cores"


@say.register
def _(f: ev.CoresWereBusy) -> str:
    return (f"the threads could run at once but waited {f.runqueue_s:.1f} s "
            "for a core: the machine's cores were busy (with other programs, if "
            "not with these)")


@say.register
def _(f: ev.UsesTheCores) -> str:
    return f"CPU-bound and using {f.cores_used:.2f} of {cores_of(f.cores)} cores already"


# -- notes -------------------------------------------------------------------------------------

@say.register
def _(f: ev.NoThreadSamples) -> str:
    return ("no thread samples: the program ended before the first two samples, "
            "or the recording was cut short")


@say.register
def _(f: ev.GilNotTold) -> str:
    return ("no Python stacks and no futex addresses: GIL waits cannot be told "
            "from lock waits (they are counted as lock waits)")


@say.register
def _(f: ev.PySpyFailed) -> str:
    return f"py-spy could not sample pid {f.pid}: {f.detail}"


# -- clusters ------------------------------------------------------------------------------------

def worker_sentence(w: WorkerVerdict) -> str:
    """'worker 3: 4 threads GIL-limited at 1.0 core: use processes=True or nthreads=1'"""
    n = w.working_threads
    threads = f"{n} thread{'s' if n != 1 else ''}"
    if w.gil_limited:
        what = f"{threads} GIL-limited at {w.busy_cores:.1f} core"
    elif w.parallel_threads:
        what = f"{threads} in parallel at {w.busy_cores:.1f} cores"
    elif w.oversubscribed:
        what = f"{threads} oversubscribed its cores"
    elif w.bound == "idle":
        what = "idle"
    else:
        what = f"{threads} {w.bound}-bound at {w.busy_cores:.1f} core"
    return f"worker {w.label}: {what}: {DASK_ADVICE[w.kind]}"


@say.register
def _(f: ClusterSaid) -> str:
    if not f.workers:
        return "no worker was recorded"
    return (f"cluster: {f.alike} of {f.workers} worker{'s' if f.workers != 1 else ''} on "
            f"{f.hosts} host{'s' if f.hosts != 1 else ''} {WORKER_KIND_WORDS[f.kind]}: "
            f"{DASK_ADVICE[f.kind]}")


@say.register
def _(f: WorkerSaid) -> str:
    return worker_sentence(f.worker)


@say.register
def _(f: UnevenWork) -> str:
    return (f"work was uneven: worker {f.busiest} used {f.busiest_cpu_s:.1f} s "
            f"of CPU, worker {f.quietest} {f.quietest_cpu_s:.1f} s")


@say.register
def _(f: Clocks) -> str:
    if f.parts < 2:
        return "one recording: one clock"
    if not f.measured:
        return ("wall clocks as recorded (no offset measured: hosts kept in step by NTP "
                "usually agree within a few milliseconds)")
    return (f"wall clocks corrected by offsets measured at collection (largest "
            f"{f.largest_offset_s * 1e3:.1f} ms), each within +-"
            f"{f.worst_uncertainty_s * 1e3:.1f} ms (half the round trip of the best of "
            "several clock reads)")


# -- predictions and what the advice stands on ---------------------------------------------------

def basis_text(basis: tuple[Fact, ...]) -> str:
    """A prediction's basis in one line, its parts separated by semicolons."""
    return "; ".join(say(f) for f in basis)


@say.register
def _(f: ev.PredictedGain) -> str:
    p = f.prediction
    if f.way is not None:
        return f"predicted {p.speedup:.2f}x ({p.low:.2f}-{p.high:.2f}x) with {f.way}"
    return (f"predicted {p.speedup:.2f}x ({p.low:.2f}-{p.high:.2f}x) with {p.model} "
            f"({p.workers} worker{'s' if p.workers != 1 else ''})")


@say.register
def _(f: ev.NoModelGains) -> str:
    gain = f"{f.margin - 1:.0%}"
    if f.best is None:
        return f"no model is predicted to gain {gain} or more"
    b = f.best
    return (f"no model is predicted to gain {gain} or more at the low end of its range: the "
            f"best is {b.model} at {b.speedup:.2f}x ({b.low:.2f}-{b.high:.2f}x)")


@say.register
def _(f: ev.CannotPredict) -> str:
    return f"no prediction can be made: {f.reason}"


@say.register
def _(f: ev.ChildrenOneAfterAnother) -> str:
    return (f"pid {f.parent_pid} ran {f.children} child processes one after another "
            f"({f.span_s:.1f} s, {f.cpu_s:.1f} s of CPU) and waited for each: run at once, "
            "they could finish sooner if they are independent, which a recording cannot "
            "tell")


@say.register
def _(f: ev.ChildrenCouldOverlap) -> str:
    return f"its {f.children} child processes ran one after another and could run at once"


@say.register
def _(f: ev.Straggler) -> str:
    who = f" ({f.name})" if f.name else ""
    return (f"a straggler: pid {f.pid} tid {f.tid}{who} computed alone for {f.alone_s:.1f} s "
            f"at the end of the parallel work, leaving {f.idle_cores:g} other usable "
            f"core{'s' if f.idle_cores != 1 else ''} to others (about "
            f"{f.alone_s * f.idle_cores:.1f} core-seconds unused): no model change spreads "
            "one task; start the longest tasks first, or cut them smaller")


@say.register
def _(f: ev.InPhase) -> str:
    return f"{f.phase} phase: " + ", ".join(say(x) for x in f.said)


@say.register
def _(f: ev.ComputingSpread) -> str:
    how = "released the GIL: it spreads" if f.released_gil else "spread"
    recorder = (f" (less the {f.recorder_cores:.2f} cores the recorder took)"
                if f.recorder_cores > 0.01 else "")
    return (f"{f.computing_s:.1f} s of computing ({f.work_s:.1f} s of one core's work) "
            f"{how} over {f.cores:g} core{'s' if f.cores != 1 else ''}, which give "
            f"{f.gain:.2f}x of one here{recorder}")


@say.register
def _(f: ev.ComputingOnOneCore) -> str:
    how = ("in threads taking turns on the GIL" if f.taking_turns else "on one thread")
    return (f"{f.computing_s:.1f} s of computing ({f.work_s:.1f} s of one core's work) stay "
            f"on one core, {how}")


@say.register
def _(f: ev.WaitsOverlapped) -> str:
    how = " with non-blocking calls" if f.event_loop else ""
    serial = (f", the {f.serial_s:.2f} s of CPU between them one at a time"
              if f.serial_s >= 0.005 else "")
    return f"{f.io_s:.1f} s of I/O waits overlapped {f.at_once} at a time{how}{serial}"


@say.register
def _(f: ev.ChildrenAtOnce) -> str:
    return (f"{f.children} children ({f.span_s:.1f} s one after another, {f.cpu_s:.1f} s of "
            f"CPU, the longest {f.longest_s:.1f} s) run {f.at_once} at a time")


@say.register
def _(f: ev.Indivisible) -> str:
    return f"{f.seconds:.1f} s of one task's computing that no model spreads"


@say.register
def _(f: ev.QueuedOnOneLock) -> str:
    return f"{f.seconds:.1f} s queued on one lock, which no model changes"


@say.register
def _(f: ev.WorkersStart) -> str:
    how = "spawn or forkserver" if f.spawns else "fork"
    order = "side by side" if f.spawns else "one after another"
    if f.pooled and not f.spawns:
        return (f"{f.mid_s:.2f} s to start and end {f.workers} processes {order} "
                f"({f.each_s * 1e3:.0f} ms each and {f.pool_s * 1e3:.0f} ms for their pool: "
                f"a fork pool's life as measured here; up to {f.worst_s:.2f} s)")
    return (f"{f.mid_s:.2f} s to start {f.workers} processes {order} "
            f"({f.each_s * 1e3:.0f} ms each by {how}; up to {f.worst_s:.2f} s)")


@say.register
def _(f: ev.MachineBasis) -> str:
    c = f.capacity
    if c.measured:
        where = (f"measured here ({c.calibrations} calibrations together)"
                 if c.calibrations > 1 else "measured here")
        machine = (f"{where}: {c.processes} process{'es' if c.processes != 1 else ''} "
                   f"got {c.process_gain.mid:.2f}x "
                   f"({c.process_gain.low:.2f}-{c.process_gain.high:.2f}) of one, threads "
                   f"taking turns on a GIL cost {c.gil_cost.mid:+.0%}")
    else:
        machine = (f"not measured on this machine (no calibration): {c.processes} "
                   f"process{'es' if c.processes != 1 else ''} assumed to give "
                   f"{c.process_gain.low:.2f}-{c.process_gain.high:.2f}x of one, a GIL's "
                   f"turns {c.gil_cost.low:+.0%} to {c.gil_cost.high:+.0%}")
    if f.multiplexed:
        waits = "its waits were a selector's (an event loop's): already overlapped"
    elif f.asked:
        waits = f"{f.io_concurrency} waits in flight, as asked (--io-concurrency)"
    elif f.io_concurrency_own:
        waits = f"{f.io_concurrency} waits in flight, the program's own"
    else:
        waits = f"{f.io_concurrency} waits in flight assumed (set --io-concurrency)"
    return f"{machine}; {waits}"
