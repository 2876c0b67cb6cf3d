"""The evidence issue 12's verdicts stand on, as recorded from real programs: each futex wait
told apart by its address (the GIL's or a lock's), the cores a program may use (affinity), the
machine's load and the recorder's own share; and recordings made before these columns existed
still load and diagnose."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from v1 import as_version_1

import inspector
from inspector.analyze import diagnose, thread_states
from inspector.text.evidence import cores_sentence, said

PY = sys.executable
WORKLOADS = Path(__file__).parent / "workloads"


def _record(out: Path, *command: str, extra: tuple[str, ...] = (),
            core: int | None = None) -> Path:
    pin = None if core is None else (lambda: os.sched_setaffinity(0, {core}))
    proc = subprocess.run([PY, "-m", "inspector", "record", "-q", *extra, "-o", str(out), "--",
                           *command], capture_output=True, text=True, timeout=120,
                          preexec_fn=pin)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def idle_pool(idle_pool_recording: Path) -> Path:
    return idle_pool_recording


@pytest.fixture(scope="module")
def gil_threads_no_stacks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _record(tmp_path_factory.mktemp("gil") / "gil.sqlite", PY,
                   str(WORKLOADS / "gil_threads.py"), extra=("--no-stacks",))


def test_parked_pool_workers_wait_on_a_lock_by_their_futex_address(idle_pool: Path) -> None:
    rec = inspector.load(idle_pool)
    states = thread_states(rec)
    pool = states[states["name"].astype(str).str.startswith("pool_")]
    assert pool["tid"].nunique() == 8
    # every sampled wait of the parked workers was a futex judged by its address: a lock's
    assert pool["gil_s"].sum() == 0, pool.groupby("name", observed=True)["gil_s"].sum()
    assert pool["lock_s"].sum() > 0.8 * pool["dt_s"].sum()
    assert (pool["futex_basis"] == "address").mean() > 0.9
    kinds = rec.thread_samples.loc[rec.thread_samples["syscall_name"] == "futex", "futex_kind"]
    assert set(kinds.dropna().astype(int)) <= {1, 2} and (kinds == 2).sum() > 0


def test_gil_waits_are_told_without_stacks_by_the_futex_address(
        gil_threads_no_stacks: Path) -> None:
    rec = inspector.load(gil_threads_no_stacks)
    assert rec.stacks.empty  # --no-stacks: no py-spy at all
    diag = diagnose(rec)
    # without py-spy the threads carry their OS names only: the workers are the non-main ones
    workers = [t for t in diag.threads if t.tid != t.pid]
    assert len(workers) == 4
    # the four threads wait on the interpreter's own futex: GIL waits, no stack needed
    assert sum(t.state_s["gil"] for t in workers) > sum(t.state_s["lock"] for t in workers)
    assert diag.gil_waits_by_address_share is not None and diag.gil_waits_by_address_share > 0.7
    assert not any("cannot be told" in n for n in said(diag.notes))


def test_a_program_pinned_to_one_core_is_recorded_with_one_usable_core(tmp_path: Path) -> None:
    taskset = shutil.which("taskset")
    assert taskset, "taskset (util-linux) is part of every Debian system"
    rec = inspector.load(_record(tmp_path / "pinned.sqlite", taskset, "-c", "0", PY, "-c",
                                 "import time; time.sleep(0.6)", extra=("--no-stacks",)))
    assert rec.usable_cores == 1.0
    assert rec.cores_limited_by == "affinity"
    diag = diagnose(rec)
    assert cores_sentence(diag.cores).endswith("1 usable by this program (affinity)")


def test_the_machine_load_and_the_recorders_own_share_are_sampled(idle_pool: Path) -> None:
    rec = inspector.load(idle_pool)
    ms = rec.machine_samples
    assert len(ms) >= 10
    assert (ms["busy_cores"] >= 0).all() and (ms["recorder_cores"] >= 0).all()
    # the computing main thread alone keeps one core busy: the machine was at least that busy
    assert ms["busy_cores"].median() >= 0.5
    assert (ms["recorder_cores"] <= ms["busy_cores"] + 0.2).mean() > 0.9
    diag = diagnose(rec)
    assert diag.recorder_cores is not None and diag.other_cores is not None


def test_a_short_last_tick_weighs_by_its_length_in_the_machines_load(idle_pool: Path) -> None:
    # The reading at the recording's end may come a few ms after the last tick and catch one
    # 10 ms clock tick of the recorder's CPU: "5 cores" over 2 ms. Counted as one row of ~20,
    # it once made the recorder look like 0.74 cores and other programs 0.2 under a hog.
    rec = inspector.load(idle_pool)
    ms = rec.machine_samples
    before = diagnose(rec)
    last = ms.iloc[[-1]].assign(t_s=ms["t_s"].iloc[-1] + 0.002, recorder_cores=5.0,
                                busy_cores=ms["busy_cores"].iloc[-1] + 5.0)
    after = diagnose(replace(rec, machine_samples=pd.concat([ms, last], ignore_index=True)))
    assert before.recorder_cores is not None and after.recorder_cores is not None
    assert after.recorder_cores - before.recorder_cores < 0.05, (
        before.recorder_cores, after.recorder_cores)
    assert before.other_cores is not None and after.other_cores is not None
    assert abs(after.other_cores - before.other_cores) < 0.05


def test_a_recording_without_the_added_columns_still_loads_and_is_diagnosed(
        idle_pool: Path, tmp_path: Path) -> None:
    old = as_version_1(idle_pool, tmp_path / "old.sqlite")  # thread samples as rows
    db = sqlite3.connect(old)
    added = {"thread_samples": {"futex_kind"},
             "processes": {"affinity_cores", "quota_cores", "usable_cores", "cores_limited_by"}}
    for table, gone in added.items():  # as the landed version wrote them
        keep = [row[1] for row in db.execute(f"PRAGMA table_info({table})")
                if row[1] not in gone]
        db.execute(f"CREATE TABLE old_{table} AS SELECT {', '.join(keep)} FROM {table}")
        db.execute(f"DROP TABLE {table}")
        db.execute(f"ALTER TABLE old_{table} RENAME TO {table}")
    db.execute("DROP TABLE machine_samples")
    db.commit()
    db.close()
    rec = inspector.load(old)
    assert "futex_kind" not in rec.thread_samples.columns
    assert rec.machine_samples.empty
    assert rec.usable_cores == float(rec.cpu_count)
    diag = diagnose(rec)
    assert diag.verdict.bound == "cpu"
    assert diag.recorder_cores is None and diag.gil_waits_by_address_share is None


def test_waiting_for_a_core_is_shared_out_between_the_recorder_and_other_programs(
        tmp_path: Path) -> None:
    # A hog on the same single core as the target: the target waits for that core about
    # half the time, and the other program that took it is measured.
    burn = "import time\nend = time.monotonic() + 1.5\nwhile time.monotonic() < end: pass\n"
    hog = subprocess.Popen([PY, "-c", "while True: pass"],
                           preexec_fn=lambda: os.sched_setaffinity(0, {_one_core()}))
    try:
        rec = inspector.load(_record(tmp_path / "shared.sqlite", PY, "-c", burn,
                                     extra=("--no-stacks",), core=_one_core()))
    finally:
        hog.kill()
        hog.wait()
    diag = diagnose(rec)
    assert diag.other_cores is not None and diag.other_cores > 0.3, diag.other_cores
    told = [e for e in said(diag.verdict.evidence) if "of that wait is the recorder's share" in e]
    assert told, said(diag.verdict.evidence)


def _one_core() -> int:
    return min(os.sched_getaffinity(0))
