"""How many cores a process may use: the machine's, fewer by CPU affinity, fewer by its cgroup's
CPU quota (v2 `cpu.max`, v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`, the smallest on the way up).

A cpuset cgroup (a container's `--cpuset-cpus`) shows in the affinity. A quota set on a cgroup
above the reader's cgroup-namespace root is not visible from inside it and is not counted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from inspector.record.procfs import Gone, Unreadable, read_text
from inspector.recording.cpus import parse_cpus
from inspector.recording.schema import LIMITED_BY_AFFINITY, LIMITED_BY_QUOTA

AFFINITY = LIMITED_BY_AFFINITY
CGROUP_QUOTA = LIMITED_BY_QUOTA


@dataclass(frozen=True)
class UsableCores:
    """A process's usable cores and what limits them."""

    machine_cores: int
    affinity_cores: int | None    # CPUs it may run on (None: could not be read)
    quota_cores: float | None     # cgroup CPU quota / period (None: no quota)
    usable_cores: float           # min of the three
    limited_by: str | None        # AFFINITY, CGROUP_QUOTA or None (all the machine's)
    cpus: frozenset[int] | None = None  # the CPUs themselves (None: not read)
    quota_cgroup: str | None = None     # the cgroup whose quota it is (see Quota)


@dataclass(frozen=True)
class Quota:
    """A cgroup CPU quota and the cgroup that sets it: the directory as this reader sees it
    (`/sys/fs/cgroup/cpu,cpuacct/docker/abc`). Processes limited by the same directory share
    the one quota; by different ones, each has its own."""

    cores: float
    cgroup: str


def usable_cores_of(machine_cores: int, affinity_cores: int | None,
                    quota_cores: float | None) -> UsableCores:
    """Combine the three; a tie between affinity and quota is put down to affinity."""
    usable: float = machine_cores
    limited_by = None
    if affinity_cores is not None and affinity_cores < usable:
        usable, limited_by = affinity_cores, AFFINITY
    if quota_cores is not None and quota_cores < usable:
        usable, limited_by = quota_cores, CGROUP_QUOTA
    return UsableCores(machine_cores, affinity_cores, quota_cores, usable, limited_by)


def parse_cpu_list(text: str) -> int:
    """The number of CPUs in a list like '0-3,8,10-11' (Cpus_allowed_list, cpuset.cpus)."""
    count = 0
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        count += int(hi) - int(lo) + 1 if hi else 1
    return count


def affinity_cpus(pid: int) -> frozenset[int] | None:
    """os.sched_getaffinity(pid), else /proc/PID/status's Cpus_allowed_list; None when
    neither can be read. Raises procfs.Gone when the process is gone."""
    try:
        return frozenset(os.sched_getaffinity(pid))
    except ProcessLookupError:
        raise Gone() from None
    except OSError:
        pass
    try:
        status = read_text(f"/proc/{pid}/status")
    except Unreadable:
        return None
    for line in status.splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return parse_cpus(line.split(":", 1)[1])
    return None


def affinity_cores(pid: int) -> int | None:
    """How many CPUs the process may run on (affinity_cpus); None when it cannot be read."""
    cpus = affinity_cpus(pid)
    return len(cpus) if cpus is not None else None


def parse_cpu_max(text: str) -> float | None:
    """cgroup v2 cpu.max: 'max 100000' -> None (no quota); '50000 100000' -> 0.5 cores."""
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    period = int(parts[1]) if len(parts) > 1 else 100_000
    return int(parts[0]) / period


def parse_cfs(quota_text: str, period_text: str) -> float | None:
    """cgroup v1 cpu.cfs_quota_us and cpu.cfs_period_us: quota -1 -> None; else quota/period."""
    quota = int(quota_text.strip())
    if quota < 0:
        return None
    return quota / int(period_text.strip())


@dataclass(frozen=True)
class CgroupMount:
    """A cgroup filesystem as mounted here: which cgroup path `root` shows at `mount_point`."""

    version: int              # 1 or 2
    controllers: frozenset[str]
    root: str
    mount_point: str


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal.
    return (field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
            .replace("\\134", "\\"))


