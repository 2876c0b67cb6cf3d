"""What a diagnosis hands every renderer: the facts of each process and thread, the run's
verdict with its evidence, and the Diagnosis that holds them all. Data only: the words are
the vocabulary's and the text layer's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from inspector.analyze.eventloop import LoopBlock
from inspector.analyze.evidence import Cores, Fact, MachineBasis
from inspector.analyze.locks import LockContention
from inspector.analyze.predict import Prediction
from inspector.analyze.vocabulary import AdviceKey, Bound
from inspector.analyze.wall import Phase, WallTime


@dataclass(frozen=True)
class ProcessFacts:
    proc_id: int
    pid: int
    ppid: int | None
    cmdline: tuple[str, ...]
    python: bool
    python_version: str | None
    python_gil: str | None
    threads_peak: int
    cpu_percent_mean: float
    cpu_percent_peak: float
    rss_peak_bytes: int
    start_s: float
    end_s: float
    exit_code: int | None
    gil_held_share: float | None    # of py-spy --gil samples, some thread held the GIL
    bound: Bound
    gil_limited: bool
    parallel_threads: bool
    state_s: dict[str, float]
    # threads were runnable at once without a GIL between them, whatever cores they got
    threads_runnable_together: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cmdline"] = list(self.cmdline)
        return d


@dataclass(frozen=True)
class ThreadFacts:
    proc_id: int
    pid: int
    tid: int
    name: str | None
    cpu_s: float
    state_s: dict[str, float]
    sampled_s: float
    busy: bool                      # wanted the CPU or waited on I/O for most of its life
    top_frames: tuple[tuple[str, float], ...]  # (frame, seconds) where py-spy saw it most

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["top_frames"] = [{"frame": f, "seconds": s} for f, s in self.top_frames]
        return d


@dataclass(frozen=True)
class Verdict:
    bound: Bound
    gil_limited: bool
    parallel_threads: bool
    oversubscribed: bool
    advice: AdviceKey
    evidence: tuple[Fact, ...]     # worded by inspector/text/evidence.py

@dataclass(frozen=True)
class PeakProcess:
    pid: int
    ppid: int | None
    name: str
    python: bool
    threads: int
    cmdline: tuple[str, ...]
    thread_names: tuple[str, ...] = ()   # of the threads alive then, as far as recorded


@dataclass(frozen=True)
class Diagnosis:
    command: tuple[str, ...]
    exit_code: int | None
    duration_s: float
    cpu_count: int
    process_count: int
    peak_threads: int
    htop_rows_peak: int
    processes: tuple[ProcessFacts, ...]
    threads: tuple[ThreadFacts, ...]
    verdict: Verdict
    event_loop_blocks: tuple[LoopBlock, ...]
    peak_t_s: float | None = None
    peak_processes: tuple[PeakProcess, ...] = ()
    intervals: int = 0                  # thread-sample intervals analysed
    stacks_enabled: bool = False
    notes: tuple[Fact, ...] = field(default_factory=tuple)  # what limits the recording itself
    usable_cores: float = 0.0           # cores the program could use (affinity, cgroup quota)
    cores_limited_by: str | None = None
    wall: WallTime | None = None        # the run's wall clock by what the tree did
    phases: tuple[Phase, ...] = ()      # two or more when the behaviour changed
    verdict_phase: Phase | None = None  # the phase the verdict and advice address
    lock_contention: LockContention | None = None
    loop_starved: tuple[LoopBlock, ...] = ()  # loop stretches starved of CPU, not blocked
    predicted: dict[str, Prediction | str] = field(default_factory=dict)
    recorder_cores: float | None = None  # mean cores the recorder and py-spy took
    other_cores: float | None = None     # mean cores other programs took meanwhile
    gil_waits_by_address_share: float | None = None  # of futex waits, told by the address
    # what the predictions took from the machine (measured or assumed) and the waits in flight
    machine: MachineBasis | None = None

    @property
    def cores(self) -> Cores:
        return Cores(self.cpu_count, self.usable_cores, self.cores_limited_by)
