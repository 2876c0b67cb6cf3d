"""The portable backend (psutil), forced on Linux with INSPECTOR_BACKEND=psutil: record,
explain and top run without /proc's thread files; each thread is on a CPU or not, and its
waits are "other", as the report says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import inspector_cli
from machine import for_the_recording

import inspector
from inspector.analyze import diagnose, thread_states

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ROOT / "tests" / "workloads"
PSUTIL_ENV = {**os.environ, "INSPECTOR_BACKEND": "psutil"}


def _on_psutil(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return inspector_cli(*args, env=PSUTIL_ENV, **kw)


def test_a_process_pool_recorded_through_psutil_has_its_workers_and_their_cpu(
        psutil_pinned_pool_recording: Path, tmp_path: Path) -> None:
    # the session's recording (conftest.py), made at raised priority: the verdict below is
    # about the pool, not about its neighbours. Its parent pinned itself to one CPU before
    # forking the workers (test_usable_cores reads their CPUs); they compute on it.
    out = psutil_pinned_pool_recording
    rec = inspector.load(out)
    assert rec.meta.backend == "psutil"
    assert len(rec.processes) == 3  # the parent and its 2 pool workers
    assert rec.thread_samples["syscall"].isna().all()  # psutil has no syscall per thread
    states = thread_states(rec)
    workers = states[states["pid"] != int(rec.processes.iloc[0]["pid"])]
    # the workers computed, and their threads' CPU adds up to their processes' CPU
    ps = rec.process_samples
    ps = ps[ps["pid"] != int(rec.processes.iloc[0]["pid"])]
    last = ps.groupby("pid")[["cpu_user_s", "cpu_system_s"]].max().sum().sum()
    assert last > 0.3
    assert abs(workers["cpu_s"].sum() - last) < 0.25 * last
    # waits cannot be told apart: none is called GIL, lock, I/O or sleep
    assert states[["gil_s", "lock_s", "io_s", "sleep_s"]].to_numpy().sum() == 0
    assert diagnose(rec).verdict.bound == "cpu"
    html = tmp_path / "pool.html"
    assert _on_psutil("report", str(out), "-o", str(html)).returncode == 0
    assert "each thread&#x27;s CPU only" in html.read_text() or \
        "each thread's CPU only" in html.read_text()


@pytest.mark.alone  # its programs run at raised priority (tests/turns.py)
def test_top_and_explain_run_on_the_psutil_backend(tmp_path: Path) -> None:
    top = _on_psutil("top", "--once", "--no-stacks", "-o", str(tmp_path / "top.sqlite"), "--",
                     sys.executable,
                     str(WORKLOADS / "gil_threads.py"), "20", preexec_fn=for_the_recording())
    assert top.returncode == 0, top.stderr
    assert sum(" other " in ln for ln in top.stdout.splitlines()) >= 4
    prog = subprocess.Popen([sys.executable, str(WORKLOADS / "live_threads_and_child.py")],
                            stdout=subprocess.PIPE, text=True, preexec_fn=for_the_recording())
    try:
        assert prog.stdout is not None
        _, pid, child = prog.stdout.readline().split()
        explain = _on_psutil("explain", "--pid", pid, "-d", "1",
                             preexec_fn=for_the_recording())
        assert explain.returncode == 0, explain.stderr
        assert f"process {child} is a real child process of pid {pid}" in explain.stdout
        assert "9 threads" in explain.stdout
    finally:
        prog.kill()
        prog.wait()


def test_attach_to_a_missing_pid_is_one_line_on_the_psutil_backend() -> None:
    done = _on_psutil("record", "--pid", "999999999", "-o", "/dev/null/x.sqlite")
    assert done.returncode != 0
    assert "no process with pid 999999999" in done.stderr and "Traceback" not in done.stderr
