"""A recording run: what it is asked (RecordOptions) and gives back (RecordResult), and the
Session its threads share: the sampling thread, the py-spy runs, the recording's meta, and
the end that writes it all whatever happened to the target.
"""

from __future__ import annotations

import os
import platform
import resource
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from inspector import __version__
from inspector.errors import CalibrationError
from inspector.record import portable, procfs
from inspector.record.budget import GIL_RATE_HZ, STACKS_BUDGET_CORES
from inspector.record.output import clean_stale_temp_folders, open_output, publish
from inspector.record.pyspy import PERMISSION_HINT, find_py_spy, ptrace_scope, py_spy_version
from inspector.record.runs import RUN_LENGTHS_S
from inspector.record.sampler import Sampler
from inspector.record.secrets import SecretMask
from inspector.record.stacks import StackSampler
from inspector.recording import DEFAULT_INTERVAL_S, DEFAULT_RATE_HZ, RecordingWriter
from inspector.recording.calibration import Calibration
from inspector.recording.schema import DEFAULT_LINGER_S

FLUSH_EVERY_S = 0.5  # commit period: a killed recorder loses at most this much
STATUS_EVERY_S = 0.5  # the live status line's refresh period


@dataclass
class RecordOptions:
    output: Path
    interval_s: float = DEFAULT_INTERVAL_S
    rate: int = DEFAULT_RATE_HZ
    stacks: bool = True
    quiet: bool = False
    duration_s: float | None = None  # attach mode: stop after this long
    redact: str | None = None  # a regex masked in every text stored (secrets always are)
    linger_s: float = DEFAULT_LINGER_S  # follow descendants this long after the target ends
    # attach mode: set by another thread (`inspector top` quitting) to end the recording
    stop: threading.Event | None = None
    gil_check: bool = False  # also run py-spy --gil (a cross-check of the futex GIL waits)
    # measure the machine beside the recording (record/calibrate.py), before the target
    # starts (never in its time), and again after its tree has gone where asked
    calibrate: bool = True
    calibrate_end: bool = False


@dataclass
class RecordResult:
    path: Path
    exit_status: int
    duration_s: float
    processes: int
    warnings: list[str]


def _raise_fd_limit() -> None:
    # Every sampled thread keeps 4 /proc files open: 1,000 threads need 4,000 fds.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass


def open_session(opts: RecordOptions, mode: str, command: Sequence[str],
                 **meta: object) -> Session:
    """What launching and attaching both begin with: the output opened (PATH.partial), the
    py-spy folders of killed recorders removed, and the recording's first meta written."""
    _raise_fd_limit()
    clean_stale_temp_folders()
    measured, failed = measure_machine() if opts.calibrate else (None, None)
    writer = open_output(opts.output, SecretMask(opts.redact))
    session = Session(opts, writer, mode)
    writer.set_meta({**_base_meta(opts, mode, command),
                     "start_time_unix": session.start_unix, **meta,
                     **({"calibration": measured.to_dict()} if measured else {})})
    if failed:
        writer.add_problem(0.0, "calibrate", "failed", failed)
    writer.flush()
    return session


def measure_machine(measure_starts: bool = True) -> tuple[Calibration | None, str | None]:
    """The machine's calibration, or why there is none (the recording goes on without it:
    its predictions then say the machine was not measured)."""
    from inspector.record.calibrate import calibrate

    try:
        return calibrate(measure_starts=measure_starts), None
    except (CalibrationError, OSError) as e:
        return None, str(e) or type(e).__name__


