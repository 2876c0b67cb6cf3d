"""The loaded recording: `Recording`, its meta and its tables as pandas DataFrames, and what
follows from them (the target's usable cores, the sampling settings in force)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from inspector.recording.meta import Meta, Settings
from inspector.recording.schema import DEFAULT_INTERVAL_S, DEFAULT_RATE_HZ


@dataclass
class Recording:
    """A loaded recording. Times (`t_s`, `start_s`, `end_s`) are seconds since it started;
    `meta` says what was run, where and how (recording/meta.py)."""

    path: Path
    meta: Meta
    processes: pd.DataFrame
    threads: pd.DataFrame
    process_samples: pd.DataFrame
    thread_samples: pd.DataFrame
    stacks: pd.DataFrame
    problems: pd.DataFrame = field(default_factory=pd.DataFrame)
    gil_samples: pd.DataFrame = field(default_factory=pd.DataFrame)
    machine_samples: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Each process's cores as first seen and at each change (empty in files before it)
    process_cores: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def duration_s(self) -> float:
        return float(self.meta.duration_s)

    @property
    def cpu_count(self) -> int:
        """The machine's logical CPUs (a merged recording's: every host's), or this
        machine's where the file does not say."""
        return int(self.meta.cpu_count or os.cpu_count() or 1)

    @property
    def usable_cores(self) -> float:
        """Cores the program could use: its first process's affinity and cgroup quota, or
        the machine's CPUs where the recording does not say (older files)."""
        machine = float(self.cpu_count)
        if "usable_cores" not in self.processes.columns or self.processes.empty:
            return machine
        p = self._root_process()
        value = pd.to_numeric(pd.Series([p.get("usable_cores")]), errors="coerce").iloc[0]
        return float(min(machine, value)) if value == value and value > 0 else machine

    @property
    def cores_limited_by(self) -> str | None:
        """'affinity' or 'cgroup quota' where either leaves fewer usable cores than CPUs."""
        if "cores_limited_by" not in self.processes.columns or self.processes.empty:
            return None
        value = self._root_process().get("cores_limited_by")
        return value if isinstance(value, str) else None

    def _root_process(self) -> pd.Series:
        procs = self.processes
        target = procs[procs["is_target"]] if "is_target" in procs.columns else procs
        return (target if not target.empty else procs).iloc[0]

    @property
    def settings(self) -> Settings:
        """How `inspector record` was asked to sample: interval_s, rate_hz, stacks."""
        return self.meta.settings

    @property
    def interval_s(self) -> float:
        """Seconds between two /proc sampling rounds."""
        return float(self.settings.interval_s or DEFAULT_INTERVAL_S)

    @property
    def stack_rate_hz(self) -> float:
        """Python stack samples per second per thread that py-spy actually took: the asked
        rate, or the lowest one the recorder fell to for a tree of many threads."""
        return float(self.meta.stacks.rate_hz_used or self.settings.rate_hz or DEFAULT_RATE_HZ)


