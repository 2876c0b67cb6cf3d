"""Cheap, repeated reads of /proc for one process and its threads.

Files are opened once and re-read with `os.pread(fd, n, 0)`, which returns fresh values:
about 10 us per thread for stat+syscall+schedstat, against 75-80 us for open/read/close
(shared/MEASUREMENTS.md). A process or thread that vanishes raises `Gone`.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import NamedTuple

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_READ_SIZE = 4096


class Gone(Exception):
    """The process or thread no longer exists. An internal signal of record/, caught where
    it is met: a vanished process or thread is normal life (it is ended), not a failure
    for the CLI to report, so this is no InspectorError; one that escaped would be a bug,
    and should surface as one rather than as a one-line error."""


class Unreadable(Exception):
    """The file exists but may not be read (permission). An internal signal of record/,
    caught where it is met: what cannot be read is left out (a problem row says so where
    the gap matters) and the rest is recorded, so this is no InspectorError either."""


_GONE_ERRNOS = {errno.ENOENT, errno.ESRCH}
_DENIED_ERRNOS = {errno.EACCES, errno.EPERM}


def _raise_for(e: OSError) -> None:
    if e.errno in _GONE_ERRNOS:
        raise Gone() from None
    if e.errno in _DENIED_ERRNOS:
        raise Unreadable(str(e)) from None
    raise e


class ProcFile:
    """One /proc file kept open. `read()` returns its current text."""

    __slots__ = ("path", "fd")

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.fd: int | None = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            self.fd = None
            _raise_for(e)

    def read(self) -> str:
        if self.fd is None:
            raise Gone()
        try:
            data = os.pread(self.fd, _READ_SIZE, 0)
        except OSError as e:
            _raise_for(e)
            raise
        if not data:
            raise Gone()
        return data.decode("utf-8", "replace")

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


@dataclass(frozen=True)
class Stat:
    """The fields of /proc/PID[/task/TID]/stat we use."""

    comm: str
    state: str
    ppid: int
    pgrp: int
    utime_s: float
    stime_s: float
    num_threads: int
    starttime_ticks: int
    rss_bytes: int
    exit_code: int | None


def parse_stat(text: str) -> Stat:
    # comm is in parentheses and may itself hold spaces and ')': split at the last ')'.
    open_paren = text.find("(")
    close_paren = text.rfind(")")
    comm = text[open_paren + 1:close_paren]
    rest = text[close_paren + 2:].split()
    # rest[0] is field 3 (state); field N is rest[N - 3].
    exit_code = int(rest[49]) if len(rest) > 49 else None
    return Stat(
        comm=comm,
        state=rest[0],
        ppid=int(rest[1]),
        pgrp=int(rest[2]),
        utime_s=int(rest[11]) / CLK_TCK,
        stime_s=int(rest[12]) / CLK_TCK,
        num_threads=int(rest[17]),
        starttime_ticks=int(rest[19]),
        rss_bytes=int(rest[21]) * PAGE_SIZE,
        exit_code=exit_code,
    )


def parse_thread_stat(text: str) -> tuple[str, str, float, float, int]:
    """(comm, state, utime_s, stime_s, starttime_ticks): the fields read for every thread
    every tick, without splitting the other 30-odd fields or building a Stat."""
    close_paren = text.rfind(")")
    rest = text[close_paren + 2:].split(maxsplit=20)
    return (text[text.find("(") + 1:close_paren], rest[0], int(rest[11]) / CLK_TCK,
            int(rest[12]) / CLK_TCK, int(rest[19]))


def parse_syscall(text: str) -> int:
    """-1 when the thread is on a CPU ('running'); the syscall number it is blocked in."""
    head = text.split(" ", 1)[0].strip()
    if head == "running":
        return -1
    return int(head)


def parse_schedstat(text: str) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for a CPU)."""
    parts = text.split()
    return int(parts[0]) / 1e9, int(parts[1]) / 1e9


def _text_field(text: str, key: str) -> str | None:
    """The text after `key` (a whole line's start, colon included) in a /proc text file.
    Found with str.find: status has ~60 lines and is read for every process every tick
    (splitting it line by line cost ~30 us, this ~1 us)."""
    if text.startswith(key):
        start = len(key)
    else:
        at = text.find("\n" + key)
        if at < 0:
            return None
        start = at + 1 + len(key)
    end = text.find("\n", start)
    return text[start:end] if end >= 0 else text[start:]


def _field(text: str, key: str) -> int | None:
    """The integer after `key` (see _text_field)."""
    value = _text_field(text, key)
    return int(value) if value is not None else None


def parse_status_ctxt(text: str) -> tuple[int | None, int | None]:
    return (_field(text, "voluntary_ctxt_switches:"),
            _field(text, "nonvoluntary_ctxt_switches:"))


def parse_status_cpus(text: str) -> str | None:
    """Cpus_allowed_list: the CPUs the process's affinity allows, as the kernel lists them
    ('0-3,6'), stripped."""
    value = _text_field(text, "Cpus_allowed_list:")
    return value.strip() if value is not None else None