class Session:
    """What a recording run shares between its threads."""

    def __init__(self, opts: RecordOptions, writer: RecordingWriter, mode: str) -> None:
        self.opts = opts
        self.writer = writer
        self.mode = mode
        self.t0 = time.monotonic()
        self.start_unix = time.time()
        self.ignore_pids: set[int] = set()
        # secrets and --redact are masked by the writer, in every text it stores
        sampler = portable.sampler_class()  # /proc, or psutil where there is none
        self.sampler: Sampler = sampler(writer, self.t0, opts.interval_s, self.ignore_pids)
        self.stacks: StackSampler | None = None
        self.warnings: list[str] = []
        self.stop_sampling = threading.Event()
        # set to take the next sample now (the target exited: the tree's end is seen at once,
        # not up to an interval later) or to stop
        self.wake = threading.Event()
        self.sampler_error: BaseException | None = None
        self._status_shown = False
        self._thread = threading.Thread(target=self._sample_loop, name="inspector-sampler",
                                        daemon=True)
        self.write_failed: str | None = None
        self.finish_now = threading.Event()  # a second SIGINT or SIGTERM: stop waiting
        self.last_signal = int(signal.SIGINT)  # the one that set finish_now
        self.still_running: list[tuple[int, str]] = []  # (pid, name) left running at the end
        # Found before the target starts: once we are a subreaper, every child we start
        # ourselves would look like an orphan of the target's.
        self.py_spy = find_py_spy() if opts.stacks else None
        self.py_spy_version = py_spy_version(self.py_spy) if self.py_spy else None

    # -- sampling thread ----------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def _sample_loop(self) -> None:
        interval = self.opts.interval_s
        next_tick = time.monotonic()
        last_flush = last_status = next_tick
        show_status = not self.opts.quiet and sys.stderr.isatty()
        try:
            while not self.stop_sampling.is_set():
                self.sampler.tick()
                now = time.monotonic()
                if now - last_flush >= FLUSH_EVERY_S:
                    self._flush()
                    last_flush = now
                if show_status and now - last_status >= STATUS_EVERY_S:
                    self._show_status()
                    last_status = now
                next_tick += interval
                delay = next_tick - time.monotonic()
                if delay < 0:
                    self.sampler.lagged_ticks += 1
                    next_tick = time.monotonic()  # skip, don't burst to catch up
                    delay = 0
                self.wake.wait(delay)
                self.wake.clear()
            self.sampler.tick()
        except BaseException as e:
            self.sampler_error = e
        finally:
            if self._status_shown:
                sys.stderr.write("\r\x1b[2K")
                sys.stderr.flush()

    def _flush(self) -> None:
        self.writer.flush()  # never raises: a failure is kept in writer.error

    def _show_status(self) -> None:
        st = self.sampler.status
        line = (f"inspector: recording {st.elapsed_s:6.1f} s  {st.processes} processes  "
                f"{st.threads} threads  CPU {st.cpu_percent:5.0f}%")
        sys.stderr.write("\r\x1b[2K" + line)
        sys.stderr.flush()
        self._status_shown = True

    def start_stacks(self) -> None:
        if not self.opts.stacks:
            self.writer.set_meta({"stacks": {"enabled": False, "reason": "--no-stacks"}})
            return
        exe = self.py_spy
        if exe is None:
            msg = "inspector: py-spy not found, so no Python stacks; `pip install py-spy`"
            self.warnings.append(msg)  # printed once, at the end, by the command
            self.sampler.problem("py-spy", "missing", "py-spy not found")
            self.writer.set_meta({"stacks": {"enabled": False, "reason": "py-spy not found"}})
            return
        self.writer.set_meta({"stacks": self._stacks_meta()})
        self.stacks = StackSampler(self.sampler, exe, self.opts.rate, self.opts.quiet,
                                   self.ignore_pids, gil_check=self.opts.gil_check)
        self.stacks.start()

    def _stacks_meta(self) -> dict:
        """How stacks are sampled (the asked rate is in meta["settings"], once); once
        finished, with the lowest rate py-spy was run at (lowered for many threads)."""
        meta = {"enabled": True, "sampler": "py-spy", "py_spy_version": self.py_spy_version,
                "mode": "nonblocking", "chunk_s": RUN_LENGTHS_S[0],
                "run_lengths_s": list(RUN_LENGTHS_S), "budget_cores": STACKS_BUDGET_CORES}
        if self.opts.gil_check:
            meta["gil_rate_hz"] = min(self.opts.rate, GIL_RATE_HZ)
        if self.stacks is not None and self.stacks.lowest_rate_hz is not None:
            meta["rate_hz_used"] = self.stacks.lowest_rate_hz
            meta["rates_hz_used"] = [list(c) for c in self.stacks.rate_changes]
        return meta

    def finish(self, exit_code: int | None, extra_meta: dict) -> float:
        stacks_meta = {}
        if self.stacks is not None:
            self.stacks.stop()
            if self.stacks.failed is not None:
                self.warnings.append(f"inspector: Python stacks stopped early "
                                     f"({self.stacks.failed}); everything else was recorded")
            if self.stacks.permission_denied:
                self.warnings.append(PERMISSION_HINT)
                stacks_meta = {"stacks": {"enabled": False, "reason": "ptrace not permitted"}}
            else:
                stacks_meta = {"stacks": self._stacks_meta()}
        self.stop_sampling.set()
        self.wake.set()
        self._thread.join()
        self.sampler.finish()
        recorder_cpu = self.sampler.recorder_cpu()
        if recorder_cpu is not None:
            extra_meta = {"recorder_cpu": recorder_cpu, **extra_meta}
        duration = time.monotonic() - self.t0
        if self.opts.calibrate and self.opts.calibrate_end:  # the tree is gone: not its time
            measured, failed = measure_machine(measure_starts=False)
            if measured is not None:
                extra_meta = {**extra_meta, "calibration_end": measured.to_dict()}
            if failed:
                self.writer.add_problem(duration, "calibrate", "failed", f"at the end: {failed}")
        self.writer.set_meta({
            **stacks_meta,
            "duration_s": duration, "exit_code": exit_code, "complete": True,
            "ticks": self.sampler.ticks, "lagged_ticks": self.sampler.lagged_ticks,
            "interpreters": self.writer.interpreters(),
            "left_running": [{"pid": pid, "name": name} for pid, name in self.still_running],
            **extra_meta,
        })
        self.writer.close()  # never raises: every write failure is kept in writer.error
        if self.writer.error is not None:
            self.write_failed = self.writer.error
        return duration

    def note_still_running(self, since: str) -> None:
        """Names the processes of the tree still alive as the recording ends (left alone)."""
        alive = {p.pid for p in self.sampler.snapshot if p.alive} | set(living_children(self))
        self.still_running = [(pid, _comm(pid)) for pid in sorted(alive)
                              if os.path.exists(f"/proc/{pid}")]
        if self.still_running:
            named = ", ".join(f"{pid} ({name})" for pid, name in self.still_running[:5])
            more = len(self.still_running) - 5
            self.warnings.append(
                f"inspector: {len(self.still_running)} process"
                f"{'es' if len(self.still_running) > 1 else ''} still running {since},"
                f" left running: {named}{f' and {more} more' if more > 0 else ''}")


