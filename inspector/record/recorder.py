"""Runs or attaches to a target, samples it until its whole process tree has exited, and
finishes the recording whatever happens to the target (exit, crash, signal, Ctrl-C).
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from inspector import __version__
from inspector.errors import AttachError, OutputError, TargetNotFound
from inspector.record import portable, procfs
from inspector.record.budget import GIL_RATE_HZ, STACKS_BUDGET_CORES
from inspector.record.pyspy import PERMISSION_HINT, find_py_spy, py_spy_version
from inspector.record.runs import RUN_LENGTHS_S
from inspector.record.sampler import FLUSH_EVERY_S, Sampler
from inspector.record.secrets import SecretMask
from inspector.record.stacks import StackSampler
from inspector.recording import DEFAULT_INTERVAL_S, DEFAULT_RATE_HZ, RecordingWriter
from inspector.recording.schema import DEFAULT_LINGER_S
from inspector.recording.untrusted import is_recording

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                     signal.SIGUSR1, signal.SIGUSR2)
_PR_SET_CHILD_SUBREAPER = 36
_SI_KERNEL = 0x80
STATUS_EVERY_S = 0.5  # the live status line's refresh period
# The recording is written beside its path under this suffix (a killed recorder leaves it
# there, readable) and renamed onto the path when complete; a recording already at the path
# is kept as PATH.old, as perf keeps perf.data.old.
PARTIAL_SUFFIX = ".partial"
OLD_SUFFIX = ".old"
_PYSPY_TEMP_PREFIX = "inspector-pyspy-"  # stacks.StackSampler's folders: ...-PID-XXXX

__all__ = ["AttachError", "OutputError", "RecordOptions", "RecordResult", "TargetNotFound",
           "attach", "record_command"]


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


def _become_subreaper() -> bool:
    """Orphaned descendants get re-parented to us, so we keep seeing (and reaping) them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _replaceable(path: Path) -> bool:
    """Whether a file at `path` may be moved aside for a new recording: a recording (kept
    as .old) or an empty file (`mktemp`'s)."""
    try:
        return path.stat().st_size == 0 or is_recording(path)
    except OSError:
        return False


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + PARTIAL_SUFFIX)


def _open_output(path: Path, mask: SecretMask) -> RecordingWriter:
    """The writer, on PATH.partial, created 0600. Never destroys what is not ours: a path
    holding anything but a recording (or an empty file) is refused and left as it is."""
    for where in (path, partial_path(path)):
        if where.exists() and not where.is_file():
            raise OutputError(f"cannot write recording {where}: exists and is not a regular file")
        if where.exists() and not _replaceable(where):
            raise OutputError(f"cannot write recording {where}: exists and is not an inspector"
                              " recording (left as it is; choose another -o)")
    partial = partial_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The file, its -wal and -shm are created private: a recording holds command lines.
        old_umask = os.umask(0o077)
        try:
            writer = RecordingWriter(partial, mask)
        finally:
            os.umask(old_umask)
        os.chmod(partial, 0o600)
        return writer
    except OSError as e:
        raise OutputError(f"cannot write recording {path}: {e.strerror or e}") from None
    except Exception as e:  # sqlite3.Error: a path SQLite cannot create or lock
        raise OutputError(f"cannot write recording {path}: {e}") from None


def _discard_output(writer: RecordingWriter) -> None:
    """A recording that never started (the command cannot run): gone, all of it."""
    writer.close()
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(writer.path) + suffix).unlink(missing_ok=True)


