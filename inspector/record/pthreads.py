"""Kernel thread ids for the pthread ids py-spy reports on Python 3.9 and 3.10.

Before 3.11 a thread state holds no native thread id, and py-spy finds one only by
unwinding a stopped thread, which `--nonblocking` never does: its `thread (0x7F..)` frames
carry the pthread id, the address of glibc's `struct pthread`, which keeps the kernel tid
at a fixed offset. The offset is learnt from our own threads (same glibc), and each id is
read from the target's /proc/PID/mem, the access py-spy itself needs. A thread that ends is
found by a scan made while it lived: glibc keeps each thread's struct pthread at the top
of its stack mapping, starting with two pointers to itself. A process that runs another C
library (musl, another glibc, a static program's own) is not read at these offsets.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

_TID_SIZE = 4  # pid_t
_SEARCH_BYTES = 0x800  # struct pthread is ~2 KiB on x86-64 glibc; its tid sits at 0x2d0
_STACK_TOP_BYTES = 128 << 10  # struct pthread and static TLS sit this near a stack's top
_STACK_BYTES = (64 << 10, 256 << 20)  # sizes of mappings that may be thread stacks


# A C library in a /proc/PID/maps line: glibc's, musl's (`ld-musl-ARCH.so.1` or its
# `libc.so` under a musl folder)
_C_LIBRARY = re.compile(r"/(?:libc\.so\.6|libc-[\d.]+\.so|ld-musl-[\w-]+\.so\.1|libc\.so)$")

# Why a process's threads are not read (see foreign_c_library), told once per process.
OnSkip = Callable[[int, str], None]


def _c_library(maps: str) -> tuple[str, str] | None:
    """(the dev:inode, path) of the C library a process maps; None for none."""
    for line in maps.splitlines():
        f = line.split(maxsplit=5)
        if len(f) == 6 and _C_LIBRARY.search(f[5]):
            return f"{f[3]}:{f[4]}", f[5]
    return None


@functools.lru_cache(maxsize=1)
def _our_c_library() -> tuple[str, str] | None:
    try:
        return _c_library(Path("/proc/self/maps").read_text())
    except OSError:
        return None


def foreign_c_library(maps: str) -> str | None:
    """Why the struct pthread offsets learnt from our own threads may not hold for the
    process whose /proc/PID/maps is `maps`; None when it maps our very C library file (the
    same device and inode: the same build, so the same layout)."""
    ours, theirs = _our_c_library(), _c_library(maps)
    if theirs is None:
        return ("its threads were not read: it maps no shared C library (a static program, "
                "whose struct pthread inspector does not know)")
    if ours is not None and theirs[0] == ours[0]:
        return None
    kind = "musl" if "musl" in theirs[1] else "another C library"
    return (f"its threads were not read: it runs {kind} ({theirs[1]}), whose struct pthread "
            f"is not laid out as this recorder's {ours[1] if ours else 'glibc'}")


def _tid_offsets(mem_fd: int, pthread_id: int, tid: int) -> set[int]:
    try:
        raw = os.pread(mem_fd, _SEARCH_BYTES, pthread_id)
    except OSError:
        return set()
    return {k for k in range(0, len(raw) - _TID_SIZE + 1, _TID_SIZE)
            if int.from_bytes(raw[k:k + _TID_SIZE], "little") == tid}


@functools.lru_cache(maxsize=1)
def tid_offset() -> int | None:
    """Where glibc keeps a thread's tid in its struct pthread: the offset that holds it
    for our main thread and for a second thread alike (None: not glibc, or unreadable)."""
    try:
        fd = os.open("/proc/self/mem", os.O_RDONLY)
    except OSError:
        return None
    try:
        found: list[set[int]] = []
        helper = threading.Thread(
            target=lambda: found.append(_tid_offsets(fd, threading.get_ident(),
                                                     threading.get_native_id())),
            name="inspector-tid-offset")
        helper.start()
        helper.join()
        common = _tid_offsets(fd, threading.get_ident(), threading.get_native_id())
        for offsets in found:
            common &= offsets
        return min(common) if common and found else None
    finally:
        os.close(fd)


class PthreadTids:
    """pthread id -> tid for the processes of a recording, remembered across py-spy runs:
    the kernel clears a thread's tid when it exits, so an ended thread is known only if
    an earlier read saw it alive."""

    def __init__(self, on_skip: OnSkip | None = None) -> None:
        self.on_skip = on_skip
        self._foreign: dict[int, str | None] = {}  # pid -> why it is not read (None: read)
        self._known: dict[tuple[int, int], int] = {}
        # mappings already scanned, by pid: a stack glibc reuses for a new thread keeps its
        # struct pthread where it was, and tid_of reads the new tid there
        self._scanned: dict[int, set[tuple[int, int]]] = {}

    def scan(self, pid: int) -> None:
        """Finds the struct pthread of every thread of `pid` now alive (but the main
        thread's, whose tid is the pid) and remembers its tid."""
        offset = tid_offset()
        if offset is None:
            return
        import numpy as np  # only for Python < 3.11 targets

        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            return
        if not self.readable(pid, maps):
            return
        try:
            fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
        except OSError:
            return
        scanned = self._scanned.setdefault(pid, set())
        try:
            for line in maps.splitlines():
                fields = line.split()
                if len(fields) != 5 or fields[1] != "rw-p" or fields[4] != "0":
                    continue  # thread stacks are private anonymous mappings
                start, end = (int(x, 16) for x in fields[0].split("-"))
                if (not _STACK_BYTES[0] <= end - start <= _STACK_BYTES[1]
                        or (start, end) in scanned):
                    continue
                scanned.add((start, end))
                base = max(start, end - _STACK_TOP_BYTES)
                try:
                    raw = os.pread(fd, end - base, base)
                except OSError:
                    continue
                words = np.frombuffer(raw[:len(raw) // 8 * 8], dtype="<u8")
                addresses = np.arange(len(words), dtype=np.uint64) * np.uint64(8) \
                    + np.uint64(base)
                selfish = np.flatnonzero(words == addresses)  # tcbhead_t.tcb == itself
                for i in selfish:
                    if i + 2 >= len(words) or words[i + 2] != words[i]:  # and .self
                        continue
                    at = int(i) * 8 + offset
                    tid = int.from_bytes(raw[at:at + _TID_SIZE], "little")
                    if tid > 0 and os.path.exists(f"/proc/{pid}/task/{tid}"):
                        self._known[(pid, int(words[i]))] = tid
        finally:
            os.close(fd)

    def readable(self, pid: int, maps: str | None = None) -> bool:
        """Whether `pid` runs our C library, so its struct pthreads may be read (said once
        through on_skip when not)."""
        if pid not in self._foreign:
            if maps is None:
                try:
                    maps = Path(f"/proc/{pid}/maps").read_text()
                except OSError:
                    return False
            why = self._foreign[pid] = foreign_c_library(maps)
            if why is not None and self.on_skip is not None:
                self.on_skip(pid, why)
        return self._foreign[pid] is None

    def pthreads_of(self, pid: int) -> dict[int, int]:
        """tid -> pthread id of the threads of `pid` found so far (see scan)."""
        return {tid: pt for (p, pt), tid in self._known.items() if p == pid}

    def tid_of(self, pid: int, pthread_id: int) -> int | None:
        key = (pid, pthread_id)
        tid = self._read(pid, pthread_id) if self.readable(pid) else None
        if tid is not None:
            self._known[key] = tid
            return tid
        return self._known.get(key)

    @staticmethod
    def _read(pid: int, pthread_id: int) -> int | None:
        offset = tid_offset()
        if offset is None:
            return None
        try:
            fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
        except OSError:
            return None
        try:
            raw = os.pread(fd, _TID_SIZE, pthread_id + offset)
        except OSError:
            return None
        finally:
            os.close(fd)
        tid = int.from_bytes(raw, "little") if len(raw) == _TID_SIZE else 0
        # A live thread of this very process, or the read hit something else.
        if tid > 0 and os.path.exists(f"/proc/{pid}/task/{tid}"):
            return tid
        return None
