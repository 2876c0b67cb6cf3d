"""The cores the program could use, moment by moment: at each sampling interval, the CPUs
the affinities of its working processes allow together, capped by their cgroup quotas, from
each process's own readings over time (`rec.process_cores`). Pure: a Recording in, numbers out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from inspector.analyze.thresholds import COMPUTING_CORES, WORKING_PROCESS_CORES
from inspector.recording import Recording
from inspector.recording.cpus import parse_cpus
from inspector.recording.schema import LIMITED_BY_AFFINITY, LIMITED_BY_QUOTA
from inspector.recording.values import opt_float, opt_str

# The cgroup of a quota whose cgroup the file does not name: all such quotas are taken as one
# shared quota: the processes of one tree inherit their parent's cgroup.
_UNNAMED_CGROUP = "?"


@dataclass(frozen=True)
class _Cores:
    """One process's cores as read once: its host (a merged recording's CPU numbers are each
    host's own; None in one host's), its CPUs as a bit mask (bit n: CPU n), and its quota with
    the cgroup that sets it (None: no quota)."""

    host: str | None
    cpus: int
    quota: float | None
    group: str | None


def usable_cores_over_time(rec: Recording) -> pd.Series:
    """Indexed by sample time `t_s` (the interval ending then): the cores the processes of
    the tree working in that interval could use together. Working: used at least
    WORKING_PROCESS_CORES of a core in it; where none did, every process alive then.

    Together: the CPUs in the union of their affinities (two processes pinned to one CPU have
    one core between them; pinned to two, two), capped by their quotas: processes naming the
    same cgroup share its quota (the smallest any of them read), different cgroups add up;
    never above the machine's CPUs. A file without process_cores (older than it) gives the
    target's latest value throughout (`rec.usable_cores`, as before it)."""
    frame = _over_time(rec)
    return pd.Series(frame["usable_cores"].to_numpy(dtype="float64"),
                     index=pd.Index(frame["t_s"].to_numpy(dtype="float64"), name="t_s"),
                     name="usable_cores")


def usable_cores_summary(rec: Recording) -> tuple[float, str | None]:
    """The usable cores for the verdict, and what limited them ('affinity', 'cgroup quota',
    or None when they are all the machine's CPUs).

    The value in force over most of the computing time (the tree used COMPUTING_CORES or
    more, or half of what a quota under a core allowed): the time-weighted median of
    usable_cores_over_time over those intervals, the lower one where the time splits evenly,
    so waits for a core in a pinned stretch are not put down to others. Not the mean: a run
    pinned to 1 CPU for 60% of its work and free on 2 for the rest had 1 core and then 2,
    never 1.4, and a sentence such as "1 usable by this program (affinity)" must be true of
    most of the work. Where nothing computed, the same over every interval; a file without
    process_cores gives `rec.usable_cores` and `rec.cores_limited_by`, as before it."""
    machine = float(max(1, rec.cpu_count))
    frame = _over_time(rec)
    if frame.empty:
        usable = min(machine, rec.usable_cores)
        return usable, rec.cores_limited_by if usable < machine else None
    # A quota below a core caps the CPU the tree can use below COMPUTING_CORES: there, half
    # of what it could use is computing.
    computing = frame["cores"].to_numpy(dtype="float64") >= COMPUTING_CORES * np.minimum(
        1.0, frame["usable_cores"].to_numpy(dtype="float64"))
    if computing.any():
        frame = frame[computing]
    values = frame["usable_cores"].to_numpy(dtype="float64")
    weights = frame["dt_s"].to_numpy(dtype="float64")
    usable = _lower_weighted_median(values, weights)
    if usable >= machine:
        return machine, None
    at = frame[values == usable]
    reasons = at.groupby("cores_limited_by", sort=True)["dt_s"].sum()
    return usable, (str(reasons.idxmax()) if not reasons.empty else None)


def _lower_weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    if not len(cumulative) or cumulative[-1] <= 0:
        return float(values.min()) if len(values) else 0.0
    at = int(np.searchsorted(cumulative, cumulative[-1] / 2.0, side="left"))
    return float(values[order][min(at, len(order) - 1)])


