"""Usable cores of real processes: pinned by affinity, limited by a real cgroup v1 CPU quota
(this machine binds the cpu controller to v1), and the v2 `cpu.max` walk over files laid out
like cgroupfs (no v2 cpu controller here to create a real one)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from machine import skip_or_fail

from inspector.analyze.evidence import Cores
from inspector.record import cores
from inspector.record.cores import (
    AFFINITY,
    CGROUP_QUOTA,
    affinity_cores,
    parse_cfs,
    parse_cpu_list,
    parse_cpu_max,
    quota_cores,
    quota_cores_from,
    usable_cores,
    usable_cores_of,
)
from inspector.record.procfs import read_text
from inspector.text.evidence import cores_sentence

MACHINE = os.cpu_count() or 1
CPU_V1 = Path("/sys/fs/cgroup/cpu")
needs_two_cores = pytest.mark.skipif(MACHINE < 2, reason="pinning to one core limits nothing")


def _said(found: cores.UsableCores) -> str:
    """How the summary says what was found."""
    return cores_sentence(Cores(found.machine_cores, found.usable_cores, found.limited_by))


def _idle_child(**kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE, **kwargs)


def _end(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


@needs_two_cores
def test_a_program_under_taskset_has_one_usable_core_by_affinity() -> None:
    proc = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c",
                             "import sys; print('ready', flush=True); sys.stdin.read()"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # taskset has set the affinity and exec'd the program
        found = usable_cores(proc.pid)
        assert found.affinity_cores == 1 and found.usable_cores == 1
        assert found.limited_by == AFFINITY and found.machine_cores == MACHINE
        assert _said(found) == (f"{MACHINE} cores on this machine, "
                                "1 usable by this program (affinity)")
    finally:
        _end(proc)


@needs_two_cores
def test_sched_setaffinity_before_exec_is_seen_and_the_status_file_agrees() -> None:
    proc = _idle_child(preexec_fn=lambda: os.sched_setaffinity(0, {1}))
    try:
        assert affinity_cores(proc.pid) == 1
        status = read_text(f"/proc/{proc.pid}/status")
        listed = next(line for line in status.splitlines()
                      if line.startswith("Cpus_allowed_list:"))
        assert parse_cpu_list(listed.split(":", 1)[1]) == 1
        assert usable_cores(proc.pid).limited_by == AFFINITY
    finally:
        _end(proc)


def test_an_unconstrained_program_may_use_the_whole_machine() -> None:
    proc = _idle_child()
    try:
        found = usable_cores(proc.pid)
        assert found.affinity_cores == MACHINE and found.usable_cores == MACHINE
        assert found.limited_by is None and found.quota_cores is None
        assert _said(found).endswith("all usable by this program")
    finally:
        _end(proc)


def _make_cgroup(path: Path) -> None:
    try:
        path.mkdir()
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT):
            skip_or_fail(f"cannot create a cgroup here ({e.strerror}): "
                         "the parser tests on cgroupfs-like files below still run")
        raise


def test_a_real_cgroup_v1_quota_of_half_a_core_is_found_through_a_child_cgroup() -> None:
    if not (CPU_V1 / "cpu.cfs_quota_us").exists():
        skip_or_fail("no cgroup v1 cpu hierarchy at /sys/fs/cgroup/cpu on this machine")
    parent = CPU_V1 / f"inspector-test-{os.getpid()}"
    child = parent / "inner"
    _make_cgroup(parent)
    proc = None
    try:
        child.mkdir()
        (parent / "cpu.cfs_quota_us").write_text("50000")  # period is 100000: half a core
        proc = _idle_child()
        (child / "cgroup.procs").write_text(str(proc.pid))
        assert f":/inspector-test-{os.getpid()}/inner" in read_text(f"/proc/{proc.pid}/cgroup")
        assert quota_cores(proc.pid) == 0.5  # set on the parent, found walking up
        found = usable_cores(proc.pid)
        assert found.quota_cores == 0.5 and found.usable_cores == 0.5
        assert found.limited_by == CGROUP_QUOTA
        assert _said(found).endswith("0.5 usable by this program (cgroup quota)")
        (child / "cpu.cfs_quota_us").write_text("20000")  # the smaller one on the way wins
        assert quota_cores(proc.pid) == 0.2
    finally:
        if proc is not None:
            _end(proc)
        for d in (child, parent):
            if d.exists():
                d.rmdir()


def _cgroupfs(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _mountinfo_v2(mount_point: Path, root: str = "/") -> str:
    return (f"22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
            f"35 24 0:30 {root} {mount_point} rw,nosuid,nodev - cgroup2 cgroup2 rw\n")


def test_v2_cpu_max_is_the_smallest_quota_on_the_way_up(tmp_path: Path) -> None:
    root = _cgroupfs(tmp_path, {
        "cgroup.controllers": "cpu memory\n",          # the root has no cpu.max
        "system.slice/cpu.max": "150000 100000\n",
        "system.slice/app.service/cpu.max": "max 100000\n",
        "system.slice/app.service/worker/cpu.max": "max 100000\n",
    })
    text = "0::/system.slice/app.service/worker\n"
    assert quota_cores_from(text, _mountinfo_v2(root)) == 1.5
    (root / "system.slice/app.service/cpu.max").write_text("50000 100000\n")
    assert quota_cores_from(text, _mountinfo_v2(root)) == 0.5
    assert quota_cores_from("0::/\n", _mountinfo_v2(root)) is None


def test_v2_inside_a_cgroup_namespace_reads_from_the_mounts_root(tmp_path: Path) -> None:
    # A container sees its own cgroup at the mount point; /proc/PID/cgroup paths as the
    # host shows them start with the mount's root.
    root = _cgroupfs(tmp_path, {"cpu.max": "200000 100000\n", "job/cpu.max": "max 100000\n"})
    assert quota_cores_from("0::/kubepods/pod1/job\n",
                            _mountinfo_v2(root, root="/kubepods/pod1")) == 2.0
    assert quota_cores_from("0::/elsewhere\n", _mountinfo_v2(root, root="/kubepods/pod1")) is None


def test_v1_files_laid_out_like_cgroupfs(tmp_path: Path) -> None:
    root = _cgroupfs(tmp_path, {
        "cpu.cfs_quota_us": "-1\n", "cpu.cfs_period_us": "100000\n",
        "docker/abc/cpu.cfs_quota_us": "150000\n", "docker/abc/cpu.cfs_period_us": "100000\n",
    })
    mountinfo = (f"30 24 0:26 / {root} rw - cgroup cgroup rw,cpu,cpuacct\n"
                 f"31 24 0:27 / {tmp_path} rw - cgroup cgroup rw,cpuset\n")
    assert quota_cores_from("5:cpuset:/\n4:cpu,cpuacct:/docker/abc\n", mountinfo) == 1.5
    assert quota_cores_from("4:cpu,cpuacct:/\n", mountinfo) is None


def test_quota_and_affinity_files_parse() -> None:
    assert parse_cpu_max("max 100000\n") is None
    assert parse_cpu_max("50000 100000\n") == 0.5
    assert parse_cfs("-1\n", "100000\n") is None and parse_cfs("250000", "100000") == 2.5
    assert parse_cpu_list("0-3,8,10-11\n") == 7 and parse_cpu_list("0") == 1


def test_the_tightest_limit_names_the_reason() -> None:
    assert usable_cores_of(8, 2, 3.5).limited_by == AFFINITY
    assert usable_cores_of(8, 8, 3.5).limited_by == CGROUP_QUOTA
    assert usable_cores_of(8, 8, 3.5).usable_cores == 3.5
    assert usable_cores_of(2, None, None).limited_by is None
    assert _said(usable_cores_of(1, 1, None)) == (
        "1 core on this machine, all usable by this program")
    assert _said(cores.usable_cores_of(2, 1, None)) == (
        "2 cores on this machine, 1 usable by this program (affinity)")
