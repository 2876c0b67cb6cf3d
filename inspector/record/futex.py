"""Tell a thread waiting for the GIL from one waiting on a lock, by the futex it sleeps on.

A thread blocked in `futex` shows the address in /proc/PID/task/TID/syscall. CPython's GIL
waiters sleep on the GIL's condition variable or mutex inside the interpreter's own writable
data (`_PyRuntime`, in libpython's rw-p segment or its .bss, or the python executable's when
linked statically); a Lock, Event, Condition, Queue, SimpleQueue or join sleeps on an object of
its own on the heap, a thread stack or another anonymous mapping. So the address decides, and
the op and timeout are kept as evidence (a lock acquired with a timeout uses the GIL's op 0x89).
Measured facts: shared/MEASUREMENTS.md; costs: benchmarks/futex_cost.py.

`classify(addr, ranges)` is the pure per-sample step (a range check on an int);
`AddressClassifier` reads a process's maps once and again only when an address lies outside
every mapping it knows (a new mapping, an exec, a libpython loaded late); `forget()` on exec.

Limits (tests/test_futex.py): a subinterpreter with a GIL of its own (3.12+, the default of
`_interpreters.create()`) allocates that GIL on the heap, so its waiters are judged LOCK; one
sharing the main GIL is judged right. A free-threaded build (3.13t, none installed here) has no
GIL to wait for unless PYTHON_GIL=1 turns it back on (then it is `_PyRuntime`'s, as above);
its PyMutex waits park on the waiting thread's stack: LOCK. The anonymous mapping after the
interpreter's data is taken whole as its .bss: should the kernel merge a later anonymous mmap
into it, a lock there would be judged GIL (not seen here). Reading a thread's syscall file
needs ptrace access to the process (root, or the process's own user with Yama scope <= 1 for
one's descendants).
"""

from __future__ import annotations

import bisect
import os
import platform
import re
import time
from dataclasses import dataclass
from typing import NamedTuple

from inspector.record.procfs import Gone, ProcFile, read_text

# The futex syscall's number: it differs by architecture (None: unknown here, nothing is a futex).
FUTEX_NR_BY_MACHINE = {"x86_64": 202, "amd64": 202, "aarch64": 98, "arm64": 98}
FUTEX_NR: int | None = FUTEX_NR_BY_MACHINE.get(platform.machine().lower())

# What a futex wait is judged to be.
GIL = "gil"            # on the interpreter's own data: the GIL's condition variable or mutex
LOCK = "lock"          # anywhere else: a Lock, Event, Condition, Queue, join, a C library's mutex
UNKNOWN = "unknown"    # in no mapping even after re-reading the maps (freed meanwhile: a race)
UNMAPPED = "unmapped"  # classify()'s answer when the ranges given hold no mapping for the address

# Re-reading a process's maps costs a hundred times a sample (benchmarks/futex_cost.py) and
# takes the target's mmap lock: an address that stays outside every mapping (a race with
# munmap) must not make every tick re-read them.
MIN_REREAD_S = 0.5

# op = command | flags (linux/futex.h).
_FUTEX_PRIVATE_FLAG = 0x80
_FUTEX_CLOCK_REALTIME = 0x100
_FUTEX_CMD_MASK = ~(_FUTEX_PRIVATE_FLAG | _FUTEX_CLOCK_REALTIME)
FUTEX_COMMANDS = {
    0: "wait", 1: "wake", 2: "fd", 3: "requeue", 4: "cmp_requeue", 5: "wake_op", 6: "lock_pi",
    7: "unlock_pi", 8: "trylock_pi", 9: "wait_bitset", 10: "wake_bitset",
    11: "wait_requeue_pi", 12: "cmp_requeue_pi", 13: "lock_pi2",
}
# The commands that put a thread to sleep on the address (a thread seen in `wake` is running).
_WAITING_COMMANDS = frozenset({0, 6, 9, 11, 13})


