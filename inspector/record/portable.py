"""The portable sampler: the same recording written through psutil, for systems without
/proc (macOS, Windows), or forced with INSPECTOR_BACKEND=psutil (how it is tested on Linux).

It knows less: psutil gives each thread its CPU time but not its state or the syscall it is
blocked in, so a thread is either on a CPU (its CPU time grew) or not, and its waits are
"other" (the analysis cannot tell the GIL from a lock from I/O or sleep); no run-queue time
and no futex addresses. Processes are found with `children()`, whose cost grows with every
pid on the system (shared/MEASUREMENTS.md), which is why /proc stays the Linux default.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil

from inspector.record.machine import MachineMeter, MachineSample
from inspector.record.processes import Proc
from inspector.record.sampler import USS_EVERY_S, Sampler

BACKEND_ENV = "INSPECTOR_BACKEND"  # "psutil" forces this backend; "procfs" or unset: /proc
PROCFS, PSUTIL = "procfs", "psutil"
_RACES = (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess)


def backend() -> str:
    """The backend a recording made now uses: /proc where it exists, unless forced."""
    forced = os.environ.get(BACKEND_ENV, "").strip().lower()
    if forced == PSUTIL:
        return PSUTIL
    return PROCFS if os.path.isdir("/proc/self/task") else PSUTIL


def sampler_class() -> type[Sampler]:
    return PsutilSampler if backend() == PSUTIL else Sampler


def check_attachable(pid: int) -> list[str]:
    """The command line of a process we may look at. Raises psutil.NoSuchProcess or
    psutil.AccessDenied (the attach check, on every system)."""
    if pid <= 0:  # psutil takes 0 for the kernel's idle task and refuses negatives
        raise psutil.NoSuchProcess(pid)
    proc = psutil.Process(pid)
    try:
        return proc.cmdline()
    except psutil.ZombieProcess:
        raise psutil.NoSuchProcess(pid) from None


@dataclass
class _Thread:
    """A psutil-sampled thread: nothing to close (the /proc sampler keeps files open)."""

    tid: int

    def close(self) -> None:
        pass


class _PsutilMachine(MachineMeter):
    """The machine's busy cores and the recorder's own, from psutil."""

    def __init__(self) -> None:  # no /proc files to open
        self._me = psutil.Process()
        self._helpers: dict[int, psutil.Process] = {}
        self._helper_cpu: dict[int, float] = {}
        self._ended_cpu = 0.0
        self._last: tuple[float, float, float] | None = None
        self._first_own: tuple[float, float, float] | None = None  # as MachineMeter's
        self._last_own: tuple[float, float, float] | None = None

    def close(self) -> None:
        self._helpers.clear()

    def read(self, t_s: float, helper_pids: set[int]) -> MachineSample | None:
        t = psutil.cpu_times()
        busy = sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0) \
            - getattr(t, "guest_nice", 0.0)
        mine = self._me.cpu_times()
        return self._sample(t_s, busy, mine.user + mine.system,
                            self._helpers_total(set(helper_pids)))

    def _helpers_total(self, pids: set[int]) -> float:
        for pid in set(self._helpers) - pids:
            self._helpers.pop(pid)
            self._ended_cpu += self._helper_cpu.pop(pid, 0.0)
        for pid in pids:
            try:
                proc = self._helpers.get(pid) or self._helpers.setdefault(pid, psutil.Process(pid))
                c = proc.cpu_times()
                self._helper_cpu[pid] = c.user + c.system
            except _RACES:
                continue
        return sum(self._helper_cpu.values()) + self._ended_cpu


class PsutilSampler(Sampler):
    """Sampler's rounds, bookkeeping and writes, with psutil's reads in place of /proc's."""

    def _clock(self) -> tuple[float, float]:
        self._handles: dict[int, psutil.Process] = {}
        self._uss_denied = False
        # unix time of the recording's zero
        self._t0_unix = time.time() - (time.monotonic() - self.t0)
        return 0.0, psutil.boot_time()

    def _machine_meter(self) -> MachineMeter:
        return _PsutilMachine()

    def _recording_s(self, create_time: float) -> float:
        return create_time - self._t0_unix

    def _add(self, pid: int, parent: Proc | None, is_target: bool, t_s: float) -> Proc | None:
        if pid in self._procs or pid in self.ignore_pids or pid == self._my_pid:
            return None
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                create_time, name, ppid = proc.create_time(), proc.name(), proc.ppid()
        except _RACES:
            return None
        ticks = int(create_time * 100)  # identity: pid + create time
        if (pid, ticks) in self._ended:
            return None
        if parent is not None and ppid != parent.pid:
            return None
        p = Proc(proc_id=self._next_proc_id, pid=pid,
                 parent_proc_id=parent.proc_id if parent else None, starttime_ticks=ticks,
                 comm=name, stat=None, status=None, io=None,  # type: ignore[arg-type]
                 start_s=self._recording_s(create_time), last_seen_s=t_s)
        self._next_proc_id += 1
        self._handles[pid] = proc
        self._track(p, ppid, create_time, is_target, t_s)
        return p

    def _identity(self, p: Proc) -> tuple[list[str], str | None]:
        proc = self._handles.get(p.pid)
        cmdline: list[str] = []
        exe = None
        if proc is not None:
            try:
                cmdline = proc.cmdline()
            except _RACES:
                pass
            try:
                exe = proc.exe() or None
            except _RACES:
                pass
        return cmdline, exe

    def _note_cores(self, p: Proc, t_s: float) -> None:
        """Affinity where psutil has it (Linux, Windows); no cgroup quota. Read at every
        tick (a system call, ~2 us): a program may pin itself at any moment."""
        p.cores_read_s = t_s
        proc = self._handles.get(p.pid)
        try:
            cpus = frozenset(proc.cpu_affinity()) if proc is not None else None  # type: ignore[union-attr]
        except (AttributeError, *_RACES):
            cpus = None  # macOS has no affinity
        self._cores_are(p, t_s, cpus or None, None)

    def _end(self, p: Proc, exit_code: int | None) -> None:
        self._handles.pop(p.pid, None)
        super()._end(p, exit_code)

    def _sample_process(self, p: Proc, t_s: float, proc_rows: list, thread_rows: list) -> None:
        proc = self._handles.get(p.pid)
        try:
            if proc is None or not proc.is_running():  # is_running: pid and create time
                raise psutil.NoSuchProcess(p.pid)
            with proc.oneshot():
                status = proc.status()
                if status in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                    raise psutil.ZombieProcess(p.pid)
                name = proc.name()
                cpu = proc.cpu_times()
                rss = proc.memory_info().rss
                n_threads = proc.num_threads()
                ctx = _or_none(proc.num_ctx_switches)
                io = _or_none(proc.io_counters) if hasattr(proc, "io_counters") else None
                threads = proc.threads()
        except _RACES:
            self._end(p, None)
            return
        p.last_seen_s = t_s
        if name != p.comm:
            self._reidentify(p, name)  # reads its cores too
        else:
            self._note_cores(p, t_s)
        uss = None
        if t_s - p.last_uss_s >= USS_EVERY_S and not self._uss_denied:
            p.last_uss_s = t_s
            try:
                uss = proc.memory_full_info().uss
            except psutil.AccessDenied:
                self._uss_denied = True
            except (psutil.NoSuchProcess, AttributeError):
                pass
        read = write = None
        if io is not None:  # chars: every read and write (as /proc's rchar); else disk bytes
            read = getattr(io, "read_chars", io.read_bytes)
            write = getattr(io, "write_chars", io.write_bytes)
        p.cpu_s = cpu.user + cpu.system
        proc_rows.append((t_s, p.proc_id, p.pid, cpu.user, cpu.system, rss, uss, n_threads,
                          ctx.voluntary if ctx else None, ctx.involuntary if ctx else None,
                          read, write, status))
        live = {t.id for t in threads}
        for tid in list(p.threads):
            if tid not in live:
                p.threads.pop(tid).close()
                self.writer.end_thread(p.proc_id, tid, t_s)
        for t in threads:
            if t.id not in p.threads:
                p.threads[t.id] = _Thread(t.id)  # type: ignore[assignment]
                self.writer.upsert_thread(p.proc_id, p.pid, t.id, name, t_s)
            # no state, syscall or schedstat: a thread's CPU time is all that is known
            thread_rows.append((t_s, p.proc_id, p.pid, t.id, t.user_time, t.system_time,
                                None, None, None, None, None, None))
        try:
            children = [c.pid for c in proc.children()]
        except _RACES:
            children = []
        for child in children:
            if child not in self._procs:
                self._add(child, p, False, t_s)

    def _adopt_orphans_now(self, t_s: float) -> None:
        """Orphans re-parented to us (a subreaper on Linux; elsewhere none come)."""
        if not self._all:
            return
        try:
            mine = psutil.Process(self._my_pid).children()
        except _RACES:
            return
        for child in mine:
            if child.pid in self._procs or child.pid in self.ignore_pids:
                continue
            try:
                if child.name() == "py-spy" or child.cmdline() == psutil.Process().cmdline():
                    continue
            except _RACES:
                continue
            self._add(child.pid, None, False, t_s)


def _or_none(read):  # type: ignore[no-untyped-def]
    try:
        return read()
    except (psutil.AccessDenied, NotImplementedError):
        return None
