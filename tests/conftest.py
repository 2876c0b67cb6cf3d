"""What the test modules share: the `inspector` command run as a user runs it, the
recordings that several modules read, made once per session (a recording takes seconds;
reading it again costs nothing), `benchmarks/run.py --quick` run in the background
beside the modules that judge no CPU, and the turns pytest-xdist's workers take
(tests/turns.py)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import turns
from machine import for_the_recording

# Every diagnosis the suite makes, in this process or in a command it runs, checks that its
# advice never contradicts its predictions (inspector/analyze/diagnose.py SELF_CHECK_ENV).
os.environ.setdefault("INSPECTOR_SELF_CHECK", "1")
# Recordings skip the machine's calibration (~0.15 s each) unless a test asks for it with
# `record --calibrate`: the tests of predictions against measured speed-ups do.
os.environ.setdefault("INSPECTOR_NO_CALIBRATE", "1")

WORKLOADS = Path(__file__).parent / "workloads"


def inspector_cli(*args: str, timeout: float = 120, text: bool = True,
                  **kw: Any) -> subprocess.CompletedProcess[Any]:
    """`python -m inspector ARGS` with this interpreter, its output captured (as text
    unless text=False: an export to stdout is bytes); keyword arguments go to
    subprocess.run (env, cwd, preexec_fn)."""
    return subprocess.run([sys.executable, "-m", "inspector", *args], capture_output=True,
                          text=text, timeout=timeout, **kw)


def inspector_clis(*argvs: Sequence[str], timeout: float = 120,
                   **kw: Any) -> list[subprocess.CompletedProcess[str]]:
    """`python -m inspector ARGV` for each argv, all started at once, their results (text)
    in argv order. For commands that need nothing of one another and judge no CPU: each
    spends a second or so starting (pandas' import), and two cores start two at a time.
    Keyword arguments go to every Popen (env, umask, preexec_fn)."""
    procs = [subprocess.Popen([sys.executable, "-m", "inspector", *argv], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
             for argv in argvs]
    try:
        done = []
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        return done
    finally:
        for proc in procs:  # a hang guard fired: none outlives the test
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def record_at_raised_priority(out: Path, *command: str, cores: int | None = None,
                              extra: tuple[str, ...] = ()) -> Path:
    """Records command at raised priority where permitted, on `cores` cores if given
    (tests/machine.py), with no other such recording beside it (tests/turns.py): what is
    asserted on it is about the program, not its neighbours."""
    with turns.alone():
        proc = inspector_cli("record", "-q", *extra, "-o", str(out), "--", *command,
                             preexec_fn=for_the_recording(cores))
    assert proc.returncode == 0, proc.stderr
    return out


def report_scale_module() -> Any:
    """benchmarks/report_scale.py as a module: its synthetic recordings, written through the
    recorder's own writer, are what the scale and streaming tests read."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "report_scale.py"
    spec = importlib.util.spec_from_file_location("report_scale", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copy_of(recording: Path, folder: Path) -> Path:
    """A module's own copy of a shared recording, for tests that write beside it."""
    return Path(shutil.copy2(recording, folder / recording.name))


# -- recordings read by several modules (each: tests/workloads/NAME.py) ------------------------

@pytest.fixture(scope="session")
def two_process_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real recording, read and never changed by the tests that craft and fuzz files
    from it: two processes, a named thread, stacks, thread samples."""
    return turns.made_once("two-process", _record_two_processes, tmp_path_factory)


def _record_two_processes(folder: Path) -> Path:
    import inspector

    out = folder / "base.sqlite"
    proc = subprocess.run(
        [sys.executable, "-m", "inspector", "record", "-q", "-o", str(out), "--",
         sys.executable, "-c",
         "import subprocess, sys, threading, time\n"
         "t = threading.Thread(target=time.sleep, args=(0.5,), name='napper'); t.start()\n"
         "subprocess.run([sys.executable, '-c', 'import time; time.sleep(0.3)'])\n"
         "end = time.monotonic() + 0.4\n"
         "while time.monotonic() < end: pass\n"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rec = inspector.load(out)
    assert len(rec.processes) == 2 and not rec.stacks.empty and not rec.thread_samples.empty
    return out


@pytest.fixture(scope="session")
def gil_threads_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four GIL-bound threads for 2.5 s, on 2 cores: 4 threads could use both, the GIL
    leaves them one whatever else runs (test_diagnose, test_export, test_recording_cost)."""
    return turns.made_once("gil_threads", lambda folder: record_at_raised_priority(
        folder / "gil_threads.sqlite", sys.executable, str(WORKLOADS / "gil_threads.py"), cores=2),
        tmp_path_factory)


@pytest.fixture(scope="session")
def process_pool_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-process pool on 2 cores, each worker with its GIL (test_diagnose,
    test_recording_cost)."""
    return turns.made_once("process_pool", lambda folder: record_at_raised_priority(
        folder / "process_pool.sqlite", sys.executable, str(WORKLOADS / "process_pool.py"),
        cores=2), tmp_path_factory)


@pytest.fixture(scope="session")
def idle_pool_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A main thread computing beside 8 parked pool workers (test_verdicts,
    test_wait_evidence)."""
    return turns.made_once("idle_pool", lambda folder: record_at_raised_priority(
        folder / "idle_pool_main_computes.sqlite", sys.executable,
        str(WORKLOADS / "shape_idle_pool_main_computes.py")), tmp_path_factory)


@pytest.fixture(scope="session")
def psutil_pinned_pool_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Through the psutil backend, a 2-process pool forked after its parent pinned itself to
    one CPU (pin_then_pool.py parent: test_usable_cores, test_psutil_backend)."""
    return turns.made_once("psutil_pinned_pool", _record_psutil_pinned_pool, tmp_path_factory)


def _record_psutil_pinned_pool(folder: Path) -> Path:
    out = folder / "psutil_pinned_pool.sqlite"
    with turns.alone():  # at raised priority: what the workers got of their core is judged
        proc = inspector_cli("record", "-q", "-o", str(out), "--", sys.executable,
                             str(WORKLOADS / "pin_then_pool.py"), "parent",
                             env={**os.environ, "INSPECTOR_BACKEND": "psutil"},
                             preexec_fn=for_the_recording())
    assert proc.returncode == 0, proc.stderr
    return out


# -- benchmarks/run.py --quick beside the modules that judge no CPU ------------------------------

# test_benchmarks_smoke checks the shape of `benchmarks/run.py --quick`'s results and none of
# its figures (~32 CPU-seconds, much of its wall spent waiting on its targets). It runs in the
# background from the start of the session while these modules run first: they check
# parsing, file formats, exports, pages and error messages, on recordings whose verdicts
# and CPU figures they never judge (the session recordings they use are made at raised
# priority, tests/machine.py). The benchmark's own test comes next and waits for it, so it
# is never running beside a test that judges CPU, parallelism or a sampler's pace.
ALONGSIDE_THE_BENCHMARKS = (
    "test_analyze_frames.py", "test_analyze_states.py", "test_cli.py", "test_cores.py",
    "test_export.py", "test_native_names.py", "test_reader_columns.py", "test_reader_fuzz.py",
    "test_report.py", "test_report_export_links.py", "test_report_scale.py", "test_safety.py",
)
BENCHMARKS_TEST = "test_benchmarks_smoke.py"
# Under xdist (tests/turns.py; --dist loadfile hands out whole modules in this order) the
# benchmarks' test comes first and starts them itself (every worker collects: one may start
# them), and waits for them with its turn set aside. The longest modules of tests that need
# no turn alone come next, so that none of them is left running alone at the end; last, the
# demo and the measurements of speed-ups, which want the benchmarks long ended too.
XDIST_ORDER = {
    BENCHMARKS_TEST: 0,
    **dict.fromkeys(("test_analyze_states.py", "test_crafted.py", "test_hostile_paths.py",
                     "test_streamed.py", "test_meta.py", "test_safety.py", "test_reader_fuzz.py",
                     "test_reader_blocks.py", "test_compare.py", "test_faults.py"), 1),
    **dict.fromkeys(("test_demo.py", "test_try.py", "test_calibrate.py"), 3),
}
BENCHMARKS_RUN = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


class BackgroundBenchmarks:
    """`benchmarks/run.py --quick --json ... --output ...`, started now, in a session (so an
    autogroup) of its own; result() waits for it."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="inspector-bench-"))
        self.results_json, self.results_md = (self.folder / "results.json",
                                              self.folder / "RESULTS.md")
        self.argv = [sys.executable, str(BENCHMARKS_RUN), "--quick", "--json",
                     str(self.results_json), "--output", str(self.results_md)]
        self._out = open(self.folder / "stdout", "w+")  # noqa: SIM115 (closed in result/stop)
        self._err = open(self.folder / "stderr", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(self.argv, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, cwd=self.folder,
                                     start_new_session=True)

    def result(self, timeout_s: float) -> subprocess.CompletedProcess[str]:
        code = self.proc.wait(timeout_s)
        self._out.seek(0)
        self._err.seek(0)
        return subprocess.CompletedProcess(self.argv, code, self._out.read(), self._err.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._out.close()
        self._err.close()
        shutil.rmtree(self.folder, ignore_errors=True)


_benchmarks: BackgroundBenchmarks | None = None


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """Where the benchmarks' test is selected: the modules of ALONGSIDE_THE_BENCHMARKS first,
    then the benchmarks' test, then the rest, each in its own order; and the benchmarks
    started. Under xdist, XDIST_ORDER instead."""
    global _benchmarks
    if turns.turns() is not None:
        items.sort(key=lambda i: XDIST_ORDER.get(i.path.name, 2))  # stable: each in its order
        return
    if config.option.collectonly or not any(i.path.name == BENCHMARKS_TEST for i in items):
        return
    first = [i for i in items if i.path.name in ALONGSIDE_THE_BENCHMARKS]
    bench = [i for i in items if i.path.name == BENCHMARKS_TEST]
    rest = [i for i in items if i.path.name not in ALONGSIDE_THE_BENCHMARKS
            and i.path.name != BENCHMARKS_TEST]
    items[:] = first + bench + rest
    _benchmarks = BackgroundBenchmarks()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _benchmarks is not None:
        _benchmarks.stop()


# -- pytest-xdist's workers taking turns (tests/turns.py) --------------------------------------

def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "alone: under xdist no other test runs beside this one: it judges CPU or runs "
        "a program at raised priority from start to end (tests/turns.py)")
    if not hasattr(config, "workerinput") and getattr(config.option, "numprocesses", None):
        turns.start_run()  # the controller, before it starts the workers


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        turns.end_run()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """Each test holds its turn from its setup (module and session fixtures made for it
    included) to its teardown."""
    mine = turns.turns()
    if mine is None:
        yield
    elif item.get_closest_marker("alone") is not None:
        with mine.alone():
            yield
    else:
        mine.share()
        try:
            yield
        finally:
            mine.release()


@pytest.fixture(scope="session")
def benchmarks_quick() -> BackgroundBenchmarks:
    """The background run of `benchmarks/run.py --quick` (started here if collection did
    not)."""
    global _benchmarks
    if _benchmarks is None:
        _benchmarks = BackgroundBenchmarks()
    return _benchmarks
