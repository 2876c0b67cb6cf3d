"""The recording's meta as one typed record, `Meta`, the way every reader gets it: what it
says of the run (command, machine, settings, how stacks were sampled, how it ended). The
records only; meta_json.py reads them from the file's JSON and writes them back.
Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from inspector.recording.calibration import Calibration
from inspector.recording.schema import FORMAT_VERSION

Mode = Literal["launch", "attach", "merged"]
Backend = Literal["procfs", "psutil"]
Gil = Literal["enabled", "disabled"]

# Throughout: None is what the file does not say (absent, null, or a value of the wrong
# kind in a key load() can do without; docs/recording-format.md, "### meta").


@dataclass(frozen=True)
class Settings:
    """How `inspector record` was asked to sample (meta `settings`); `Recording.interval_s`
    and `stack_rate_hz` apply the recorder's defaults where it is silent."""

    interval_s: Optional[float] = None    # seconds between /proc rounds
    rate_hz: Optional[float] = None       # py-spy samples per second per thread asked for
    stacks: Optional[bool] = None         # whether stacks were asked for
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys a newer recorder added


@dataclass(frozen=True)
class RateChange:
    """One change of a process's stack sampling rate (meta `stacks.rates_hz_used`)."""

    t_s: float
    pid: int
    rate_hz: float


@dataclass(frozen=True)
class StacksMeta:
    """How Python stacks were sampled (meta `stacks`); `enabled` None: the file does not say
    (an older or hand-made one), False: they were not (`reason` says why)."""

    enabled: Optional[bool] = None
    reason: Optional[str] = None
    sampler: Optional[str] = None               # "py-spy"
    py_spy_version: Optional[str] = None
    mode: Optional[str] = None                  # "nonblocking"
    chunk_s: Optional[float] = None             # the first py-spy run's length
    run_lengths_s: tuple[float, ...] = ()       # the lengths of the runs, one after another
    budget_cores: Optional[float] = None        # CPU the recorder and py-spy may use
    rate_hz_used: Optional[float] = None        # the lowest rate any process was sampled at
    rates_hz_used: tuple[RateChange, ...] = ()
    gil_rate_hz: Optional[float] = None         # set only where --gil-check ran
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys a newer recorder added


@dataclass(frozen=True)
class RecorderCpu:
    """The CPU the recorder and its py-spy runs used, in cores (meta `recorder_cpu`)."""

    mean_cores: Optional[float] = None
    own_cores: Optional[float] = None
    py_spy_cores: Optional[float] = None
    over_s: Optional[float] = None


@dataclass(frozen=True)
class Interpreter:
    """A Python interpreter the recorded processes ran (meta `interpreters`)."""

    exe: Optional[str] = None
    version: Optional[str] = None
    gil: Optional[Gil] = None


@dataclass(frozen=True)
class LeftRunning:
    """A process of the tree still running when the recording finished (meta
    `left_running`)."""

    pid: Optional[int] = None
    name: Optional[str] = None


@dataclass(frozen=True)
class MergeSource:
    """One recording a merged one was made of (meta `merge.sources`)."""

    label: str                            # the Dask worker's name, or the file's stem
    path: str
    host: str
    start_time_unix: Optional[float]      # by its own clock
    clock_offset_s: float                 # its clock minus the reference clock
    clock_uncertainty_s: Optional[float]  # None: not measured
    shift_s: float                        # where its t_s = 0 lies in the merged file
    proc_ids: Optional[tuple[int, int]]   # its first and last proc_id; None: no process
    pid_offset: int                       # added to its pids and tids
    meta: Meta                            # its own meta, on its own clock


@dataclass(frozen=True)
class MergeMeta:
    """Where a merged recording's parts came from (meta `merge`)."""

    hosts: tuple[str, ...]
    cpu_count_by_host: Mapping[str, int]
    sources: tuple[MergeSource, ...]
    # the merged file's command is the run the workers served (inspector.record.dask's
    # record_cluster in the client's script), not a recorder's or `inspector merge`'s own
    command_ran_workers: bool = False


@dataclass(frozen=True)
class Meta:
    """The recording's meta: one field per key of docs/recording-format.md ("### meta");
    keys this inspector does not know (a newer recorder's) are kept in `extra`. `load()`
    gives it with `duration_s` always set (worked out from the samples for a recording
    whose recorder never finished) and older files' settings moved into `settings`."""

    format_version: int = FORMAT_VERSION
    mode: Optional[Mode] = None
    command: tuple[str, ...] = ()
    cwd: Optional[str] = None
    hostname: Optional[str] = None
    platform: Optional[str] = None
    machine: Optional[str] = None
    recorder_python: Optional[str] = None
    inspector_version: Optional[str] = None
    cpu_count: Optional[int] = None
    settings: Settings = field(default_factory=Settings)
    start_time_unix: Optional[float] = None
    stacks: StacksMeta = field(default_factory=StacksMeta)
    recorder_cpu: Optional[RecorderCpu] = None
    interpreters: tuple[Interpreter, ...] = ()
    exit_code: Optional[int] = None       # -N: killed by signal N; None in attach mode
    duration_s: float = 0.0
    left_running: tuple[LeftRunning, ...] = ()
    complete: bool = False                # whether the recorder finished normally
    ticks: Optional[int] = None
    lagged_ticks: Optional[int] = None
    ptrace_scope: Optional[int] = None
    clk_tck: Optional[int] = None
    target_pid: Optional[int] = None
    target_start_s: Optional[float] = None
    target_exit_s: Optional[float] = None
    backend: Optional[Backend] = "procfs"  # absent from files older than the key: procfs
    merge: Optional[MergeMeta] = None      # set in a merged recording only
    # the machine measured beside the recording (record/calibrate.py), at its start and,
    # where asked (--calibrate-end), at its end; None when not measured or unreadable
    calibration: Optional[Calibration] = None
    calibration_end: Optional[Calibration] = None
    extra: Mapping[str, Any] = field(default_factory=dict)