class FutexWait(NamedTuple):
    """A thread's futex call, from /proc/PID/task/TID/syscall (a NamedTuple: one is built per
    waiting thread per tick)."""

    uaddr: int
    op: int
    val: int
    has_timeout: bool  # the timeout pointer is not NULL (relative for wait, absolute for bitset)

    @property
    def command(self) -> str:
        cmd = self.op & _FUTEX_CMD_MASK
        return FUTEX_COMMANDS.get(cmd, f"cmd_{cmd}")

    @property
    def private(self) -> bool:
        return bool(self.op & _FUTEX_PRIVATE_FLAG)

    @property
    def waiting(self) -> bool:
        """The call sleeps on uaddr (wait, wait_bitset, the PI locks), rather than wakes others."""
        return (self.op & _FUTEX_CMD_MASK) in _WAITING_COMMANDS


def parse_futex_wait(text: str, futex_nr: int | None = FUTEX_NR) -> FutexWait | None:
    """The futex call in a /proc/PID/task/TID/syscall line, or None: 'running', '-1 sp pc'
    (blocked outside a syscall, a page fault say), any other syscall, an unknown architecture.

    The line is `nr arg1 ... arg6 sp pc` in hex after the decimal number; futex's arguments
    are uaddr, op, val, timeout, uaddr2, val3.
    """
    if futex_nr is None:
        return None
    head, _, rest = text.partition(" ")
    if not head or head[0] == "r" or head[0] == "-":  # 'running', '-1'
        return None
    try:
        if int(head) != futex_nr:
            return None
        args = rest.split(" ", 4)
        return FutexWait(int(args[0], 16), int(args[1], 16), int(args[2], 16),
                         int(args[3], 16) != 0)
    except (ValueError, IndexError):
        return None


@dataclass(frozen=True)
class AddressRanges:
    """One reading of /proc/PID/maps, reduced to what classify() needs.

    `interpreter` holds the interpreter's writable data: the rw-p segments of libpython (or of
    the python executable when it is linked statically, or has no libpython) and the anonymous
    mapping right after the last of them (the .bss, a separate mapping on 3.9). `starts`/`ends`
    hold every mapping, sorted, to tell an address the reading does not know.
    """

    interpreter: tuple[tuple[int, int], ...]
    interpreter_path: str | None
    starts: tuple[int, ...]
    ends: tuple[int, ...]


def classify(addr: int, ranges: AddressRanges) -> str:
    """GIL, LOCK or UNMAPPED (no mapping in `ranges` holds addr: re-read the maps)."""
    for start, end in ranges.interpreter:
        if start <= addr < end:
            return GIL
    i = bisect.bisect_right(ranges.starts, addr) - 1
    if i >= 0 and addr < ranges.ends[i]:
        return LOCK
    return UNMAPPED


_LIBPYTHON = re.compile(r"/libpython\d+\.\d+[a-z]*\.so[.\d]*$")
_PYTHON_EXE = re.compile(r"/python(?:\d+(?:\.\d+)?)?t?(?:-dbg)?$")


def parse_maps(text: str, exe: str | None = None) -> AddressRanges:
    """AddressRanges from the text of /proc/PID/maps.

    The interpreter is the libpython mapped, if any; else `exe` (the realpath of
    /proc/PID/exe) when it is named like a python executable (a static build), else a mapped
    file so named. A process holding neither (not Python, or a Python embedded statically in
    an executable of another name) has no interpreter ranges: all its waits are LOCK.
    """
    rows: list[tuple[int, int, str, str]] = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        low, _, high = parts[0].partition("-")
        try:
            rows.append((int(low, 16), int(high, 16), parts[1],
                         parts[5] if len(parts) > 5 else ""))
        except ValueError:
            continue
    rows.sort()
    paths = {path for _, _, _, path in rows if path.startswith("/")}
    interpreter_path = next((p for p in sorted(paths) if _LIBPYTHON.search(p)), None)
    if interpreter_path is None and exe is not None and exe in paths and _PYTHON_EXE.search(exe):
        interpreter_path = exe
    if interpreter_path is None:
        interpreter_path = next((p for p in sorted(paths) if _PYTHON_EXE.search(p)), None)
    interpreter: list[tuple[int, int]] = []
    if interpreter_path is not None:
        last = -1
        for i, (lo, hi, perms, path) in enumerate(rows):
            if path == interpreter_path and perms.startswith("rw"):
                interpreter.append((lo, hi))
                last = i
        if last >= 0 and last + 1 < len(rows):
            lo, hi, perms, path = rows[last + 1]
            # The .bss past the file's pages: anonymous, adjacent, writable.
            if path == "" and lo == rows[last][1] and perms.startswith("rw"):
                interpreter.append((lo, hi))
    return AddressRanges(tuple(interpreter), interpreter_path,
                         tuple(r[0] for r in rows), tuple(r[1] for r in rows))


