"""Attaching to a running process: recorded with its descendants until they exit, the
recording is stopped (a signal, `inspector top` quitting) or its duration is up; the
process is never signalled, not being ours.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from inspector.errors import AttachError
from inspector.record import portable
from inspector.record.output import discard_output
from inspector.record.session import RecordOptions, RecordResult, open_session, record_result
from inspector.record.signals import FORWARDED_SIGNALS


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
    session = open_session(opts, "attach", cmdline, target_pid=pid)
    if not session.sampler.add_root(pid, is_target=True):
        discard_output(session.writer)
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
    return record_result(session, opts, 0, duration)
