"""The evidence behind a verdict, as facts: each a small record of what was measured, with
no sentence in it. The text layer (inspector/text/evidence.py) words every kind; the summary,
the page, `top`, compare and the JSON all say a fact the same way because they call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from inspector.analyze.capacity import Capacity
from inspector.analyze.eventloop import LoopBlock
from inspector.analyze.vocabulary import AdviceKey, Bound
from inspector.analyze.wall import Phase, WallTime

if TYPE_CHECKING:
    from inspector.analyze.predict import Prediction


@dataclass(frozen=True)
class Fact:
    """The base of every piece of evidence (and of every note)."""


@dataclass(frozen=True)
class Cores:
    """The cores a program could use: the machine's, and those its affinity or quota left."""

    machine: int
    usable: float
    limited_by: str | None

    @property
    def limited(self) -> bool:
        return self.usable < self.machine


# -- the verdict's evidence, in the order it is given ----------------------------------------

@dataclass(frozen=True)
class NothingMeasured(Fact):
    """No thread samples at all."""


@dataclass(frozen=True)
class CoresLimited(Fact):
    cores: Cores


@dataclass(frozen=True)
class PhasesSeen(Fact):
    phases: tuple[Phase, ...]
    focus: Phase                 # the phase the verdict addresses, the costliest


@dataclass(frozen=True)
class WallSplit(Fact):
    """Where the wall clock went, and the bound it makes."""

    wall: WallTime
    bound: Bound


@dataclass(frozen=True)
class StateTotals(Fact):
    """The threads' seconds in each state (keys of vocabulary.THREAD_STATES)."""

    seconds: dict[str, float]


@dataclass(frozen=True)
class GilCapped(Fact):
    pid: int
    wanting_threads: int         # most threads wanting the CPU at once
    cores_used: float            # mean cores the process used while they did
    cores: Cores
    gil_wait_share: float        # GIL waits / CPU demand in those intervals
    gil_held_share: float | None  # py-spy --gil: share of samples some thread held it


@dataclass(frozen=True)
class FreeThreaded(Fact):
    pid: int


@dataclass(frozen=True)
class ThreadsParallel(Fact):
    pid: int
    cores_used: float            # mean cores in the parallel intervals
    intervals: int
    gil_held_share: float | None


@dataclass(frozen=True)
class LockQueue(Fact):
    threads: int
    share: float                 # of their time, queued on a lock of their own code
    line: str | None             # where they queued most


@dataclass(frozen=True)
class Oversubscribed(Fact):
    runnable_mean: float         # threads runnable at once, mean over the oversubscribed time
    cores: Cores
    share: float                 # of the busy time


@dataclass(frozen=True)
class Advised(Fact):
    """The advice and why it fits this run."""

    advice: AdviceKey
    why: tuple[Fact, ...]


@dataclass(frozen=True)
class LoopBlocked(Fact):
    block: LoopBlock


@dataclass(frozen=True)
class LoopStarved(Fact):
    block: LoopBlock


@dataclass(frozen=True)
class RecorderShare(Fact):
    """Threads waited for a core; the recorder's share of what took the cores meanwhile."""

    queued_s: float
    recorder_cores: float
    other_cores: float
    recorder_share_s: float
    own_s: float = 0.0           # of the wait, its own threads queued beyond its usable cores


# -- why an advice fits: Advised.why ---------------------------------------------------------

@dataclass(frozen=True)
class LockHeldWhileWorking(Fact):
    threads: int


@dataclass(frozen=True)
class GilWaitsCap(Fact):
    cores: Cores


@dataclass(frozen=True)
class BlockingCoroutines(Fact):
    calls: tuple[str, ...]       # the blocking calls, sorted


@dataclass(frozen=True)
class LoopOverlapsWaits(Fact):
    pass


@dataclass(frozen=True)
class ManySlowWaits(Fact):
    peak: int                    # waits in flight at once, at most
    typical_s: float


@dataclass(frozen=True)
class ThreadsOverlapWaits(Fact):
    peak: int
    typical_s: float


@dataclass(frozen=True)
class SlowWaitsInSequence(Fact):
    waits: int
    typical_s: float


@dataclass(frozen=True)
class OneThreadWaits(Fact):
    waits: int
    typical_s: float