def parse_mountinfo(text: str) -> list[CgroupMount]:
    """The cgroup and cgroup2 mounts in a /proc/PID/mountinfo text."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        fstype = tail[0]
        if fstype == "cgroup2":
            mounts.append(CgroupMount(2, frozenset(), _unescape(fields[3]),
                                      _unescape(fields[4])))
        elif fstype == "cgroup":
            options = frozenset(tail[2].split(","))
            mounts.append(CgroupMount(1, options, _unescape(fields[3]), _unescape(fields[4])))
    return mounts


def parse_proc_cgroup(text: str) -> list[tuple[int, frozenset[str], str]]:
    """(hierarchy id, controllers, path) for each line of /proc/PID/cgroup; v2's id is 0 and
    its controllers empty."""
    out = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers = frozenset(c for c in parts[1].split(",") if c)
        out.append((int(parts[0]), controllers, parts[2]))
    return out


def _dirs_up(mount: CgroupMount, path: str) -> list[str]:
    """The directories from the process's cgroup up to the mount's root, or [] when the path
    lies outside what the mount shows."""
    root = mount.root.rstrip("/")
    if root and path != root and not path.startswith(root + "/"):
        return []
    rel = path[len(root):].strip("/")
    parts = rel.split("/") if rel else []
    return [os.path.join(mount.mount_point, *parts[:i]) for i in range(len(parts), -1, -1)]


def _read_quiet(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _quota_in(directory: str, version: int) -> float | None:
    try:
        if version == 2:
            text = _read_quiet(os.path.join(directory, "cpu.max"))
            return parse_cpu_max(text) if text is not None else None
        quota = _read_quiet(os.path.join(directory, "cpu.cfs_quota_us"))
        period = _read_quiet(os.path.join(directory, "cpu.cfs_period_us"))
        if quota is None or period is None:
            return None
        return parse_cfs(quota, period)
    except (ValueError, ZeroDivisionError):
        return None


def quota_cores_from(proc_cgroup_text: str, mountinfo_text: str) -> float | None:
    """The smallest CPU quota, in cores, on the way from the process's cgroup up to the
    cgroup root, in the v1 hierarchy holding the cpu controller and in the v2 hierarchy
    (a kernel binds the cpu controller to one of them, so at most one has quota files).
    None when no cgroup on the way sets a quota."""
    quota = quota_from(proc_cgroup_text, mountinfo_text)
    return quota.cores if quota is not None else None


def quota_from(proc_cgroup_text: str, mountinfo_text: str) -> Quota | None:
    """quota_cores_from's quota and the cgroup directory that sets it: of equal quotas on the
    way up, the outermost, which more processes share."""
    mounts = parse_mountinfo(mountinfo_text)
    smallest: Quota | None = None
    for hierarchy_id, controllers, path in parse_proc_cgroup(proc_cgroup_text):
        if hierarchy_id == 0:
            candidates = [m for m in mounts if m.version == 2]
        elif "cpu" in controllers:
            candidates = [m for m in mounts if m.version == 1 and "cpu" in m.controllers]
        else:
            continue
        for mount in candidates:
            dirs = _dirs_up(mount, path)
            if not dirs:
                continue
            for directory in dirs:
                quota = _quota_in(directory, mount.version)
                if quota is not None and (smallest is None or quota <= smallest.cores):
                    smallest = Quota(quota, directory)
            break  # one mount of a hierarchy shows it all
    return smallest


def quota_of(pid: int) -> Quota | None:
    """The process's cgroup CPU quota and where it is set (None: none set, or cgroups
    unreadable). Raises procfs.Gone when the process is gone."""
    try:
        proc_cgroup = read_text(f"/proc/{pid}/cgroup")
        mountinfo = read_text("/proc/self/mountinfo")  # the cgroupfs we can read, as we see it
    except Unreadable:
        return None
    return quota_from(proc_cgroup, mountinfo)


def quota_cores(pid: int) -> float | None:
    """The process's cgroup CPU quota in cores (None: none set, or cgroups unreadable).
    Raises procfs.Gone when the process is gone."""
    quota = quota_of(pid)
    return quota.cores if quota is not None else None


def usable_cores_with(machine_cores: int, cpus: frozenset[int] | None,
                      quota: Quota | None) -> UsableCores:
    """usable_cores_of, keeping the CPU set and the quota's cgroup."""
    u = usable_cores_of(machine_cores, len(cpus) if cpus is not None else None,
                        quota.cores if quota is not None else None)
    return replace(u, cpus=cpus, quota_cgroup=quota.cgroup if quota is not None else None)


def usable_cores(pid: int) -> UsableCores:
    """The cores a live process may use. Raises procfs.Gone when it is gone."""
    return usable_cores_with(os.cpu_count() or 1, affinity_cpus(pid), quota_of(pid))


__all__ = ["AFFINITY", "CGROUP_QUOTA", "CgroupMount", "Quota", "UsableCores", "affinity_cores",
           "affinity_cpus", "parse_cfs", "parse_cpu_list", "parse_cpu_max", "parse_mountinfo",
           "parse_proc_cgroup", "quota_cores", "quota_cores_from", "quota_from", "quota_of",
           "usable_cores", "usable_cores_of", "usable_cores_with"]
