"""Every CPython from 3.9 on that this machine has, as a target: stacks on its threads, their
names, its full version and the right verdicts; its identity read from its files; and a
py-spy run that fails is stored, in py-spy's words, never silent."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import turns
from machine import (
    PYENV_ROOT,
    cores_left,
    find_interpreters,
    for_the_recording,
    judged_on,
    pyenv_python,
    version_of_name,
)

import inspector
from inspector.analyze import Diagnosis, diagnose
from inspector.analyze.model import ProcessFacts
from inspector.record.interpreters import identify

PY = sys.executable
WORKLOADS = Path(__file__).parent / "workloads"
# each program (a verdict needs 3 rounds; py-spy, started once the shell's children are
# seen, must see every thread to name it: at 1.2 s one of the four went unnamed under
# load); the matrix is 1 recording per interpreter, of its two programs at once
WORKLOAD_S = "1.5"
INTERPRETERS = find_interpreters()


def _facts(python: str) -> tuple[str, bool]:
    """(version, free-threaded) as the interpreter itself says: the test may run it."""
    out = subprocess.run(
        [python, "-c", "import platform, sysconfig; print(platform.python_version(), "
                       "bool(sysconfig.get_config_var('Py_GIL_DISABLED')))"],
        capture_output=True, text=True, timeout=60, check=True).stdout.split()
    return out[0], out[1] == "True"


def _record(out: Path, *command: str, extra: tuple[str, ...] = (),
            judged: bool = True) -> inspector.Recording:
    """`command` recorded; where a verdict is `judged`, at raised priority and alone
    (tests/turns.py)."""
    with turns.alone() if judged else contextlib.nullcontext():
        proc = subprocess.run([PY, "-m", "inspector", "record", "-q", "-o", str(out), *extra,
                               "--", *command], capture_output=True, text=True, timeout=120,
                              preexec_fn=for_the_recording() if judged else None)
    assert proc.returncode == 0, proc.stderr
    return inspector.load(out)


def test_the_machine_has_interpreters_besides_the_running_one() -> None:
    mine = os.path.realpath(PY)
    others = [p for p in INTERPRETERS if os.path.realpath(p) != mine]
    print("interpreters in the matrix:", ", ".join(INTERPRETERS) or "none")
    assert others, (
        f"no CPython >= 3.9 besides {mine} found under {PYENV_ROOT}/versions/*/bin, "
        "/usr/bin or PATH: this machine kind carries pyenv's 3.9.18, 3.10.13, 3.11.7, "
        "3.12.1 and 3.13.0 (`pyenv install 3.9.18 3.10.13 3.12.1 3.13.0`) and Debian's "
        "/usr/bin/python3.11")
    versions = {version_of_name(p) for p in INTERPRETERS}
    assert (3, 9) in versions and (3, 10) in versions, (
        f"the matrix lacks 3.9 or 3.10 (found {sorted(v for v in versions if v)}): "
        f"`pyenv install 3.9.18 3.10.13` under {PYENV_ROOT}")


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, inspector.Recording]:
    """Each interpreter's recording, made by the first test that reads it (_both)."""
    return {}


def _both(python: str, matrix: dict[str, inspector.Recording],
          tmp_path_factory: pytest.TempPathFactory) -> inspector.Recording:
    """One recording per interpreter of its two programs side by side (each judged as its
    own process): GIL-bound threads and threads waiting on sockets."""
    if python not in matrix:
        out = tmp_path_factory.mktemp("matrix") / "both.sqlite"
        matrix[python] = _record(
            out, "sh", "-c", f"'{python}' '{WORKLOADS / 'gil_threads.py'}' {WORKLOAD_S} & "
            f"'{python}' '{WORKLOADS / 'socket_waits.py'}' {WORKLOAD_S}; wait")
    return matrix[python]


