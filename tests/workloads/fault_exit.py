"""Computes for SPIN_S seconds in `spin_before_the_end`, then ends as ENDING says.

ENDING: `exit:N` (sys.exit(N)), `signal:N` (kills itself with signal N), `abort`
(os.abort(): SIGABRT), `segfault` (reads address 0), `close-stdout` (closes fd 1 first,
then computes and exits 0).
With FAULT_PIDFILE set, writes its pid there first (a test that kills the recorder must
still be able to clean up the orphaned target). With FAULT_UNDUMPABLE=1, makes itself
non-dumpable first (prctl PR_SET_DUMPABLE 0): only a tracer with CAP_SYS_PTRACE may read it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

PR_SET_DUMPABLE = 4  # <linux/prctl.h>


def spin_before_the_end(seconds: float) -> int:
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += sum(range(200))
    return n


def main() -> None:
    spin_s, ending = float(sys.argv[1]), sys.argv[2]
    pidfile = os.environ.get("FAULT_PIDFILE")
    if pidfile:
        with open(pidfile, "w") as f:
            f.write(str(os.getpid()))
    undumpable = os.environ.get("FAULT_UNDUMPABLE") == "1"
    if undumpable and ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        sys.exit("fault_exit: prctl(PR_SET_DUMPABLE, 0) failed")
    if ending == "close-stdout":
        print("stdout closes now", flush=True)
        os.close(1)
    spin_before_the_end(spin_s)
    kind, _, arg = ending.partition(":")
    if kind == "exit":
        sys.exit(int(arg))
    if kind == "signal":
        signal.signal(int(arg), signal.SIG_DFL)
        os.kill(os.getpid(), int(arg))
        time.sleep(5)  # a stopped-not-killed signal would leave us here: the test then fails
    if kind == "abort":
        os.abort()
    if kind == "segfault":
        import faulthandler
        faulthandler.disable()  # the kernel's SIGSEGV, not Python's report of it
        ctypes.string_at(0)  # reads address 0: a real segmentation fault


if __name__ == "__main__":
    main()
