"""Runs a command and records it: the target started in its own process group (given the
terminal), sampled until its whole process tree has exited, and the recording finished
whatever happens to the target (exit, crash, signal, Ctrl-C).
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Sequence

from inspector.errors import TargetNotFound
from inspector.record.output import discard_output
from inspector.record.session import (
    RecordOptions,
    RecordResult,
    Session,
    living_children,
    open_session,
    record_result,
)
from inspector.record.signals import (
    FORWARDED_SIGNALS,
    forward_signals,
    take_back_terminal,
    tty_fd,
)
from inspector.recording import RecordingWriter

_PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> bool:
    """Orphaned descendants get re-parented to us, so we keep seeing (and reaping) them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def record_command(command: Sequence[str], opts: RecordOptions) -> RecordResult:
    """Runs `command` with stdio passed through and records it; returns its exit status."""
    session = open_session(opts, "launch", command)
    _become_subreaper()
    tty = tty_fd()
    # The signals we forward are only ever received by sigwait below, from before the
    # target starts (a Ctrl-C in between would otherwise orphan it): every thread started
    # later inherits this mask; the target unblocks them for itself.
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
    try:
        proc = _start_target(command, tty, session.writer)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
        raise
    started_s = time.monotonic() - session.t0  # to the ms, where samples see 0.1 s steps
    session.sampler.add_root(proc.pid, is_target=True)
    session.start()
    session.start_stacks()
    target_done = threading.Event()
    threading.Thread(target=forward_signals, args=(session, proc, tty, target_done),
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
            take_back_terminal(tty)
        _wait_for_tree(session, time.monotonic() + opts.linger_s)
        session.note_still_running(f"{opts.linger_s:g} s after the command exited (--linger)")
        status = _exit_status(returncode)
    else:  # a second SIGINT/SIGTERM: the target ignored the first
        session.note_still_running("when told twice to stop")
        status = 128 + session.last_signal
    duration = session.finish(returncode, extra_meta)
    return record_result(session, opts, status, duration)


def _sample_now(session: Session) -> None:
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
        discard_output(writer)  # whatever was at the output path stays as it was
        if isinstance(e, FileNotFoundError):
            raise TargetNotFound(f"command not found: {command[0]}", 127) from None
        if isinstance(e, PermissionError):
            raise TargetNotFound(f"permission denied: {command[0]}", 126) from None
        raise TargetNotFound(f"cannot run {command[0]}: {e.strerror or e}", 126) from None


def _wait_for_tree(session: Session, deadline: float | None = None) -> None:
    """Keeps recording while descendants of the target live on; reaps orphans we inherit."""
    while True:
        _reap_orphans(session)
        if (session.sampler.alive_count() == 0 and session.sampler.ticks > 0
                and not living_children(session)):
            # We are a subreaper: a descendant still alive that the sampler has not seen
            # would have been re-parented to us, so none left means the tree is gone.
            return
        if deadline is not None and time.monotonic() >= deadline:
            return
        if session.sampler_error is not None or session.finish_now.is_set():
            return
        session.finish_now.wait(min(0.05, session.opts.interval_s))


def _reap_orphans(session: Session) -> None:
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