def _running(rec: inspector.Recording, script: str) -> tuple[pd.Series, ProcessFacts, Diagnosis]:
    """The process of `script` in the recording, its facts, and the run's diagnosis."""
    procs = rec.processes[rec.processes.cmdline.map(
        lambda argv: any(a.endswith(script) for a in argv))]  # not the shell's -c line
    assert len(procs) == 1, rec.processes
    row = procs.iloc[0]
    diag = diagnose(rec)
    [facts] = [p for p in diag.processes if p.proc_id == int(row.proc_id)]
    return row, facts, diag


@pytest.mark.parametrize("python", INTERPRETERS)
def test_gil_bound_threads_get_stacks_names_version_and_the_gil_verdict(
        python: str, matrix: dict[str, inspector.Recording],
        tmp_path_factory: pytest.TempPathFactory) -> None:
    version, free_threaded = _facts(python)
    rec = _both(python, matrix, tmp_path_factory)
    target, proc, diag = _running(rec, "gil_threads.py")
    assert bool(target.is_python)
    assert target.python_version == version + ("t" if free_threaded else ""), target
    stacks = rec.stacks[rec.stacks.proc_id == target.proc_id]
    assert len(stacks) > 0, rec.problems
    names = set(rec.threads[rec.threads.proc_id == target.proc_id].name.dropna())
    assert {f"arith-{i}" for i in range(4)} <= names, names
    assert stacks["stack"].str.contains("arithmetic", regex=False).any()
    v = diag.verdict
    if free_threaded:
        assert not proc.gil_limited and not v.gil_limited, v.evidence
    elif judged_on(f"{python}'s GIL-bound threads", cores_left(diag), 1):
        # where other programs held the core, the threads wait for it more than for the GIL
        assert proc.bound == "cpu" and proc.gil_limited, proc
        assert v.gil_limited, v.evidence  # (the run's bound is mixed: the waiters' I/O)


@pytest.mark.parametrize("python", INTERPRETERS)
def test_threads_waiting_on_sockets_are_not_cpu_bound(
        python: str, matrix: dict[str, inspector.Recording],
        tmp_path_factory: pytest.TempPathFactory) -> None:
    rec = _both(python, matrix, tmp_path_factory)
    waiting, proc, _diag = _running(rec, "socket_waits.py")
    assert bool(waiting.is_python)
    stacks = rec.stacks[rec.stacks.proc_id == waiting.proc_id]
    assert len(stacks) > 0, rec.problems
    names = set(rec.threads[rec.threads.proc_id == waiting.proc_id].name.dropna())
    assert {f"waiter-{i}" for i in range(4)} <= names, names
    assert stacks["stack"].str.contains("wait_for_input", regex=False).any()
    assert proc.bound != "cpu" and not proc.gil_limited, proc


# -- identity from files ---------------------------------------------------------------------

