"""Linux syscall numbers a waiting thread is seen in, and what kind of wait each means.

The recorder turns /proc/PID/task/TID/syscall numbers into names with `syscall_name`;
the analysis turns names into wait kinds with `WAIT_KIND`. Numbers differ by architecture.
"""

from __future__ import annotations

import platform

# Numbers for the syscalls a blocked thread is usually found in (and a few common others).
_X86_64 = {
    0: "read", 1: "write", 3: "close", 7: "poll", 9: "mmap", 17: "pread64", 18: "pwrite64",
    19: "readv", 20: "writev", 23: "select", 24: "sched_yield", 34: "pause",
    35: "nanosleep", 40: "sendfile", 42: "connect", 43: "accept", 44: "sendto",
    45: "recvfrom", 46: "sendmsg", 47: "recvmsg", 61: "wait4", 65: "semop", 70: "msgrcv",
    72: "fcntl", 73: "flock", 74: "fsync", 75: "fdatasync", 128: "rt_sigtimedwait",
    130: "rt_sigsuspend", 202: "futex", 208: "io_getevents", 220: "semtimedop",
    230: "clock_nanosleep", 232: "epoll_wait", 247: "waitid", 257: "openat",
    270: "pselect6", 271: "ppoll", 275: "splice", 281: "epoll_pwait", 288: "accept4",
    299: "recvmmsg", 307: "sendmmsg", 318: "getrandom", 426: "io_uring_enter",
    441: "epoll_pwait2", 449: "futex_waitv",
}
_AARCH64 = {
    22: "epoll_pwait", 56: "openat", 57: "close", 63: "read", 64: "write", 65: "readv",
    66: "writev", 67: "pread64", 68: "pwrite64", 72: "pselect6", 73: "ppoll",
    82: "fsync", 95: "waitid", 98: "futex", 101: "nanosleep", 115: "clock_nanosleep",
    124: "sched_yield", 133: "rt_sigsuspend", 137: "rt_sigtimedwait", 202: "accept",
    203: "connect", 206: "sendto", 207: "recvfrom", 211: "sendmsg", 212: "recvmsg",
    242: "accept4", 260: "wait4", 278: "getrandom", 426: "io_uring_enter",
    441: "epoll_pwait2", 449: "futex_waitv",
}
_TABLES = {"x86_64": _X86_64, "amd64": _X86_64, "aarch64": _AARCH64, "arm64": _AARCH64}
_TABLE = _TABLES.get(platform.machine().lower(), {})

# What a thread blocked in each syscall is waiting for.
WAIT_KIND = {
    # futex: a Python thread blocked on the GIL, a Lock, Condition, Queue, Event or join
    "futex": "lock", "futex_waitv": "lock", "semop": "lock", "semtimedop": "lock",
    "flock": "lock",
    "nanosleep": "sleep", "clock_nanosleep": "sleep", "pause": "sleep",
    "rt_sigsuspend": "sleep", "rt_sigtimedwait": "sleep", "sched_yield": "runqueue",
    "wait4": "child", "waitid": "child",
}
for _name in ("read", "write", "poll", "select", "pselect6", "ppoll", "epoll_wait",
              "epoll_pwait", "epoll_pwait2", "accept", "accept4", "connect", "sendto",
              "recvfrom", "sendmsg", "recvmsg", "recvmmsg", "sendmmsg", "readv", "writev",
              "pread64", "pwrite64", "sendfile", "splice", "fsync", "fdatasync",
              "io_getevents", "io_uring_enter", "msgrcv", "openat", "getrandom"):
    WAIT_KIND[_name] = "io"


def syscall_name(number: int) -> str:
    """'running' for -1 (on a CPU), the name where known, else 'syscall_<n>'."""
    if number < 0:
        return "running"
    return _TABLE.get(number, f"syscall_{number}")
