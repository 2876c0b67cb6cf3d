"""The cores each process may use, per process and over time (issue 22, principle 3c): real
programs that pin themselves or their pool's workers after they start, or put the workers in
cgroups with a CPU quota, recorded by the real recorder; `process_cores` keeps each change
and `usable_cores_over_time` follows the working processes' CPU sets and quotas."""

from __future__ import annotations

import errno
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import turns
from machine import cores_for, for_the_recording, skip_or_fail

import inspector
from inspector.analyze import diagnose
from inspector.analyze.evidence import RecorderShare
from inspector.analyze.thresholds import WORKING_PROCESS_CORES
from inspector.analyze.usable import usable_cores_over_time, usable_cores_summary
from inspector.recording import RecordingError
from inspector.recording.cpus import format_cpus, parse_cpus
from inspector.recording.merge import Source, merge, parts
from inspector.text.evidence import cores_sentence, say

PY = sys.executable
WORKLOAD = Path(__file__).parent / "workloads" / "pin_then_pool.py"
CPU_V1 = Path("/sys/fs/cgroup/cpu")


def record(out: Path, mode: str, *args: str
           ) -> tuple[subprocess.CompletedProcess, inspector.Recording]:
    # raised priority where permitted, no pinning: the program's affinity is what is tested
    # what the pinned workers got of their cores is judged (tests/turns.py)
    with turns.alone():
        proc = subprocess.run([PY, "-m", "inspector", "record", "-q", "-o", str(out), "--", PY,
                               str(WORKLOAD), mode, *args], capture_output=True, text=True,
                              timeout=120, preexec_fn=for_the_recording(),
                              env={**os.environ, "INSPECTOR_BACKEND": "procfs"})
    assert proc.returncode == 0, proc.stderr
    return proc, inspector.load(out)


def workers(rec: inspector.Recording) -> list[int]:
    ids = rec.processes.loc[~rec.processes["is_target"], "proc_id"].astype(int).tolist()
    assert len(ids) == 2, rec.processes
    return ids


def working_ticks(rec: inspector.Recording, proc_ids: list[int], every: bool = False
                  ) -> pd.Index:
    """The sample times at which any (or every) one of `proc_ids` worked."""
    ps = rec.process_samples
    ps = ps[ps["proc_id"].isin(proc_ids) & (ps["cpu_percent"] >= 100 * WORKING_PROCESS_CORES)]
    counts = ps.groupby("t_s")["proc_id"].nunique()
    return counts[counts == len(proc_ids)].index if every else counts.index


def parent_ticks(rec: inspector.Recording) -> pd.Index:
    """The ticks at which the pool's parent worked: where it is not pinned or in a quota,
    the tree could then use its CPUs besides the workers' (the pool's start and teardown
    did, on a loaded machine and on CI)."""
    parent = rec.processes.loc[rec.processes["is_target"], "proc_id"].astype(int).tolist()
    return working_ticks(rec, parent)


def workers_alone_ticks(rec: inspector.Recording) -> pd.Index:
    """The ticks at which both workers worked and their parent did not."""
    return working_ticks(rec, workers(rec), every=True).difference(parent_ticks(rec))


def cpus_of(rec: inspector.Recording, proc_id: int) -> list[str]:
    pc = rec.process_cores
    return pc.loc[pc["proc_id"] == proc_id, "cpus"].tolist()


def machine_cpus() -> int:
    return min(os.cpu_count() or 1, len(os.sched_getaffinity(0)))


@pytest.fixture(scope="module")
def pinned_parent(tmp_path_factory: pytest.TempPathFactory
                  ) -> tuple[subprocess.CompletedProcess, inspector.Recording]:
    cores_for(2)  # pinning to one CPU limits nothing on a one-CPU machine
    return record(tmp_path_factory.mktemp("usable") / "parent.sqlite", "parent")


def test_a_pin_made_after_start_is_recorded_as_a_change_of_the_parent(pinned_parent) -> None:
    proc, rec = pinned_parent
    lowest = str(min(os.sched_getaffinity(0)))
    parent = int(rec.processes.loc[rec.processes["is_target"], "proc_id"].iloc[0])
    pc = rec.process_cores
    rows = pc[pc["proc_id"] == parent]
    # first seen free, then the pin: two rows, the CPU set itself in each
    assert rows["cpus"].tolist() == [format_cpus(os.sched_getaffinity(0)), lowest]
    assert rows["affinity_cores"].tolist() == [machine_cpus(), 1]
    assert rows["cores_limited_by"].iloc[-1] == "affinity"
    # seen at the first tick after the pin at the latest (its status file is read at each)
    m = re.search(r"pinned between [\d.]+ and ([\d.]+)", proc.stdout)
    assert m is not None, proc.stdout
    # unix time on the recording's clock; 5 ms for the pairing of the two clocks
    pinned_by_s = float(m.group(1)) - rec.meta.start_time_unix + 0.005
    ticks = rec.process_samples.loc[rec.process_samples["proc_id"] == parent, "t_s"]
    assert rows["t_s"].iloc[1] <= ticks[ticks >= pinned_by_s].min()
    # the workers, forked after it, inherit the one CPU: one row each, never changed
    for worker in workers(rec):
        assert cpus_of(rec, worker) == [lowest]
    # the processes table keeps the latest, for older readers
    assert rec.processes.loc[rec.processes["is_target"], "affinity_cores"].iloc[0] == 1


