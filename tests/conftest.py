"""What the test modules share: the `inspector` command run as a user runs it, and the
recordings that several modules read, made once per session (a recording takes seconds;
reading it again costs nothing)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from machine import for_the_recording

WORKLOADS = Path(__file__).parent / "workloads"


def inspector_cli(*args: str, timeout: float = 120, text: bool = True,
                  **kw: Any) -> subprocess.CompletedProcess[Any]:
    """`python -m inspector ARGS` with this interpreter, its output captured (as text
    unless text=False: an export to stdout is bytes); keyword arguments go to
    subprocess.run (env, cwd, preexec_fn)."""
    return subprocess.run([sys.executable, "-m", "inspector", *args], capture_output=True,
                          text=text, timeout=timeout, **kw)


def record_at_raised_priority(out: Path, *command: str, cores: int | None = None,
                              extra: tuple[str, ...] = ()) -> Path:
    """Records command at raised priority where permitted, on `cores` cores if given
    (tests/machine.py): what is asserted on it is about the program, not its neighbours."""
    proc = inspector_cli("record", "-q", *extra, "-o", str(out), "--", *command,
                         preexec_fn=for_the_recording(cores))
    assert proc.returncode == 0, proc.stderr
    return out


def copy_of(recording: Path, folder: Path) -> Path:
    """A module's own copy of a shared recording, for tests that write beside it."""
    return Path(shutil.copy2(recording, folder / recording.name))


# -- recordings read by several modules (each: tests/workloads/NAME.py) ------------------------

@pytest.fixture(scope="session")
def gil_threads_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four GIL-bound threads for 2.5 s, on 2 cores: 4 threads could use both, the GIL
    leaves them one whatever else runs (test_diagnose, test_export, test_recording_cost)."""
    return record_at_raised_priority(
        tmp_path_factory.mktemp("gil_threads") / "gil_threads.sqlite", sys.executable,
        str(WORKLOADS / "gil_threads.py"), cores=2)


@pytest.fixture(scope="session")
def process_pool_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-process pool on 2 cores, each worker with its GIL (test_diagnose,
    test_recording_cost)."""
    return record_at_raised_priority(
        tmp_path_factory.mktemp("process_pool") / "process_pool.sqlite", sys.executable,
        str(WORKLOADS / "process_pool.py"), cores=2)


@pytest.fixture(scope="session")
def idle_pool_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A main thread computing beside 8 parked pool workers (test_verdicts,
    test_wait_evidence)."""
    return record_at_raised_priority(
        tmp_path_factory.mktemp("idle_pool") / "idle_pool_main_computes.sqlite",
        sys.executable, str(WORKLOADS / "shape_idle_pool_main_computes.py"))
