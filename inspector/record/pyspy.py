"""py-spy, the program: where it is, its version, whether it may read a process's memory
(ptrace), and what it does with the threads of each Python version.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

PY_SPY_STARTUP_S = 0.03  # typical delay from launching py-spy to its first sample
PERMISSION_HINT = (
    "inspector: cannot read Python stacks (ptrace not permitted); recording everything else. "
    "Run as root, or `sudo sysctl kernel.yama.ptrace_scope=0`, or in a container add "
    "--cap-add SYS_PTRACE.")
_CAP_SYS_PTRACE = 19  # bit in /proc/self/status CapEff (<linux/capability.h>)


def names_pthreads(python_version: str | None) -> bool:
    """Whether py-spy --nonblocking gives this Python's threads as pthread ids (< 3.11)."""
    m = re.match(r"(\d+)\.(\d+)", python_version or "")
    return m is not None and (int(m[1]), int(m[2])) < (3, 11)


def ptrace_scope() -> int | None:
    """Yama's kernel.yama.ptrace_scope (who may trace whom), or None without Yama."""
    try:
        return int(Path("/proc/sys/kernel/yama/ptrace_scope").read_text())
    except (OSError, ValueError):
        return None


def may_trace(pid: int) -> bool:
    """Whether a py-spy we start may read `pid`'s memory. Asked of the kernel, because
    `py-spy record --subprocesses` reports a refused attach only as "No python processes
    found". Opening /proc/PID/mem makes the ptrace access check py-spy meets (uid,
    dumpable, capabilities); Yama's ptrace_scope >= 1 also refuses it, py-spy being our
    child and not the target's ancestor, unless we hold CAP_SYS_PTRACE."""
    try:
        os.close(os.open(f"/proc/{pid}/mem", os.O_RDONLY))
    except PermissionError:
        return False
    except OSError:
        return True  # gone, or not a question of permission
    scope = ptrace_scope()
    if scope is None:
        return True  # no Yama
    if scope == 0:
        return True
    if scope >= 3:
        return False
    try:
        status = Path("/proc/self/status").read_text()
        cap_eff = int(next(ln.split()[1] for ln in status.splitlines()
                           if ln.startswith("CapEff:")), 16)
    except (OSError, ValueError, StopIteration):
        return True
    return bool(cap_eff >> _CAP_SYS_PTRACE & 1)


def find_py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which("py-spy")


def py_spy_version(exe: str) -> str | None:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().replace("py-spy ", "") or None