def test_a_pool_forked_after_its_parent_pinned_itself_has_one_core(pinned_parent) -> None:
    _proc, rec = pinned_parent
    usable = usable_cores_over_time(rec)
    assert usable.index.name == "t_s"
    work = working_ticks(rec, workers(rec))
    assert len(work) >= 5
    assert (usable.loc[work] == 1.0).all(), usable.loc[work]
    assert usable_cores_summary(rec) == (1.0, "affinity")


@pytest.fixture(scope="module")
def pinned_workers(tmp_path_factory: pytest.TempPathFactory
                   ) -> tuple[subprocess.CompletedProcess, inspector.Recording]:
    cores_for(2)
    return record(tmp_path_factory.mktemp("usable") / "same.sqlite", "workers-same")


def test_the_verdict_judges_workers_pinned_by_their_initializer_against_their_one_core(
        pinned_workers) -> None:
    """The parent stays free, so the root's latest affinity says two cores: the verdict
    must follow the working processes' own, and put the wait for a core on their own
    threads queueing on it, not on the recorder."""
    _proc, rec = pinned_workers
    diag = diagnose(rec)
    assert diag.usable_cores == 1.0 and diag.cores_limited_by == "affinity", diag.usable_cores
    assert cores_sentence(diag.cores).endswith("1 usable by this program (affinity)")
    assert diag.verdict.advice not in ("multiprocessing", "more-processes")
    shares = [f for f in diag.verdict.evidence if isinstance(f, RecorderShare)]
    if shares:  # the two workers queued on one core: most of that wait is their own
        assert shares[0].own_s >= 0.5 * shares[0].queued_s, say(shares[0])


def test_the_psutil_backend_follows_the_pin_too(psutil_pinned_pool_recording: Path) -> None:
    cores_for(2)
    rec = inspector.load(psutil_pinned_pool_recording)  # pin_then_pool.py parent
    assert rec.meta.backend == "psutil"
    lowest = str(min(os.sched_getaffinity(0)))
    parent = int(rec.processes.loc[rec.processes["is_target"], "proc_id"].iloc[0])
    assert cpus_of(rec, parent) == [format_cpus(os.sched_getaffinity(0)), lowest]
    for worker in workers(rec):
        assert cpus_of(rec, worker) == [lowest]
    assert rec.process_cores["quota_cores"].isna().all()  # psutil reads no cgroup quota
    assert usable_cores_summary(rec) == (1.0, "affinity")


def test_workers_pinned_to_one_cpu_by_their_initializer_share_one_core(pinned_workers) -> None:
    _proc, rec = pinned_workers
    lowest = str(min(os.sched_getaffinity(0)))
    for worker in workers(rec):
        assert cpus_of(rec, worker)[-1] == lowest
    # the parent was never pinned: its latest value says the whole machine
    assert rec.usable_cores == machine_cpus()
    usable = usable_cores_over_time(rec)
    work = working_ticks(rec, workers(rec)).difference(parent_ticks(rec))
    assert len(work) >= 5
    assert (usable.loc[work] == 1.0).all(), usable.loc[work]
    assert usable_cores_summary(rec) == (1.0, "affinity")


def test_workers_pinned_to_two_different_cpus_have_two_cores(tmp_path: Path) -> None:
    two = sorted(cores_for(2))
    _proc, rec = record(tmp_path / "apart.sqlite", "workers-apart")
    ids = workers(rec)
    assert sorted(cpus_of(rec, w)[-1] for w in ids) == [str(c) for c in two]
    usable = usable_cores_over_time(rec)
    both = working_ticks(rec, ids, every=True)
    assert len(both) >= 3
    assert (usable.loc[both] == 2.0).all(), usable.loc[both]
    # a moment only one of them worked, it had its one CPU
    alone = working_ticks(rec, ids).difference(both).difference(parent_ticks(rec))
    assert (usable.loc[alone] == 1.0).all(), usable.loc[alone]
    assert usable_cores_summary(rec) == (2.0, None if machine_cpus() == 2 else "affinity")


