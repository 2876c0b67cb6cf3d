"""Native threads named by the library holding their start routine: numpy's OpenBLAS pool
shows as "OpenBLAS worker", not `python`, in the recording, summary, exports and top."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import inspector
from inspector.record.native import pool_name, start_routine_offset

ROOT = Path(__file__).resolve().parent.parent
WORKLOAD = ROOT / "tests" / "workloads" / "blas_threads.py"


def test_pool_names_come_from_the_library_file() -> None:
    assert pool_name("/usr/lib/x86_64-linux-gnu/libgomp.so.1.0.0") == "OpenMP (GOMP)"
    assert pool_name("/x/numpy.libs/libscipy_openblas64_-ff651d7f.so") == "OpenBLAS worker"
    assert pool_name("/x/libopenblasp-r0-0cf96a72.3.23.dev.so") == "OpenBLAS worker"
    assert pool_name("/usr/lib/libpython3.11.so.1.0") is None  # a Python thread
    assert pool_name("/usr/lib/x86_64-linux-gnu/libc.so.6") is None
    assert pool_name("/x/_rust.cpython-311-x86_64-linux-gnu.so") == "native thread (_rust)"


def test_our_own_threads_tell_where_glibc_keeps_the_start_routine() -> None:
    assert start_routine_offset() is not None


def test_an_openblas_pool_is_named_in_the_recording_summary_and_export(tmp_path: Path) -> None:
    out = tmp_path / "blas.sqlite"
    subprocess.run([sys.executable, "-m", "inspector", "record", "-q", "-o", str(out), "--",
                    sys.executable, str(WORKLOAD), "2"], check=True, timeout=120)
    rec = inspector.load(out)
    workers = rec.threads[rec.threads["native_name"] == "OpenBLAS worker"]
    assert len(workers) >= 1
    assert set(workers["name"]) == {"OpenBLAS worker"}
    assert "MainThread" in set(rec.threads["name"])  # Python's names stay
    summary = subprocess.run([sys.executable, "-m", "inspector", "summary", "--json", str(out)],
                             capture_output=True, text=True, check=True).stdout
    assert "OpenBLAS worker" in {t["name"] for t in json.loads(summary)["threads"]}
    perfetto = subprocess.run([sys.executable, "-m", "inspector", "export", str(out), "-f",
                               "perfetto", "-o", "-"], check=True, capture_output=True).stdout
    assert b"OpenBLAS worker" in perfetto


def test_top_shows_the_openblas_worker(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "inspector", "top", "--once", "-d", "1.5",
                          "-o", str(tmp_path / "top.sqlite"), "--", sys.executable,
                          str(WORKLOAD), "20"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "OpenBLAS worker" in out.stdout