def parse_io(text: str) -> tuple[int | None, int | None]:
    """(rchar, wchar): bytes read and written through any file, socket or pipe."""
    return _field(text, "rchar:"), _field(text, "wchar:")


class ThreadReading(NamedTuple):
    """One thread's reading (a NamedTuple: built for every thread every tick, and a frozen
    dataclass costs ~2.7 us to build against ~0.4 us)."""

    tid: int
    comm: str
    state: str
    utime_s: float
    stime_s: float
    syscall: int | None
    on_cpu_s: float | None
    runqueue_s: float | None
    starttime_ticks: int
    syscall_text: str | None = None   # the syscall line read (its arguments: a futex's address)


# A thread that has not run is read in full again after this many reads all the same: its
# name can be changed from another thread (pthread_setname_np), and a woken thread that is
# still waiting for a core shows state R before its schedstat moves.
FULL_READ_EVERY = 10


class ThreadFiles:
    """stat, syscall, schedstat and children of one thread, kept open.

    A thread that has not run since the last read (its schedstat CPU and run-queue times
    unchanged) has used no CPU, can be in no other syscall and can have forked no child: its
    stat and syscall files are not re-read (the last reading stands, and the sampler may keep
    what it derived from it: `same`), and `ran` tells the sampler it may take its children as
    last read. Most threads of a program wait most of the time: this halves what a waiting
    thread costs a tick (one pread of schedstat instead of three reads and parses).
    """

    __slots__ = ("tid", "stat", "syscall", "schedstat", "children", "syscall_denied", "comm",
                 "ran", "same", "_children", "_last", "_same_reads")

    def __init__(self, pid: int, tid: int) -> None:
        base = f"/proc/{pid}/task/{tid}/"
        self.tid = tid
        self.stat = ProcFile(base + "stat")
        self.syscall: ProcFile | None = None
        self.schedstat: ProcFile | None = None
        self.children: ProcFile | None = None
        self.syscall_denied = False
        self.comm = ""
        self.ran = True
        self.same = False  # the last read() returned the reading before it
        self._last: ThreadReading | None = None
        self._same_reads = 0
        self._children: list[int] = []
        try:
            self.syscall = ProcFile(base + "syscall")
        except Unreadable:
            self.syscall_denied = True
        try:
            self.schedstat = ProcFile(base + "schedstat")
        except Unreadable:
            pass
        try:
            self.children = ProcFile(base + "children")
        except Unreadable:
            pass

    def read(self) -> ThreadReading:
        on_cpu = runq = None
        if self.schedstat is not None:
            try:
                on_cpu, runq = parse_schedstat(self.schedstat.read())
            except (Unreadable, ValueError, IndexError):
                pass
        last = self._last
        if (on_cpu is not None and last is not None and on_cpu == last.on_cpu_s
                and runq == last.runqueue_s and self._same_reads < FULL_READ_EVERY):
            self._same_reads += 1
            self.ran, self.same = False, True
            return last
        self._same_reads = 0
        self.same = False
        comm, state, utime_s, stime_s, starttime = parse_thread_stat(self.stat.read())
        self.ran = on_cpu is None or last is None or on_cpu != last.on_cpu_s
        sc, text = (last.syscall, last.syscall_text) if last is not None else (None, None)
        if self.syscall is not None and self.ran:
            text = None
            try:
                text = self.syscall.read()
                sc = parse_syscall(text)
            except Unreadable:
                self.syscall_denied = True
                sc = None
            except (ValueError, IndexError):
                sc = None
        self._last = ThreadReading(self.tid, comm, state, utime_s, stime_s, sc, on_cpu, runq,
                                   starttime, text)
        return self._last

    def child_pids(self, refresh: bool = True) -> list[int]:
        """The thread's children; with refresh=False, as last read (see `ran`)."""
        if self.children is None:
            return []
        if refresh:
            try:
                text = self.children.read()
            except Gone:
                text = ""
            self._children = [int(x) for x in text.split()]
        return self._children

    def close(self) -> None:
        for f in (self.stat, self.syscall, self.schedstat, self.children):
            if f is not None:
                f.close()


def read_text(path: str) -> str:
    """open/read/close for files read once; raises Gone or Unreadable."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError as e:
        _raise_for(e)
        raise


def read_cmdline(pid: int) -> list[str]:
    raw = read_text(f"/proc/{pid}/cmdline")
    return [part for part in raw.split("\x00") if part] if raw else []


def read_exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def list_tids(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError as e:
        _raise_for(e)
        raise


def boot_offset_s() -> float:
    """CLOCK_BOOTTIME minus CLOCK_MONOTONIC: turns /proc start times into monotonic time."""
    import time
    return time.clock_gettime(time.CLOCK_BOOTTIME) - time.monotonic()


def btime() -> float:
    for line in read_text("/proc/stat").splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0
