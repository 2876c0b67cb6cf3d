"""The machine around the recording, once a tick: how many cores everything was using
(/proc/stat), and how much of that was the recorder itself and the py-spy runs it started,
so a diagnosis can tell "waiting for a core" caused by other programs, or by us.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from inspector.machine_load import busy_s_of
from inspector.record import procfs
from inspector.record.procfs import Gone, ProcFile, Unreadable


@dataclass(frozen=True)
class MachineSample:
    t_s: float
    busy_cores: float       # every CPU of the machine, busy (not idle/iowait), in cores
    recorder_cores: float   # the recorder's process and its py-spy children


class MachineMeter:
    """Reads /proc/stat and the recorder's own stat files (kept open) each tick; gives the
    cores used since the previous reading."""

    def __init__(self) -> None:
        self._stat = ProcFile("/proc/stat")
        self._self = ProcFile(f"/proc/{os.getpid()}/stat")
        self._helpers: dict[int, ProcFile] = {}
        self._gone: set[int] = set()             # helpers seen ended: not opened again
        self._helper_cpu: dict[int, float] = {}   # each live helper's CPU when last read
        self._ended_cpu = 0.0                     # what ended helpers used, as last read
        self._last: tuple[float, float, float] | None = None  # t, machine busy s, ours s
        # the first and latest readings of (t, own CPU s, helpers' CPU s): the run's means
        self._first_own: tuple[float, float, float] | None = None
        self._last_own: tuple[float, float, float] | None = None

    def close(self) -> None:
        self._stat.close()
        self._self.close()
        for f in self._helpers.values():
            f.close()
        self._helpers.clear()

    def read(self, t_s: float, helper_pids: set[int]) -> MachineSample | None:
        """The cores used since the last call (None at the first call, or if unreadable)."""
        try:
            busy = _machine_busy_s(self._stat.read())
            own, helpers = _own_cpu_s(self._self.read()), self._helpers_cpu(helper_pids)
        except (Gone, Unreadable, ValueError, IndexError):
            return None
        return self._sample(t_s, busy, own, helpers)

    def _sample(self, t_s: float, busy: float, own: float, helpers: float
                ) -> MachineSample | None:
        """The cores used since the previous reading, from cumulative CPU seconds (the
        machine's busy time, the recorder's own, its helpers')."""
        ours = own + helpers
        self._last_own = (t_s, own, helpers)
        if self._first_own is None:
            self._first_own = self._last_own
        last, self._last = self._last, (t_s, busy, ours)
        if last is None or t_s <= last[0]:
            return None
        dt = t_s - last[0]
        return MachineSample(t_s=t_s, busy_cores=max(0.0, (busy - last[1]) / dt),
                             recorder_cores=max(0.0, (ours - last[2]) / dt))

    def so_far(self) -> tuple[float, float, float] | None:
        """(seconds, own CPU s, helpers' CPU s) from the first reading to the latest."""
        first, last = self._first_own, self._last_own
        if first is None or last is None:
            return None
        return last[0] - first[0], last[1] - first[1], last[2] - first[2]

    def mean_cores(self) -> dict[str, float] | None:
        """The recorder's mean CPU in cores from its first reading to its last (the whole
        recording but the recorder's start-up): its own process, its py-spy runs, both.
        Exact, where a mean of the per-tick rows would over-weigh a short last tick."""
        so_far = self.so_far()
        if so_far is None or so_far[0] <= 0:
            return None
        dt, own_s, helpers_s = so_far
        own, helpers = own_s / dt, helpers_s / dt
        return {"mean_cores": round(own + helpers, 4), "own_cores": round(own, 4),
                "py_spy_cores": round(helpers, 4), "over_s": round(dt, 3)}

    def _helpers_cpu(self, live: set[int]) -> float:
        pids = set(live) - self._gone  # a copy: the stacks thread adds to `live` meanwhile
        for pid in list(self._helpers):
            if pid not in pids:
                self._forget(pid)
        total = 0.0
        for pid in pids:
            f = self._helpers.get(pid)
            if f is None:
                try:
                    f = self._helpers[pid] = ProcFile(f"/proc/{pid}/stat")
                except (Gone, Unreadable):
                    self._gone.add(pid)
                    continue
            try:
                cpu = _cpu_s(f.read())
            except (Gone, Unreadable, ValueError, IndexError):
                self._forget(pid)
                self._gone.add(pid)
                continue
            self._helper_cpu[pid] = cpu
            total += cpu
        return total + self._ended_cpu

    def _forget(self, pid: int) -> None:
        # An ended helper counts with the CPU it had when last read: what it used in its last
        # tick is lost (under one interval of a run of a second or more). The recorder's own
        # cutime would hold it, but also the target's and every orphan's once reaped.
        self._ended_cpu += self._helper_cpu.pop(pid, 0.0)
        f = self._helpers.pop(pid, None)
        if f is not None:
            f.close()


def _machine_busy_s(text: str) -> float:
    """Seconds all CPUs spent busy since boot (the same count as `inspector demo`'s)."""
    return busy_s_of(text.split("\n", 1)[0])


def _cpu_s(stat_text: str) -> float:
    """utime + stime of a /proc/PID/stat text."""
    rest = stat_text[stat_text.rindex(")") + 2:].split()
    # fields after comm: state(0) ppid pgrp ... utime(11) stime(12)
    return (int(rest[11]) + int(rest[12])) / procfs.CLK_TCK


_own_cpu_s = _cpu_s  # the recorder's own: its children (the target!) are not ours