def _over_time(rec: Recording) -> pd.DataFrame:
    """One row per sample time: t_s, dt_s (the interval it ends), cores (the tree's CPU in
    it), usable_cores, cores_limited_by (None where all the machine's)."""
    columns = ["t_s", "dt_s", "cores", "usable_cores", "cores_limited_by"]
    ps = rec.process_samples
    if ps.empty:
        return pd.DataFrame(columns=columns)
    machine = max(1, rec.cpu_count)
    t = ps["t_s"].to_numpy(dtype="float64")
    proc = ps["proc_id"].to_numpy(dtype="float64")
    used = (ps["cpu_percent"].to_numpy(dtype="float64") / 100.0
            if "cpu_percent" in ps.columns else np.zeros(len(ps)))
    ok = np.isfinite(t) & np.isfinite(proc)
    t, proc, used = t[ok], proc[ok].astype(np.int64), np.nan_to_num(used[ok], nan=0.0)
    ticks, tick_of = np.unique(t, return_inverse=True)
    dt = np.diff(ticks, prepend=ticks[0] - rec.interval_s) if len(ticks) else ticks
    tree_cores = np.bincount(tick_of, weights=used, minlength=len(ticks))
    if rec.process_cores.empty:  # older files: the target's latest, throughout
        usable = min(float(machine), rec.usable_cores)
        reason = rec.cores_limited_by if usable < machine else None
        return pd.DataFrame({"t_s": ticks, "dt_s": dt, "cores": tree_cores,
                             "usable_cores": usable, "cores_limited_by": reason})
    states, state_of = _states(rec, machine, proc, t)
    working = used >= WORKING_PROCESS_CORES
    anyone = np.bincount(tick_of, weights=working, minlength=len(ticks)) > 0
    counted = working | ~anyone[tick_of]
    pairs = np.unique(np.stack([tick_of[counted], state_of[counted]]), axis=1)
    bounds = np.flatnonzero(np.diff(pairs[0])) + 1
    memo: dict[tuple[int, ...], tuple[float, str | None]] = {}
    usable_at = np.full(len(ticks), float(machine))
    reason_at: list[str | None] = [None] * len(ticks)
    for tick_states in np.split(pairs, bounds, axis=1):
        if not tick_states.shape[1]:
            continue
        key = tuple(tick_states[1].tolist())
        if key not in memo:
            memo[key] = _together([states[i] for i in key], machine)
        i = int(tick_states[0, 0])
        usable_at[i], reason_at[i] = memo[key]
    return pd.DataFrame({"t_s": ticks, "dt_s": dt, "cores": tree_cores,
                         "usable_cores": usable_at, "cores_limited_by": reason_at})


def _states(rec: Recording, machine: int, proc: np.ndarray, t: np.ndarray
            ) -> tuple[list[_Cores], np.ndarray]:
    """Every reading of process_cores as a _Cores, and for each sample (proc[i], t[i]) the
    index of the one in force: the latest read at or before it (a sample before a process's
    first reading: that first reading). A process with no reading gets its processes row's."""
    read = _Reader(rec, machine)
    pc = rec.process_cores
    states: list[_Cores] = []
    readings: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    pc_proc = pc["proc_id"].to_numpy(dtype="float64")
    pc_t = pc["t_s"].to_numpy(dtype="float64")
    for proc_id in np.unique(pc_proc[np.isfinite(pc_proc)]).astype(np.int64).tolist():
        rows = pc[(pc_proc == proc_id) & np.isfinite(pc_t)].sort_values("t_s", kind="stable")
        first = len(states)
        for cpus, quota, group in zip(rows["cpus"].tolist(), rows["quota_cores"].tolist(),
                                      rows["quota_cgroup"].tolist()):
            states.append(read(proc_id, cpus, quota, group))
        if len(states) > first:
            readings[proc_id] = (rows["t_s"].to_numpy(dtype="float64"),
                                 np.arange(first, len(states)))
    # processes without a reading (the recorder could not read them): all the machine's
    # CPUs, which it could not tell apart, and their processes row's quota
    unread = {-1: len(states)}  # -1: a sample of a process the processes table lacks
    states.append(read(None, None, None, None))
    procs = rec.processes
    quotas = (procs["quota_cores"].tolist() if "quota_cores" in procs.columns
              else [None] * len(procs))
    for proc_id, quota in zip(procs["proc_id"].tolist(), quotas):
        if proc_id == proc_id and int(proc_id) not in readings:  # not NaN
            unread[int(proc_id)] = len(states)
            states.append(read(int(proc_id), None, quota, None))
    state_of = np.zeros(len(t), dtype=np.int64)
    for proc_id in np.unique(proc).tolist():
        at = proc == proc_id
        if proc_id in readings:
            times, ids = readings[proc_id]
            k = np.searchsorted(times, t[at], side="right") - 1
            state_of[at] = ids[np.clip(k, 0, len(ids) - 1)]
        else:
            state_of[at] = unread.get(proc_id, unread[-1])
    return states, state_of