def _identify_running(argv: list[str], env: dict[str, str] | None = None):
    """identify() on a real process, once its interpreter is up."""
    proc = subprocess.Popen([*argv, "-c", "import time; print(1, flush=True); time.sleep(30)"],
                            stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"1"
        exe = os.readlink(f"/proc/{proc.pid}/exe")
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode().split("\0")
        return identify(proc.pid, exe, [c for c in cmdline if c])
    finally:
        proc.kill()
        proc.wait()


def test_a_venv_python_symlink_is_identified_with_its_full_version(tmp_path: Path) -> None:
    base = pyenv_python(9)
    subprocess.run([base, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True,
                   timeout=60)
    venv_python = tmp_path / "venv" / "bin" / "python"
    assert venv_python.is_symlink()
    found = _identify_running([str(venv_python)])
    assert found is not None and found.version == _facts(base)[0] and not found.free_threaded


def test_debians_static_python_is_identified_with_its_full_version() -> None:
    static = "/usr/bin/python3.11"
    if not os.path.exists(static):
        pytest.fail(f"{static} (Debian's statically linked python3.11) is missing: "
                    "`apt-get install python3.11`")
    found = _identify_running([static])
    assert found is not None and found.version == _facts(static)[0]


@pytest.fixture()
def python313_copies(tmp_path: Path) -> dict[str, Path]:
    """A real 3.13 interpreter under a free-threaded build's name (python3.13t) and, as a
    control, under its own name: only the name differs."""
    real = Path(pyenv_python(13))
    copies = {}
    for name in ("python3.13t", "python3.13"):
        (tmp_path / name).mkdir()
        copies[name] = tmp_path / name / name
        shutil.copy2(real, copies[name])
    return copies


def _home_env() -> dict[str, str]:
    # a copy elsewhere finds its standard library through PYTHONHOME
    home = str(Path(os.path.realpath(pyenv_python(13))).parent.parent)
    return {**os.environ, "PYTHONHOME": home}


def test_a_free_threaded_name_is_told_from_the_interpreter_file(
        python313_copies: dict[str, Path]) -> None:
    env = _home_env()
    version = _facts(pyenv_python(13))[0]
    free = _identify_running([str(python313_copies["python3.13t"])], env)
    assert free is not None and free.free_threaded
    assert (free.version, free.gil) == (version + "t", "disabled")
    forced = _identify_running([str(python313_copies["python3.13t"])],
                               {**env, "PYTHON_GIL": "1"})
    assert forced is not None and (forced.free_threaded, forced.gil) == (True, "enabled")
    control = _identify_running([str(python313_copies["python3.13"])], env)
    assert control is not None and not control.free_threaded
    assert (control.version, control.gil) == (version, "enabled")


def test_a_free_threaded_name_is_recorded_per_process(
        python313_copies: dict[str, Path], tmp_path: Path) -> None:
    home = _home_env()["PYTHONHOME"]  # for the target only: `env` execs it
    rec = _record(tmp_path / "ft.sqlite", "env", f"PYTHONHOME={home}",
                  str(python313_copies["python3.13t"]), str(WORKLOADS / "gil_threads.py"),
                  "0.5", judged=False)  # its identity, read from its files: no verdict
    target = rec.processes.iloc[0]
    assert (target.python_version, target.python_gil) == (_facts(pyenv_python(13))[0] + "t",
                                                          "disabled")


# -- failures ----------------------------------------------------------------------------------

def test_a_py_spy_failure_is_stored_in_its_words_and_shown_by_summary(tmp_path: Path) -> None:
    # Not Python at all, but named like it: every py-spy run on it fails.
    fake = tmp_path / "python3.12"
    shutil.copy2(shutil.which("sleep") or "/bin/sleep", fake)
    out = tmp_path / "fake.sqlite"
    # a failing run takes py-spy ~1 s: 4 tries of each chain fit (the --gil chain, behind
    # the stacks', gave up at 5.7 s on a loaded machine); --gil-check: that chain is tried
    # too. Nothing of the CPU is judged: recorded beside the other tests, at their priority.
    rec = _record(out, str(fake), "10", extra=("--gil-check",), judged=False)
    target = rec.processes.iloc[0]
    assert bool(target.is_python) and target.python_version == "3.12"
    spy = rec.problems[rec.problems.source == "py-spy"]
    failed = spy[spy.kind == "run-failed"]
    assert set(failed.pid) == {int(target.pid)}
    details = list(failed.detail)
    # py-spy's own first line, per chain: both were tried, both failed
    assert any(d.startswith("stacks: Error: ") for d in details), details
    assert any(d.startswith("--gil: Error: ") for d in details), details
    gave_up = set(spy[spy.kind == "gave-up"].detail.str.split(":").str[0])
    assert gave_up == {"stacks", "--gil"}
    summary = subprocess.run([PY, "-m", "inspector", "summary", str(out)], capture_output=True,
                             text=True, timeout=60)
    assert summary.returncode == 0, summary.stderr
    assert f"py-spy could not sample pid {int(target.pid)}: stacks: Error: " in summary.stdout
    page = tmp_path / "fake.html"
    report = subprocess.run([PY, "-m", "inspector", "report", "-o", str(page), str(out)],
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    section = page.read_text().split("What could not be sampled", 1)[1]
    assert "run-failed" in section and "gave-up" in section
    assert details[0] in section  # py-spy's words
