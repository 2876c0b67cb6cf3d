"""The processes a recording follows: each one added when found (what it runs, which Python,
on how many cores), told apart from a later process with its pid, and ended when gone; the
writer's queue, through which other threads write; and the snapshot they may read.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from inspector.record import cores, futex, procfs
from inspector.record.interpreters import Interpreter, identify
from inspector.record.procfs import Gone, ProcFile, ThreadFiles, Unreadable
from inspector.recording import ProcessRecord, RecordingWriter
from inspector.recording.cpus import format_cpus, parse_cpus


@dataclass(frozen=True)
class ProcInfo:
    """What other recorder threads may know of a tracked process (immutable snapshot)."""

    proc_id: int
    pid: int
    parent_proc_id: int | None
    is_python: bool
    alive: bool
    start_s: float
    threads: int = 0
    python_version: str | None = None


@dataclass
class Proc:
    proc_id: int
    pid: int
    parent_proc_id: int | None
    starttime_ticks: int
    comm: str
    stat: ProcFile
    status: ProcFile | None
    io: ProcFile | None
    start_s: float
    exe: str | None = None
    cmdline: list[str] = field(default_factory=list)
    is_python: bool = False
    python_version: str | None = None
    threads: dict[int, ThreadFiles] = field(default_factory=dict)
    # each thread's last row but its time: a thread read the same again repeats it
    last_rows: dict[int, tuple] = field(default_factory=dict)
    alive: bool = True
    last_seen_s: float = 0.0
    exit_code: int | None = None
    last_uss_s: float = -1e9
    cpu_s: float = 0.0
    # where its futex addresses lie (the GIL or a lock): maps read once, for Python processes
    waits: futex.AddressClassifier | None = None
    cores_read_s: float = -1e9  # when its cgroup quota was last read
    cpus_text: str | None = None  # Cpus_allowed_list as its status file last showed it
    cgroup: ProcFile | None = None  # /proc/PID/cgroup, kept open while young (sampler._moved)
    cgroup_text: str | None = None
    quota: cores.Quota | None = None
    usable: tuple[frozenset[int] | None, cores.Quota | None] | None = None  # last written

    def close(self) -> None:
        for f in (self.stat, self.status, self.io, self.cgroup):
            if f is not None:
                f.close()
        for t in self.threads.values():
            t.close()
        self.threads.clear()
        self.last_rows.clear()


class ProcessTracker:
    """The tracked processes, and the one thread that writes (the sampler's: others
    `submit()`)."""

    def __init__(self, writer: RecordingWriter, t0_mono: float, ignore_pids: set[int]) -> None:
        self.writer = writer
        self.t0 = t0_mono
        self.ignore_pids = ignore_pids  # py-spy processes we started: not part of the target
        self._procs: dict[int, Proc] = {}  # by pid, alive ones
        self._all: list[Proc] = []
        # (pid, start time) of processes already ended: a zombie stays in its parent's
        # children list until reaped and must not come back as a new process every tick.
        self._ended: set[tuple[int, int]] = set()
        self._next_proc_id = 1
        self._boot_offset, self._btime = self._clock()
        self._tasks: queue.SimpleQueue[Callable[[RecordingWriter], None]] = queue.SimpleQueue()
        self._problem_seen: set[tuple[str, int | None]] = set()
        self.snapshot: tuple[ProcInfo, ...] = ()
        self.known_exit_codes: dict[int, int] = {}  # pid -> code, from waitpid where we reap
        self._my_pid = os.getpid()
        self._machine_cores = os.cpu_count() or 1
        self._lock = threading.Lock()

    # -- clocks ---------------------------------------------------------------------------
    def _clock(self) -> tuple[float, float]:
        """(CLOCK_BOOTTIME - CLOCK_MONOTONIC, boot time): turn /proc start times into the
        recording's clock and unix time (the psutil backend has its own)."""
        return procfs.boot_offset_s(), procfs.btime()

    def now_s(self) -> float:
        return time.monotonic() - self.t0

    def _to_recording_s(self, starttime_ticks: int) -> float:
        """A /proc start time (clock ticks since boot) on the recording's clock."""
        return starttime_ticks / procfs.CLK_TCK - self._boot_offset - self.t0

    # -- public API for other threads ------------------------------------------------------
    def submit(self, task: Callable[[RecordingWriter], None]) -> None:
        self._tasks.put(task)

    def problem(self, source: str, kind: str, detail: str = "", pid: int | None = None,
                tid: int | None = None, once_key: str | None = None) -> None:
        """Records that something could not be sampled; `once_key` de-duplicates."""
        if once_key is not None:
            key = (once_key, pid)
            if key in self._problem_seen:
                return
            self._problem_seen.add(key)
        t = self.now_s()
        self.submit(lambda w: w.add_problem(t, source, kind, detail, pid, tid))

    def alive_count(self) -> int:
        return sum(1 for p in self.snapshot if p.alive)

    # -- tracking --------------------------------------------------------------------------
    def add_root(self, pid: int, is_target: bool) -> bool:
        with self._lock:
            return self._add(pid, None, is_target, self.now_s()) is not None

    def _add(self, pid: int, parent: Proc | None, is_target: bool, t_s: float) -> Proc | None:
        if pid in self._procs or pid in self.ignore_pids or pid == self._my_pid:
            return None
        try:
            stat_file = ProcFile(f"/proc/{pid}/stat")
            st = procfs.parse_stat(stat_file.read())
        except (Gone, Unreadable):
            return None
        if (pid, st.starttime_ticks) in self._ended:
            stat_file.close()
            return None
        if parent is not None and st.ppid != parent.pid:  # a stale children list, pid reused
            stat_file.close()
            return None
        status = io = None
        try:
            status = ProcFile(f"/proc/{pid}/status")
        except (Gone, Unreadable):
            pass
        try:
            io = ProcFile(f"/proc/{pid}/io")
        except Unreadable:
            self.problem("proc", "permission", f"/proc/{pid}/io", pid=pid, once_key="io")
        except Gone:
            pass
        start_since_boot = st.starttime_ticks / procfs.CLK_TCK
        p = Proc(
            proc_id=self._next_proc_id, pid=pid,
            parent_proc_id=parent.proc_id if parent else None,
            starttime_ticks=st.starttime_ticks, comm=st.comm, stat=stat_file, status=status,
            io=io, start_s=self._to_recording_s(st.starttime_ticks), last_seen_s=t_s,
        )
        self._next_proc_id += 1
        try:
            p.cgroup = ProcFile(f"/proc/{pid}/cgroup")
            p.cgroup_text = p.cgroup.read()
        except (Gone, Unreadable):
            pass
        self._track(p, st.ppid, self._btime + start_since_boot, is_target, t_s)
        return p

    def _track(self, p: Proc, ppid: int, create_time: float, is_target: bool,
               t_s: float) -> None:
        """A process just found (by either backend's `_add`): what it runs, its row, its
        cores, and followed from now on."""
        py = self._learn_identity(p)
        self.writer.add_process(ProcessRecord(
            proc_id=p.proc_id, pid=p.pid, ppid=ppid, parent_proc_id=p.parent_proc_id,
            name=p.comm, cmdline=p.cmdline, exe=p.exe, create_time=create_time,
            start_s=p.start_s, is_python=py is not None, python_version=p.python_version,
            python_gil=py.gil if py else None, is_target=is_target,
        ))
        self._procs[p.pid] = p
        self._all.append(p)
        self._note_cores(p, t_s)

    def _learn_identity(self, p: Proc) -> Interpreter | None:
        """Its command line, executable and Python version, kept on `p`; the interpreter
        it runs (None: not Python)."""
        cmdline, exe = self._identity(p)
        py = identify(p.pid, exe, cmdline)
        p.is_python, p.exe, p.cmdline = py is not None, exe, cmdline
        p.python_version = py.version if py else None
        return py

    def _note_cores(self, p: Proc, t_s: float) -> None:
        """The cores this process may use: its affinity and its cgroup's CPU quota, read in
        full (when first seen, after an exec, and every CORES_EVERY_S for the quota)."""
        p.cores_read_s = t_s
        try:
            cpus = cores.affinity_cpus(p.pid)
            quota = cores.quota_of(p.pid)
        except (Gone, Unreadable, OSError, ValueError):
            return
        self._cores_are(p, t_s, cpus, quota)

    def _note_affinity(self, p: Proc, t_s: float, cpus_text: str | None) -> None:
        """The CPUs its status file, read this tick anyway, allows: a pin made between two
        ticks is seen at the next one, at the cost of comparing one line of text."""
        if cpus_text is None or cpus_text == p.cpus_text:
            return
        p.cpus_text = cpus_text
        cpus = parse_cpus(cpus_text)
        if cpus is not None:
            self._cores_are(p, t_s, cpus, p.quota)

    def _cores_are(self, p: Proc, t_s: float, cpus: frozenset[int] | None,
                   quota: cores.Quota | None) -> None:
        """Writes the process's cores when first known and whenever they change: a row of
        process_cores each time, and the latest in its processes row."""
        p.quota = quota
        if p.usable == (cpus, quota):
            return
        p.usable = (cpus, quota)
        u = cores.usable_cores_with(self._machine_cores, cpus, quota)
        self.writer.add_process_cores(
            t_s, p.proc_id, format_cpus(cpus) if cpus is not None else None, u.affinity_cores,
            u.quota_cores, u.usable_cores, u.limited_by, u.quota_cgroup)
        self.writer.update_process(p.proc_id, affinity_cores=u.affinity_cores,
                                   quota_cores=u.quota_cores, usable_cores=u.usable_cores,
                                   cores_limited_by=u.limited_by)

    def _identity(self, p: Proc) -> tuple[list[str], str | None]:
        try:
            cmdline = procfs.read_cmdline(p.pid)
        except (Gone, Unreadable):
            cmdline = []
        return cmdline, procfs.read_exe(p.pid)

    def _reidentify(self, p: Proc, comm: str) -> None:
        """The process exec'd (its comm changed): a shell or shim became Python, say."""
        p.comm = comm
        py = self._learn_identity(p)
        p.waits = None  # new mappings
        self._note_cores(p, p.last_seen_s)  # taskset and friends set affinity, then exec
        self.writer.update_process(p.proc_id, name=comm, cmdline=p.cmdline, exe=p.exe,
                                   is_python=int(py is not None),
                                   python_version=p.python_version,
                                   python_gil=py.gil if py else None)

    def _complete_version(self, p: Proc) -> None:
        """A Python caught before its libpython was mapped knows only the exe name's X.Y:
        read again once the library is there."""
        py = identify(p.pid, p.exe, p.cmdline)
        if py is not None and py.version != p.python_version and is_full_version(py.version):
            p.python_version = py.version
            self.writer.update_process(p.proc_id, python_version=py.version,
                                       python_gil=py.gil)

    def _end(self, p: Proc, exit_code: int | None) -> None:
        p.alive = False
        self._ended.add((p.pid, p.starttime_ticks))
        code = self.known_exit_codes.get(p.pid, exit_code)
        for tid in list(p.threads):
            self.writer.end_thread(p.proc_id, tid, p.last_seen_s)
        p.close()
        self._procs.pop(p.pid, None)
        self.writer.update_process(p.proc_id, end_s=p.last_seen_s, exit_code=code)
        p.exit_code = code

    def set_exit_code(self, pid: int, code: int) -> None:
        """An exit status learnt from waitpid (the target, or an orphan we reaped)."""
        def apply(w: RecordingWriter) -> None:
            self.known_exit_codes[pid] = code
            for p in reversed(self._all):
                if p.pid == pid:
                    if not p.alive:
                        w.update_process(p.proc_id, exit_code=code)
                    break
        self.submit(apply)

    def _drain(self) -> None:
        while True:
            try:
                task = self._tasks.get_nowait()
            except queue.Empty:
                return
            task(self.writer)


def is_full_version(version: str | None) -> bool:
    """'3.9.18' (or '3.13.0t'), not '3.9' from an executable's name."""
    return version is not None and version.count(".") >= 2