def read_maps(pid: int) -> AddressRanges:
    """parse_maps of a live process; raises procfs.Gone or procfs.Unreadable."""
    text = read_text(f"/proc/{pid}/maps")
    try:
        exe: str | None = os.path.realpath(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        exe = None
    return parse_maps(text, exe)


class AddressClassifier:
    """classify() for one process, its maps read once and re-read only when an address lies
    outside every mapping known (at most once per MIN_REREAD_S), or after forget() (exec)."""

    __slots__ = ("pid", "ranges", "maps_reads", "unknowns", "_read_at", "_min_reread_s")

    def __init__(self, pid: int, min_reread_s: float = MIN_REREAD_S) -> None:
        self.pid = pid
        self.ranges: AddressRanges | None = None
        self.maps_reads = 0   # how many times the maps were read (the cost paid)
        self.unknowns = 0     # how many addresses were left UNKNOWN
        self._read_at = float("-inf")
        self._min_reread_s = min_reread_s

    def forget(self) -> None:
        """The process exec'd: its mappings are new."""
        self.ranges = None
        self._read_at = float("-inf")

    def _read(self) -> AddressRanges:
        self.ranges = read_maps(self.pid)
        self.maps_reads += 1
        self._read_at = time.monotonic()
        return self.ranges

    def kind(self, addr: int) -> str:
        """GIL, LOCK or UNKNOWN for a futex address; raises procfs.Gone / Unreadable when the
        maps must be read and cannot be."""
        ranges = self.ranges if self.ranges is not None else self._read()
        k = classify(addr, ranges)
        if k != UNMAPPED:
            return k
        if time.monotonic() - self._read_at >= self._min_reread_s:
            k = classify(addr, self._read())
            if k != UNMAPPED:
                return k
        self.unknowns += 1
        return UNKNOWN


class ThreadWait(NamedTuple):
    """A thread's futex wait and what it was judged to be, with the evidence."""

    tid: int
    kind: str          # GIL, LOCK or UNKNOWN
    uaddr: int
    op: int
    has_timeout: bool


def judge(tid: int, wait: FutexWait, classifier: AddressClassifier) -> ThreadWait | None:
    """The sampler's per-thread step, given the syscall line it already read and parsed:
    None when the call wakes others instead of waiting."""
    if not wait.waiting:
        return None
    return ThreadWait(tid, classifier.kind(wait.uaddr), wait.uaddr, wait.op, wait.has_timeout)


def read_thread_waits(pid: int, classifier: AddressClassifier | None = None
                      ) -> dict[int, ThreadWait | None]:
    """Every thread of a live process: its futex wait judged, or None (on a CPU, in another
    syscall, gone meanwhile). One-shot reads (open/read/close); a sampler keeps the syscall
    files open (procfs.ThreadFiles) and calls parse_futex_wait and judge itself.
    Raises procfs.Gone when the process is gone, procfs.Unreadable without ptrace access."""
    classifier = classifier if classifier is not None else AddressClassifier(pid)
    try:
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError as e:
        raise Gone() from e
    out: dict[int, ThreadWait | None] = {}
    for tid in tids:
        try:
            f = ProcFile(f"/proc/{pid}/task/{tid}/syscall")
            try:
                text = f.read()
            finally:
                f.close()
        except Gone:
            continue  # the thread ended
        wait = parse_futex_wait(text)
        out[tid] = judge(tid, wait, classifier) if wait is not None else None
    return out


__all__ = ["FUTEX_NR", "GIL", "LOCK", "UNKNOWN", "UNMAPPED", "AddressClassifier",
           "AddressRanges", "FutexWait", "ThreadWait", "classify", "judge",
           "parse_futex_wait", "parse_maps", "read_maps", "read_thread_waits"]