def _publish(partial: Path, path: Path) -> tuple[Path, str | None]:
    """Renames the finished recording onto `path`, a recording there kept as PATH.old;
    returns where the recording is and, if not at `path`, why."""
    try:
        if path.exists() or path.is_symlink():
            if not path.is_file() or not _replaceable(path):
                return partial, (f"inspector: {path} was replaced meanwhile by something not a"
                                 f" recording: the recording stays at {partial}")
            old = path.with_name(path.name + OLD_SUFFIX)
            os.replace(path, old)
            for suffix in ("-wal", "-shm"):  # never left beside another file to be replayed
                if os.path.exists(str(path) + suffix):
                    os.replace(str(path) + suffix, str(old) + suffix)
        else:  # a -wal whose database is gone would be replayed onto ours: it is nothing now
            for suffix in ("-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):  # a reader kept it open in WAL mode
            if os.path.exists(str(partial) + suffix):
                os.replace(str(partial) + suffix, str(path) + suffix)
        os.replace(partial, path)
    except OSError as e:
        return partial, (f"inspector: cannot move the recording to {path}"
                         f" ({e.strerror or e}): it stays at {partial}")
    return path, None


def clean_stale_temp_folders() -> None:
    """Removes the py-spy folders (command lines in them) of recorders that were killed."""
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(_PYSPY_TEMP_PREFIX):
            continue
        owner = entry.name[len(_PYSPY_TEMP_PREFIX):].split("-", 1)[0]
        try:
            if not owner.isdigit() or entry.stat(follow_symlinks=False).st_uid != os.getuid() \
                    or not entry.is_dir(follow_symlinks=False):
                continue
        except OSError:
            continue
        if int(owner) == os.getpid() or os.path.exists(f"/proc/{owner}"):
            continue  # its recorder is alive (or its pid reused: left for a later run)
        shutil.rmtree(entry.path, ignore_errors=True)


class _Session:
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
        alive = {p.pid for p in self.sampler.snapshot if p.alive} | set(_living_children(self))
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
    try:
        ptrace_scope = int(procfs.read_text("/proc/sys/kernel/yama/ptrace_scope").strip())
    except (procfs.Gone, procfs.Unreadable, ValueError):
        ptrace_scope = None
    return {
        "mode": mode, "command": list(command), "cwd": os.getcwd(),
        "cpu_count": os.cpu_count() or 1,
        "settings": {"interval_s": opts.interval_s, "rate_hz": opts.rate,
                     "stacks": opts.stacks},
        "inspector_version": __version__, "recorder_python": platform.python_version(),
        "platform": platform.platform(), "machine": platform.machine(),
        "hostname": platform.node(), "clk_tck": procfs.CLK_TCK,
        "ptrace_scope": ptrace_scope, "complete": False, "backend": portable.backend(),
    }


def _exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _tty_fd() -> int | None:
    """stdin's terminal if we are its foreground job (so the target can take it over)."""
    try:
        if os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp():
            return 0
    except OSError:
        pass
    return None


def record_command(command: Sequence[str], opts: RecordOptions) -> RecordResult:
    """Runs `command` with stdio passed through and records it; returns its exit status."""
    _raise_fd_limit()
    clean_stale_temp_folders()
    writer = _open_output(opts.output, SecretMask(opts.redact))
    session = _Session(opts, writer, "launch")
    writer.set_meta({**_base_meta(opts, "launch", command),
                     "start_time_unix": session.start_unix})
    writer.flush()
    _become_subreaper()
    tty = _tty_fd()
    # The signals we forward are only ever received by sigwait below, from before the
    # target starts (a Ctrl-C in between would otherwise orphan it): every thread started
    # later inherits this mask; the target unblocks them for itself.
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
    try:
        proc = _start_target(command, tty, writer)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
        raise
    started_s = time.monotonic() - session.t0  # to the ms, where samples see 0.1 s steps
    session.sampler.add_root(proc.pid, is_target=True)
    session.start()
    session.start_stacks()
    target_done = threading.Event()
    threading.Thread(target=_forward_signals, args=(session, proc, tty, target_done),
                     name="inspector-signals", daemon=True).start()

    returncode = _wait_target(proc, session.finish_now)
    exited_s = time.monotonic() - session.t0
    target_done.set()
    extra_meta = {"target_pid": proc.pid, "target_start_s": round(started_s, 6)}
    if returncode is not None:
        extra_meta["target_exit_s"] = round(exited_s, 6)
        _sample_now(session)
        session.sampler.set_exit_code(proc.pid, returncode)
        if tty is not None:
            _take_back_terminal(tty)
        _wait_for_tree(session, time.monotonic() + opts.linger_s)
        session.note_still_running(f"{opts.linger_s:g} s after the command exited (--linger)")
        status = _exit_status(returncode)
    else:  # a second SIGINT/SIGTERM: the target ignored the first
        session.note_still_running("when told twice to stop")
        status = 128 + session.last_signal
    duration = session.finish(returncode, extra_meta)
    return _result(session, opts, status, duration)


def _sample_now(session: _Session) -> None:
    """Takes a sample at once and waits for it (at most an interval): a target that
    exited is seen gone now, not up to an interval later (a whole command's tail)."""
    ticks = session.sampler.ticks
    session.wake.set()
    deadline = time.monotonic() + session.opts.interval_s
    while (session.sampler.ticks == ticks and session.sampler_error is None
           and time.monotonic() < deadline):
        time.sleep(0.002)


def _wait_target(proc: subprocess.Popen[bytes], stop: threading.Event) -> int | None:
    """The target's exit status as soon as it exits (a pidfd says when, to the
    microsecond), or None if `stop` is set first."""
    try:
        pidfd: int | None = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # Linux < 5.3: poll
        pidfd = None
    try:
        while proc.poll() is None and not stop.is_set():
            if pidfd is not None:
                select.select([pidfd], [], [], 0.05)
            else:
                stop.wait(0.005)
    finally:
        if pidfd is not None:
            os.close(pidfd)
    return proc.returncode


def _start_target(command: Sequence[str], tty: int | None, writer: RecordingWriter
                  ) -> subprocess.Popen[bytes]:
    """The target, started in its own process group (given the terminal, if we have it).
    A command that cannot run leaves no recording behind: TargetNotFound, with the exit
    status a shell would give (127 not found, 126 not runnable)."""

    def child_setup() -> None:
        # Its own process group, given the terminal: Ctrl-C reaches the target's whole job
        # (as without inspector) and not us, so it is delivered exactly once.
        os.setpgid(0, 0)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)  # blocked only in us
        if tty is not None:
            old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            try:
                os.tcsetpgrp(tty, os.getpgrp())
            except OSError:
                pass
            signal.signal(signal.SIGTTOU, old)

    try:
        return subprocess.Popen(list(command), preexec_fn=child_setup)
    except OSError as e:
        _discard_output(writer)  # whatever was at the output path stays as it was
        if isinstance(e, FileNotFoundError):
            raise TargetNotFound(f"command not found: {command[0]}", 127) from None
        if isinstance(e, PermissionError):
            raise TargetNotFound(f"permission denied: {command[0]}", 126) from None
        raise TargetNotFound(f"cannot run {command[0]}: {e.strerror or e}", 126) from None