@dataclass(frozen=True)
class NeitherDominates(Fact):
    pass


@dataclass(frozen=True)
class MostlyWaitedOnItself(Fact):
    pass


@dataclass(frozen=True)
class TooManyWorkers(Fact):
    cores: Cores


@dataclass(frozen=True)
class GilTurns(Fact):
    """Threads of Python taking turns on their process's GIL, most at once: the same work on
    one thread a process skips the turns (the asyncio model's gain, for CPU work)."""

    threads: int


@dataclass(frozen=True)
class OneUsableCore(Fact):
    cores: Cores


@dataclass(frozen=True)
class OneAtATime(Fact):
    processes_take_turns: bool   # one process at a time computed (else one thread)
    cores_used: float
    cores: Cores


@dataclass(frozen=True)
class CoresWereBusy(Fact):
    runqueue_s: float


@dataclass(frozen=True)
class UsesTheCores(Fact):
    cores_used: float
    cores: Cores


# -- notes: what limits the recording, not the program ----------------------------------------

@dataclass(frozen=True)
class NoThreadSamples(Fact):
    pass


@dataclass(frozen=True)
class GilNotTold(Fact):
    """No stacks and no futex addresses: GIL waits counted as lock waits."""


@dataclass(frozen=True)
class PySpyFailed(Fact):
    pid: int | None
    detail: str


# -- the basis of a prediction ---------------------------------------------------------------

@dataclass(frozen=True)
class InPhase(Fact):
    """What a phase's own estimate rests on."""

    phase: str
    said: tuple[Fact, ...]


@dataclass(frozen=True)
class ComputingSpread(Fact):
    computing_s: float
    work_s: float                # in one core's seconds
    cores: float                 # spread over
    gain: float                  # what those cores give against one, the recorder's share out
    recorder_cores: float
    released_gil: bool = False


@dataclass(frozen=True)
class ComputingOnOneCore(Fact):
    computing_s: float
    work_s: float
    taking_turns: bool           # threads taking turns on the GIL (else one thread)


@dataclass(frozen=True)
class WaitsOverlapped(Fact):
    io_s: float                  # the waits as if made one after another
    at_once: int
    event_loop: bool
    serial_s: float = 0.0        # the CPU between the waits that stays on one core (a GIL's)


@dataclass(frozen=True)
class ChildrenAtOnce(Fact):
    children: int
    span_s: float
    cpu_s: float
    longest_s: float
    at_once: int


@dataclass(frozen=True)
class Indivisible(Fact):
    seconds: float


@dataclass(frozen=True)
class QueuedOnOneLock(Fact):
    seconds: float


@dataclass(frozen=True)
class WorkersStart(Fact):
    workers: int
    mid_s: float
    worst_s: float
    each_s: float
    spawns: bool
    pooled: bool = False  # each_s is what a worker adds to a fork pool's life, start to end
    pool_s: float = 0.0   # ... and the pool's own part, once


@dataclass(frozen=True)
class MachineBasis(Fact):
    """What the machine gives (measured or assumed) and the waits assumed in flight."""

    capacity: Capacity
    io_concurrency: int
    io_concurrency_own: bool
    multiplexed: bool = False    # the waits were a selector's: already many at once
    asked: bool = False          # io_concurrency is the user's (--io-concurrency)


# -- the advice's footing ---------------------------------------------------------------------

@dataclass(frozen=True)
class PredictedGain(Fact):
    prediction: Prediction
    way: str | None = None         # how a fix has it, where not by the prediction's model


@dataclass(frozen=True)
class NoModelGains(Fact):
    best: Prediction | None       # the model predicted fastest, if any
    margin: float


@dataclass(frozen=True)
class CannotPredict(Fact):
    reason: str


@dataclass(frozen=True)
class ChildrenOneAfterAnother(Fact):
    parent_pid: int
    children: int
    span_s: float
    cpu_s: float


@dataclass(frozen=True)
class ChildrenCouldOverlap(Fact):
    children: int


@dataclass(frozen=True)
class Straggler(Fact):
    pid: int
    tid: int
    name: str | None
    alone_s: float               # it computed alone this long at the end of parallel work
    idle_cores: float            # the usable cores that idled meanwhile