def test_an_unpinned_pool_may_use_every_cpu(tmp_path: Path) -> None:
    _proc, rec = record(tmp_path / "none.sqlite", "none")
    everything = format_cpus(os.sched_getaffinity(0))
    assert set(rec.process_cores["cpus"]) == {everything}
    assert len(rec.process_cores) == len(rec.processes)  # one row each: nothing changed
    usable = usable_cores_over_time(rec)
    assert (usable == machine_cpus()).all()
    assert usable_cores_summary(rec) == (float(machine_cpus()), None)


def test_a_merged_recording_keeps_each_hosts_cpus_apart(pinned_parent, tmp_path: Path) -> None:
    _proc, rec = pinned_parent
    other = tmp_path / "host-b.sqlite"
    other.write_bytes(rec.path.read_bytes())
    with sqlite3.connect(other) as db:  # the same run, as if on a second machine
        db.execute("UPDATE meta SET value = ? WHERE key = 'hostname'", (json.dumps("host-b"),))
    db.close()
    out = tmp_path / "merged.sqlite"
    merge([Source(rec.path), Source(other)], out)
    merged = inspector.load(out)
    assert len(merged.process_cores) == 2 * len(rec.process_cores)
    assert set(merged.process_cores["proc_id"]) == set(merged.processes["proc_id"])
    for part in parts(merged):
        own = part.recording.process_cores
        assert own["cpus"].tolist() == rec.process_cores["cpus"].tolist()
        assert own["t_s"].tolist() == pytest.approx(
            (rec.process_cores["t_s"] + part.shift_s).tolist(), abs=1e-6)
        assert usable_cores_summary(part.recording) == (1.0, "affinity")
    # CPU 0 of one host and CPU 0 of the other are two cores
    both = working_ticks(rec, workers(rec)).to_numpy() + parts(merged)[0].shift_s
    usable = usable_cores_over_time(merged)
    at = usable.loc[usable.index.isin(both)]
    assert len(at) >= 5 and (at == 2.0).all(), at


# -- cgroup quotas: shared within a cgroup, added up across cgroups ----------------------------

@pytest.fixture
def quota_cgroups() -> Iterator[list[Path]]:
    """Two cgroup v1 cpu groups of half a core each (root, a v1 cpu hierarchy)."""
    if not (CPU_V1 / "cpu.cfs_quota_us").exists():
        skip_or_fail("no cgroup v1 cpu hierarchy at /sys/fs/cgroup/cpu on this machine")
    made: list[Path] = []
    try:
        for name in ("a", "b"):
            path = CPU_V1 / f"inspector-usable-{os.getpid()}-{name}"
            try:
                path.mkdir()
            except OSError as e:
                if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                    skip_or_fail(f"cannot create a cgroup here ({e.strerror})")
                raise
            made.append(path)
            (path / "cpu.cfs_period_us").write_text("100000")
            (path / "cpu.cfs_quota_us").write_text("50000")
        yield made
    finally:
        for path in made:
            for pid in (path / "cgroup.procs").read_text().split():  # none left, normally
                (CPU_V1 / "cgroup.procs").write_text(pid)
            path.rmdir()


def moved_quota(proc: subprocess.CompletedProcess, rec: inspector.Recording,
                groups: list[Path]) -> pd.Index:
    """Checks each worker's rows (first seen without a quota, then in its cgroup, seen at the
    first tick after its move at the latest); the sample times after both moved."""
    moves = re.findall(r"moved between [\d.]+ and ([\d.]+)", proc.stdout)
    assert len(moves) == 2, proc.stdout
    # unix time on the recording's clock; 5 ms for the pairing of the two clocks
    moved_by_s = max(float(t) for t in moves) - rec.meta.start_time_unix + 0.005
    ticks = rec.process_samples["t_s"]
    pc = rec.process_cores
    seen = []
    for worker in workers(rec):
        rows = pc[pc["proc_id"] == worker]
        assert rows["quota_cores"].isna().iloc[0]
        assert rows["quota_cores"].iloc[-1] == 0.5
        assert rows["quota_cgroup"].iloc[-1] in {str(g) for g in groups}
        seen.append(rows["t_s"].iloc[-1])
    assert max(seen) <= ticks[ticks >= moved_by_s].min()  # not a second later
    return pd.Index(sorted(set(ticks[ticks > max(seen)])))