class _Reader:
    """A process_cores row's values as a _Cores, checked: a CPU list that is none (damaged,
    or unread) is all its machine's CPUs; a quota that is no positive finite number, none.
    Equal rows give one object (a file is untrusted: each distinct CPU list is parsed once,
    and a mask of its at most MAX_CPUS bits is all that is kept of it)."""

    def __init__(self, rec: Recording, machine: int) -> None:
        self.machine = machine
        self.merged = rec.meta.merge
        self.hosts = _hosts(rec)
        self.masks: dict[object, int | None] = {}
        self.made: dict[tuple[object, ...], _Cores] = {}

    def __call__(self, proc_id: int | None, cpus: object, quota: object, group: object
                 ) -> _Cores:
        host = self.hosts.get(proc_id) if proc_id is not None else None
        q = opt_float(quota) if isinstance(quota, (int, float)) else None
        if q is None or not math.isfinite(q) or q <= 0:
            q, group = None, None
        key = (host, cpus if isinstance(cpus, str) else None, q,
               (opt_str(group) or _UNNAMED_CGROUP) if q is not None else None)
        made = self.made.get(key)
        if made is None:
            mask = self._mask(key[1])
            made = self.made[key] = _Cores(host, mask if mask is not None else self._all(host),
                                           q, key[3])
        return made

    def _mask(self, text: str | None) -> int | None:
        if text not in self.masks:
            cpus = parse_cpus(text)
            self.masks[text] = sum(1 << c for c in cpus) if cpus is not None else None
        return self.masks[text]

    def _all(self, host: str | None) -> int:
        """Every CPU of the process's machine: its host's in a merged recording."""
        merged = self.merged
        count = (merged.cpu_count_by_host.get(host, self.machine) if merged and host
                 else self.machine)
        return (1 << max(1, int(count))) - 1


def _hosts(rec: Recording) -> dict[int, str | None]:
    """Each process's host in a merged recording (whose CPU numbers are each host's own);
    None in one host's."""
    procs = rec.processes
    if "host" not in procs.columns:
        return {}
    out: dict[int, str | None] = {}
    for proc_id, host in zip(procs["proc_id"].tolist(), procs["host"].tolist()):
        if proc_id == proc_id:
            out[int(proc_id)] = opt_str(host)
    return out


def _together(states: list[_Cores], machine: int) -> tuple[float, str | None]:
    """The cores some processes could use at once, and what limited them."""
    cpus: dict[str | None, int] = {}  # by host
    # by cgroup (of a host): its quota (the smallest read) and its processes' CPUs; the
    # processes without a quota: no quota, their CPUs
    by_group: dict[tuple[str | None, str | None], tuple[float, int]] = {}
    for s in states:
        cpus[s.host] = cpus.get(s.host, 0) | s.cpus
        quota, group_cpus = by_group.get((s.host, s.group), (math.inf, 0))
        by_group[(s.host, s.group)] = (min(quota, s.quota if s.quota is not None else math.inf),
                                       group_cpus | s.cpus)
    by_cpus = float(min(sum(_count(mask) for mask in cpus.values()), machine))
    by_quota = sum(min(quota, float(_count(mask))) for quota, mask in by_group.values())
    usable = min(by_cpus, by_quota)
    if usable >= machine:
        return float(machine), None
    return usable, LIMITED_BY_QUOTA if by_quota < by_cpus else LIMITED_BY_AFFINITY


def _count(mask: int) -> int:
    return bin(mask).count("1")  # int.bit_count() is Python 3.10's
