"""Issue 24 item 5: nothing ends without a word. An unexpected error in the stack sampler's
thread leaves a problem row and a warning while /proc sampling goes on; the ptrace permission
a Dask worker grants its recorder is taken back when the recording ends.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from machine import skip_or_fail
from test_faults import TIMEOUT_S, inspector_lines

import inspector

PY = sys.executable
REPO = Path(__file__).resolve().parent.parent

# A py-spy that is not the one we know: it runs its duration, then writes valid JSON of a
# shape py-spy never wrote (a later version's, say).
ODD_PY_SPY = """\
import sys, time
if "--version" in sys.argv:
    print("py-spy 0.4.3")
    sys.exit(0)
time.sleep(min(float(sys.argv[sys.argv.index("--duration") + 1]), 0.5))
with open(sys.argv[sys.argv.index("--output") + 1], "w") as f:
    f.write("[1, 2, 3]")
"""


def python_beside(folder: Path, program: str, text: str) -> Path:
    """A Python environment in `folder` whose interpreter has `program` beside it (where the
    recorder looks for py-spy first), with this environment's packages."""
    (folder / "bin").mkdir(parents=True)
    python = folder / "bin" / "python"
    python.symlink_to(os.path.realpath(PY))
    if sys.prefix != sys.base_prefix:  # a venv: its packages, through its lib folder
        shutil.copy(Path(sys.prefix) / "pyvenv.cfg", folder / "pyvenv.cfg")
        (folder / "lib").symlink_to(Path(sys.prefix) / "lib")
    else:
        (folder / "pyvenv.cfg").write_text(
            f"home = {Path(os.path.realpath(PY)).parent}\ninclude-system-site-packages = true\n")
    tool = folder / "bin" / program
    tool.write_text(f"#!{os.path.realpath(PY)}\n{text}")
    tool.chmod(0o755)
    return python


def test_an_unexpected_error_in_the_stack_thread_leaves_a_problem_and_a_warning(
        tmp_path: Path) -> None:
    python = python_beside(tmp_path / "env", "py-spy", ODD_PY_SPY)
    out = tmp_path / "rec.sqlite"
    proc = subprocess.run([str(python), "-m", "inspector", "record", "-q", "-o", str(out), "--",
                           PY, "-c", "import time; time.sleep(3)"],
                          capture_output=True, text=True, timeout=TIMEOUT_S, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    lines = inspector_lines(proc.stderr)
    assert any("Python stacks stopped early" in line and "AttributeError" in line
               for line in lines), proc.stderr
    rec = inspector.load(out)
    assert rec.meta.complete is True
    stopped = rec.problems[rec.problems.kind == "stacks-stopped"]
    assert len(stopped) == 1, rec.problems
    assert "unexpected error: AttributeError" in stopped.detail.iloc[0]
    # /proc sampling went on to the end: the target's 3 s, well after the stacks stopped
    assert rec.thread_samples.t_s.max() > stopped.t_s.iloc[0] + 1.0


# A Dask worker's life with the plugin: its recorder started (the worker names it its
# tracer), then stopped (the worker must name none).
WORKER = """\
import asyncio
from inspector.record.dask import RecordWorkers, WorkerOptions
plugin = RecordWorkers(WorkerOptions(stacks=False))
async def life():
    await plugin.setup(None)
    pid, host, data, error = await plugin.stop()
    print("recording back" if data else f"no recording: {error}", flush=True)
asyncio.run(life())
"""
# strace's line for prctl(PR_SET_PTRACER, ARG)
PTRACER_CALL = re.compile(r"^prctl\((?:PR_SET_PTRACER|0x59616d61)\S*, (\w+)", re.M)


def test_the_ptrace_permission_given_to_a_dask_workers_recorder_is_taken_back(
        tmp_path: Path) -> None:
    # Yama keeps who may trace a process only inside the kernel (no /proc file shows it), so
    # the worker's calls are watched with strace: on a kernel without Yama (this one, where
    # /proc/sys/kernel/yama is missing) they fail alike and change nothing.
    pytest.importorskip("distributed", reason="Dask is not installed: pip install -e '.[test]'")
    if shutil.which("strace") is None:
        skip_or_fail("strace is not installed: apt-get install strace")
    trace = tmp_path / "worker.trace"
    proc = subprocess.run(["strace", "-e", "trace=prctl", "-o", str(trace), PY, "-c", WORKER],
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    assert "recording back" in proc.stdout, proc.stdout + proc.stderr
    calls = PTRACER_CALL.findall(trace.read_text())
    assert len(calls) == 2, trace.read_text()
    granted, taken_back = calls
    assert granted.isdigit() and int(granted) > 0  # the recorder's pid
    assert taken_back == "0"