def test_workers_moved_into_one_quota_cgroup_share_its_half_core(
        tmp_path: Path, quota_cgroups: list[Path]) -> None:
    proc, rec = record(tmp_path / "one.sqlite", "cgroups", "1.5", str(quota_cgroups[0]))
    after = moved_quota(proc, rec, quota_cgroups[:1])
    usable = usable_cores_over_time(rec)
    work = workers_alone_ticks(rec).intersection(after)
    assert len(work) >= 3
    assert (usable.loc[work] == 0.5).all(), usable.loc[work]
    assert usable_cores_summary(rec) == (0.5, "cgroup quota")


def test_workers_moved_into_two_quota_cgroups_add_their_quotas(
        tmp_path: Path, quota_cgroups: list[Path]) -> None:
    proc, rec = record(tmp_path / "two.sqlite", "cgroups", "1.5", *map(str, quota_cgroups))
    after = moved_quota(proc, rec, quota_cgroups)
    pc = rec.process_cores
    groups = {pc[pc["proc_id"] == w]["quota_cgroup"].iloc[-1] for w in workers(rec)}
    assert groups == {str(p) for p in quota_cgroups}
    usable = usable_cores_over_time(rec)
    work = workers_alone_ticks(rec).intersection(after)
    assert len(work) >= 3
    assert (usable.loc[work] == 1.0).all(), usable.loc[work]
    assert usable_cores_summary(rec) == (1.0, "cgroup quota")


# -- older files and damaged ones --------------------------------------------------------------

def test_a_file_without_process_cores_reads_and_falls_back_to_the_targets_latest(
        pinned_parent, tmp_path: Path) -> None:
    _proc, rec = pinned_parent
    old = tmp_path / "old.sqlite"
    old.write_bytes(rec.path.read_bytes())
    with sqlite3.connect(old) as db:
        db.execute("DROP TABLE process_cores")
    db.close()
    before = inspector.load(old)
    assert before.process_cores.empty
    assert list(before.process_cores.columns) == list(rec.process_cores.columns)
    usable = usable_cores_over_time(before)
    assert len(usable) == before.process_samples["t_s"].nunique()
    assert (usable == before.usable_cores).all()
    assert usable_cores_summary(before) == (before.usable_cores, before.cores_limited_by)


@pytest.mark.parametrize("damage", [
    "UPDATE process_cores SET cpus = '0-99999999999'",
    "UPDATE process_cores SET cpus = 'x,1-0,²'",
    "UPDATE process_cores SET cpus = NULL, quota_cores = -1, quota_cgroup = NULL",
    "UPDATE process_cores SET quota_cores = 1e999",
    "UPDATE process_cores SET t_s = -1e999 WHERE rowid = 1",
    "UPDATE process_cores SET proc_id = 999",
    "ALTER TABLE process_cores DROP COLUMN cpus",
])
def test_damaged_rows_read_as_unknown_never_as_a_crash(pinned_parent, tmp_path: Path,
                                                      damage: str) -> None:
    _proc, rec = pinned_parent
    path = tmp_path / "damaged.sqlite"
    path.write_bytes(rec.path.read_bytes())
    with sqlite3.connect(path) as db:
        db.execute(damage)
    db.close()
    damaged = inspector.load(path)
    usable = usable_cores_over_time(damaged)
    assert ((usable > 0) & (usable <= damaged.cpu_count)).all()
    value, _why = usable_cores_summary(damaged)
    assert 0 < value <= damaged.cpu_count


@pytest.mark.parametrize("damage", [
    "UPDATE process_cores SET usable_cores = 'many'",
    "DROP TABLE process_cores; CREATE VIEW process_cores AS SELECT * FROM processes",
])
def test_a_process_cores_table_of_the_wrong_kind_is_refused_in_one_line(
        pinned_parent, tmp_path: Path, damage: str) -> None:
    _proc, rec = pinned_parent
    path = tmp_path / "refused.sqlite"
    path.write_bytes(rec.path.read_bytes())
    with sqlite3.connect(path) as db:
        db.executescript(damage)
    db.close()
    with pytest.raises(RecordingError) as caught:
        inspector.load(path)
    assert "\n" not in str(caught.value)


def test_cpu_lists_read_back_as_the_kernel_writes_them() -> None:
    assert format_cpus({0, 1, 2, 3, 6}) == "0-3,6" and format_cpus({5}) == "5"
    assert parse_cpus("0-3,6") == frozenset({0, 1, 2, 3, 6})
    for text in ("0-3,6", "1", "0,2,4-7"):
        assert format_cpus(parse_cpus(text) or ()) == text
    for bad in ("", "3-1", "-1", "0-9000", "a", "1,,2", None, 7):
        assert parse_cpus(bad) is None
