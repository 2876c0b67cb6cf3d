"""How much of the machine's CPU other programs used while we ran something: /proc/stat's busy
time less our own CPU (this process and every child it has waited for). `inspector demo` and
benchmarks/run.py flag or set aside the runs during which the machine was busy.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass

# A run during which other processes used more than this share of the machine's CPU is busy:
# on 2 shared cores one neighbour's test run can double a 2-process job's time, so a measured
# speed-up then says more about the neighbour than about the job.
BUSY_SHARE = 0.10


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat: user..softirq, not steal)."""
    with open("/proc/stat") as f:
        return busy_s_of(f.readline())


def busy_s_of(cpu_line: str) -> float:
    """The busy seconds of /proc/stat's first ('cpu ...') line."""
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in cpu_line.split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """This process's CPU and that of every child it has waited for (their trees too)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        total += ru.ru_utime + ru.ru_stime
    return total


@dataclass(frozen=True)
class CpuMark:
    """A point to measure others' load from: `mark = CpuMark.now(); ...; mark.foreign_share()`."""

    machine_busy_s: float
    own_s: float
    t_s: float  # time.perf_counter()

    @classmethod
    def now(cls) -> CpuMark:
        return cls(machine_busy_s(), own_cpu_s(), time.perf_counter())

    def foreign_share(self, wall_s: float | None = None) -> float:
        """The share (0..1) of the machine's CPU that other processes used since this mark,
        over `wall_s` (default: the time since the mark). Call it after waiting for the
        children whose CPU is ours, or their CPU counts as others'."""
        busy = machine_busy_s() - self.machine_busy_s
        own = own_cpu_s() - self.own_s
        span = wall_s if wall_s is not None else time.perf_counter() - self.t_s
        if span <= 0:
            return 0.0
        return min(1.0, max(0.0, busy - own) / (span * (os.cpu_count() or 1)))