def _comm(pid: int) -> str:
    try:
        return procfs.read_text(f"/proc/{pid}/comm").strip()
    except (procfs.Gone, procfs.Unreadable):
        return "?"


def _base_meta(opts: RecordOptions, mode: str, command: Sequence[str]) -> dict:
    return {
        "mode": mode, "command": list(command), "cwd": os.getcwd(),
        "cpu_count": os.cpu_count() or 1,
        "settings": {"interval_s": opts.interval_s, "rate_hz": opts.rate,
                     "stacks": opts.stacks},
        "inspector_version": __version__, "recorder_python": platform.python_version(),
        "platform": platform.platform(), "machine": platform.machine(),
        "hostname": platform.node(), "clk_tck": procfs.CLK_TCK,
        "ptrace_scope": ptrace_scope(), "complete": False, "backend": portable.backend(),
    }


def living_children(session: Session) -> list[int]:
    """Our own children that are not py-spy runs and not zombies."""
    me = os.getpid()
    found = []
    try:
        tids = os.listdir(f"/proc/{me}/task")
    except OSError:
        return []
    for tid in tids:
        try:
            text = procfs.read_text(f"/proc/{me}/task/{tid}/children")
        except (procfs.Gone, procfs.Unreadable):
            continue
        for pid in map(int, text.split()):
            if pid in session.ignore_pids:
                continue
            try:
                if procfs.parse_stat(procfs.read_text(f"/proc/{pid}/stat")).state in "ZX":
                    continue
            except (procfs.Gone, procfs.Unreadable):
                continue
            found.append(pid)
    return found


def record_result(session: Session, opts: RecordOptions, status: int, duration: float
            ) -> RecordResult:
    if session.sampler_error is not None:
        session.warnings.append(f"inspector: sampling stopped early: {session.sampler_error!r}")
    if session.write_failed is not None:
        session.warnings.append(f"inspector: could not write all of the recording: "
                                f"{session.write_failed}")
    n = len({p.proc_id for p in session.sampler.snapshot})
    where, why = publish(session.writer.path, opts.output)
    if why is not None:
        session.warnings.append(f"inspector: {why}")
    return RecordResult(where, status, duration, n, session.warnings)