def _forward_signals(session: _Session, proc: subprocess.Popen[bytes], tty: int | None,
                     target_done: threading.Event) -> None:
    """Passes each signal sent to us on to the target (or, once it is gone, to its
    descendants still alive), unless the terminal already delivered it to them. A second
    SIGINT or SIGTERM finishes the recording at once (the target ignored the first)."""
    stops = 0
    while True:
        info = signal.sigwaitinfo(FORWARDED_SIGNALS)
        if (info.si_code == _SI_KERNEL and info.si_signo in (signal.SIGINT, signal.SIGQUIT)
                and _has_terminal(tty, proc.pid)):
            continue  # from our terminal, whose foreground job is the target's: it got it
        if info.si_signo in (signal.SIGINT, signal.SIGTERM):
            stops += 1
            if stops >= 2:
                session.last_signal = info.si_signo
                session.finish_now.set()
                continue
        # Otherwise the terminal's foreground job is ours (stdin was not the terminal, so
        # the target was not given it): only we got it, as from `kill`. Pass it on.
        if not target_done.is_set():
            try:
                if info.si_signo in (signal.SIGINT, signal.SIGQUIT):
                    os.killpg(proc.pid, info.si_signo)  # as the terminal would
                else:
                    proc.send_signal(info.si_signo)
            except (ProcessLookupError, PermissionError):
                pass
        else:  # target gone, descendants linger: pass it on to them
            for p in session.sampler.snapshot:
                if p.alive:
                    try:
                        os.kill(p.pid, info.si_signo)
                    except (ProcessLookupError, PermissionError):
                        pass


def _has_terminal(tty: int | None, pgid: int) -> bool:
    """Whether process group `pgid` is the foreground job of terminal `tty`."""
    if tty is None:
        return False
    try:
        return os.tcgetpgrp(tty) == pgid
    except OSError:
        return False


