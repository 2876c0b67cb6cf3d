"""The signals sent to the recorder, passed on to the target it launched, and the terminal
the target is given and taken back from: Ctrl-C reaches the target's whole job exactly once,
as it would without inspector.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inspector.record.session import Session

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                     signal.SIGUSR1, signal.SIGUSR2)
_SI_KERNEL = 0x80


def tty_fd() -> int | None:
    """stdin's terminal if we are its foreground job (so the target can take it over)."""
    try:
        if os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp():
            return 0
    except OSError:
        pass
    return None


def forward_signals(session: Session, proc: subprocess.Popen[bytes], tty: int | None,
                    target_done: threading.Event) -> None:
    """Passes each signal sent to us on to the target (or, once it is gone, to its
    descendants still alive), unless the terminal already delivered it to them. A second
    SIGINT or SIGTERM finishes the recording at once (the target ignored the first)."""
    stops = 0
    while True:
        info = signal.sigwaitinfo(FORWARDED_SIGNALS)
        if (info.si_code == _SI_KERNEL and info.si_signo in (signal.SIGINT, signal.SIGQUIT)
                and has_terminal(tty, proc.pid)):
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


def has_terminal(tty: int | None, pgid: int) -> bool:
    """Whether process group `pgid` is the foreground job of terminal `tty`."""
    if tty is None:
        return False
    try:
        return os.tcgetpgrp(tty) == pgid
    except OSError:
        return False


def take_back_terminal(tty: int) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
    try:
        os.tcsetpgrp(tty, os.getpgrp())
    except OSError:
        pass