def _take_back_terminal(tty: int) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
    try:
        os.tcsetpgrp(tty, os.getpgrp())
    except OSError:
        pass


def _wait_for_tree(session: _Session, deadline: float | None = None) -> None:
    """Keeps recording while descendants of the target live on; reaps orphans we inherit."""
    while True:
        _reap_orphans(session)
        if (session.sampler.alive_count() == 0 and session.sampler.ticks > 0
                and not _living_children(session)):
            # We are a subreaper: a descendant still alive that the sampler has not seen
            # would have been re-parented to us, so none left means the tree is gone.
            return
        if deadline is not None and time.monotonic() >= deadline:
            return
        if session.sampler_error is not None or session.finish_now.is_set():
            return
        session.finish_now.wait(min(0.05, session.opts.interval_s))


def _living_children(session: _Session) -> list[int]:
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


def _reap_orphans(session: _Session) -> None:
    ignore = session.ignore_pids
    for p in session.sampler.snapshot:
        if p.pid in ignore:
            continue
        try:
            pid, status = os.waitpid(p.pid, os.WNOHANG)
        except ChildProcessError:
            continue  # not our child
        if pid:
            session.sampler.set_exit_code(pid, os.waitstatus_to_exitcode(status))


def attach(pid: int, opts: RecordOptions) -> RecordResult:
    """Records a running process and its descendants until they exit or `duration_s`."""
    # psutil: the same check where /proc does not exist (pid and create time stay its
    # identity for the sampler)
    import psutil

    try:
        cmdline = portable.check_attachable(pid)
        os.kill(pid, 0)
    except (psutil.NoSuchProcess, ProcessLookupError):
        raise AttachError(f"no process with pid {pid}") from None
    except (psutil.AccessDenied, PermissionError):
        raise AttachError(f"not permitted to inspect pid {pid} (try as its user or root)") \
            from None
    if pid == os.getpid():
        raise AttachError("cannot attach to inspector itself")
    _raise_fd_limit()
    clean_stale_temp_folders()
    writer = _open_output(opts.output, SecretMask(opts.redact))
    session = _Session(opts, writer, "attach")
    writer.set_meta({**_base_meta(opts, "attach", cmdline),
                     "start_time_unix": session.start_unix, "target_pid": pid})
    writer.flush()
    if not session.sampler.add_root(pid, is_target=True):
        _discard_output(writer)
        raise AttachError(f"no process with pid {pid}")
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
    session.start()
    session.start_stacks()
    stop = threading.Event()

    def on_signal() -> None:
        signal.sigwaitinfo(FORWARDED_SIGNALS)
        stop.set()  # we do not own the target: a signal ends the recording, not the target

    threading.Thread(target=on_signal, name="inspector-signals", daemon=True).start()
    deadline = time.monotonic() + opts.duration_s if opts.duration_s else None
    root_gone_at: float | None = None
    while not stop.is_set() and not (opts.stop is not None and opts.stop.is_set()):
        if session.sampler.ticks > 0 and session.sampler.alive_count() == 0:
            break
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            break
        if root_gone_at is None and not any(p.alive for p in session.sampler.snapshot
                                            if p.pid == pid):
            root_gone_at = now if session.sampler.ticks > 0 else None
        if root_gone_at is not None and now - root_gone_at >= opts.linger_s:
            session.note_still_running(f"{opts.linger_s:g} s after pid {pid} exited (--linger)")
            break
        stop.wait(0.05)
    duration = session.finish(None, {})
    return _result(session, opts, 0, duration)


def _result(session: _Session, opts: RecordOptions, status: int, duration: float
            ) -> RecordResult:
    if session.sampler_error is not None:
        session.warnings.append(f"inspector: sampling stopped early: {session.sampler_error!r}")
    if session.write_failed is not None:
        session.warnings.append(f"inspector: could not write all of the recording: "
                                f"{session.write_failed}")
    n = len({p.proc_id for p in session.sampler.snapshot})
    where, why = _publish(session.writer.path, opts.output)
    if why is not None:
        session.warnings.append(why)
    return RecordResult(where, status, duration, n, session.warnings)

