"""Samples a process tree and every thread in it at a fixed interval, from /proc.

Finds descendants by reading /proc/PID/task/TID/children (kept open), keeps every
per-thread file open, and hands rows to the RecordingWriter. Processes and threads that
vanish mid-read are normal life: they are ended, not reported as errors.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Callable

from inspector.record import futex, native, procfs
from inspector.record.machine import MachineMeter
from inspector.record.processes import Proc, ProcessTracker, ProcInfo, is_full_version
from inspector.record.procfs import Gone, ProcFile, ThreadFiles, Unreadable
from inspector.recording import RecordingWriter
from inspector.syscalls import syscall_name

USS_EVERY_S = 1.0  # USS costs 0.3-0.5 ms per process (it walks smaps): once a second is plenty
YOUNG_S = 1.0  # a process this young may still exec: its command line is compared each tick
# A process's affinity is read when it is first seen and at every tick, from the status file
# read anyway: a program that pins itself (os.sched_setaffinity, taskset -p) is seen within
# one interval. Its cgroup quota is read when it is first seen, when it moves to another
# cgroup in its first YOUNG_S (its cgroup file, compared each tick), and again this often,
# for a later move or a quota changed in place (0.2-0.5 ms a read: its cgroup file, our
# mountinfo, a walk up the cgroup tree).
CORES_EVERY_S = 1.0


@dataclass
class LiveStatus:
    elapsed_s: float = 0.0
    processes: int = 0
    threads: int = 0
    cpu_percent: float = 0.0


class Sampler(ProcessTracker):
    """Samples every tracked process and thread once a tick, and owns the writer: every
    write goes through this thread (others `submit()`)."""

    def __init__(self, writer: RecordingWriter, t0_mono: float, interval_s: float,
                 ignore_pids: set[int]) -> None:
        super().__init__(writer, t0_mono, ignore_pids)
        self.interval_s = interval_s
        self.status = LiveStatus()
        self.ticks = 0
        self.lagged_ticks = 0
        self._last_cpu_total: float | None = None
        self._last_cpu_t: float = 0.0
        # Our own threads' children files, kept open: read every tick for orphans, and a
        # cold open+read+close costs ~2-3x a pread.
        self._own_children: dict[int, ProcFile] = {}
        self._machine = self._machine_meter()
        # Held while the recorder starts a helper (py-spy): see StackSampler._spawn.
        self.spawning = threading.Lock()
        self._native = native.NativeNamer(on_skip=self._threads_not_read)
        self._naming: set[int] = set()  # pids whose native threads a helper is naming
        self._naming_due: set[int] = set()  # pids with new threads not yet looked at

    def _threads_not_read(self, pid: int, why: str) -> None:
        self.problem("native-names", "c-library", why, pid=pid)

    def _machine_meter(self) -> MachineMeter:
        return MachineMeter()

    # -- one round ---------------------------------------------------------------------------
    def tick(self) -> None:
        t_s = self.now_s()
        with self._lock:
            self._drain()
            proc_rows: list[tuple] = []
            thread_rows: list[tuple] = []
            n_threads = 0
            cpu_total = 0.0
            done: set[int] = set()
            for adopt in (False, True):
                if adopt:
                    self._adopt_orphans(t_s)
                # Processes found during this round are sampled in it too: a short-lived
                # child gets its first sample as early as possible.
                while True:
                    todo = [p for p in self._procs.values() if p.proc_id not in done]
                    if not todo:
                        break
                    for p in todo:
                        done.add(p.proc_id)
                        self._sample_process(p, t_s, proc_rows, thread_rows)
            for p in self._procs.values():
                n_threads += len(p.threads)
                cpu_total += p.cpu_s
            self.writer.add_process_samples(proc_rows)
            self.writer.add_thread_samples(thread_rows)
            self._sample_machine(t_s)
            self.snapshot = tuple(
                ProcInfo(p.proc_id, p.pid, p.parent_proc_id, p.is_python, p.alive, p.start_s,
                         len(p.threads), p.python_version)
                for p in self._all)
        self.ticks += 1
        alive = [p for p in self._all if p.alive]
        st = self.status
        st.elapsed_s, st.processes, st.threads = t_s, len(alive), n_threads
        if self._last_cpu_total is not None and t_s > self._last_cpu_t:
            st.cpu_percent = max(0.0, (cpu_total - self._last_cpu_total)
                                 / (t_s - self._last_cpu_t) * 100)
        self._last_cpu_total, self._last_cpu_t = cpu_total, t_s

    def _sample_process(self, p: Proc, t_s: float, proc_rows: list, thread_rows: list) -> None:
        try:
            st = procfs.parse_stat(p.stat.read())
        except (Gone, Unreadable):
            self._end(p, None)
            return
        if st.starttime_ticks != p.starttime_ticks:  # the pid was reused by another process
            self._end(p, None)
            return
        if st.state in ("Z", "X"):
            self._end(p, st.exit_code and _decode_wait_status(st.exit_code))
            return
        p.last_seen_s = t_s
        exe = procfs.read_exe(p.pid)
        # A shell or shim became Python, say. An exe that cannot be read means the process
        # is exiting (its memory is gone) or mid-exec: keep what we know until it can be.
        execd = exe is not None and (st.comm != p.comm or exe != p.exe)
        if not execd and t_s - p.start_s < YOUNG_S:
            # Python exec'ing Python keeps its name and executable: a child first seen
            # between fork and exec is told apart by its command line alone.
            try:
                cmdline = procfs.read_cmdline(p.pid)
                execd = bool(cmdline) and cmdline != p.cmdline
            except (Gone, Unreadable):
                pass
        if execd:
            self._reidentify(p, st.comm)  # reads its cores again: taskset pins, then execs
        elif p.is_python and not is_full_version(p.python_version) and t_s - p.start_s < YOUNG_S:
            self._complete_version(p)
        ctx_v = ctx_i = rchar = wchar = None
        if p.status is not None:
            try:
                status = p.status.read()
                ctx_v, ctx_i = procfs.parse_status_ctxt(status)
                self._note_affinity(p, t_s, procfs.parse_status_cpus(status))
            except (Gone, Unreadable, ValueError):
                pass
        if p.io is not None:
            try:
                rchar, wchar = procfs.parse_io(p.io.read())
            except (Gone, Unreadable, ValueError):
                pass
        if t_s - p.cores_read_s >= CORES_EVERY_S or self._moved(p, t_s):
            self._note_cores(p, t_s)
        uss = None
        if t_s - p.last_uss_s >= USS_EVERY_S:
            p.last_uss_s = t_s
            uss = _uss_bytes(p.pid)
        p.cpu_s = st.utime_s + st.stime_s
        proc_rows.append((t_s, p.proc_id, p.pid, st.utime_s, st.stime_s, st.rss_bytes, uss,
                          st.num_threads, ctx_v, ctx_i, rchar, wchar, st.state))
        self._sample_threads(p, t_s, thread_rows)

    def _moved(self, p: Proc, t_s: float) -> bool:
        """Whether a young process moved to another cgroup since the last tick (a pool's
        worker put in a cgroup of its own as it starts, say): its quota is read again at
        once, not a second later. One kept-open read (~5 us) per tick in its first YOUNG_S;
        the quota's walk (0.2-0.5 ms) only on a move. Older, a move is seen within
        CORES_EVERY_S."""
        if p.cgroup is None:
            return False
        if t_s - p.start_s >= YOUNG_S:
            p.cgroup.close()
            p.cgroup = None
            return False
        try:
            text = p.cgroup.read()
        except (Gone, Unreadable):
            return False
        if text == p.cgroup_text:
            return False
        p.cgroup_text = text
        return True

    def _sample_threads(self, p: Proc, t_s: float, thread_rows: list) -> None:
        try:
            tids = procfs.list_tids(p.pid)
        except (Gone, Unreadable):
            return
        live = set(tids)
        # A thread gains children only by running (a fork) or when a sibling thread ends
        # (the kernel re-parents the sibling's children): otherwise its list as last read
        # stands, and its children file is not read again.
        any_ended = False
        for tid in list(p.threads):
            if tid not in live:
                p.threads.pop(tid).close()
                p.last_rows.pop(tid, None)
                self.writer.end_thread(p.proc_id, tid, t_s)
                any_ended = True
        children: list[int] = []
        new_threads = False
        for tid in tids:
            tf = p.threads.get(tid)
            if tf is None:
                try:
                    tf = ThreadFiles(p.pid, tid)
                except (Gone, Unreadable):
                    continue
                except OSError as e:  # EMFILE: out of file descriptors
                    self.problem("proc", "fd-limit", str(e), pid=p.pid, once_key="emfile")
                    continue
                p.threads[tid] = tf
                if tf.syscall_denied:
                    self.problem("proc", "permission", "syscall file", pid=p.pid,
                                 once_key="syscall")
            try:
                r = tf.read()
            except Gone:
                p.threads.pop(tid).close()
                p.last_rows.pop(tid, None)
                self.writer.end_thread(p.proc_id, tid, t_s)
                continue
            if r.comm != tf.comm:  # new thread, or renamed, or its process exec'd
                new_threads = new_threads or tid != p.pid
                tf.comm = r.comm
                self.writer.upsert_thread(p.proc_id, p.pid, tid, r.comm,
                                          self._to_recording_s(r.starttime_ticks))
            if tf.same and tid in p.last_rows:  # the same reading: the same row, at t_s
                thread_rows.append((t_s, *p.last_rows[tid]))
            else:
                name = syscall_name(r.syscall) if r.syscall is not None else None
                fk = (self._futex_kind(p, r.syscall_text)
                      if r.syscall == futex.FUTEX_NR and r.syscall_text else None)
                row = (p.proc_id, p.pid, tid, r.utime_s, r.stime_s, r.state, r.syscall, name,
                       r.on_cpu_s, r.runqueue_s, fk)
                p.last_rows[tid] = row
                thread_rows.append((t_s, *row))
            children.extend(tf.child_pids(refresh=tf.ran or any_ended))
        for child in children:
            if child not in self._procs:
                self._add(child, p, False, t_s)
        if new_threads or p.pid in self._naming_due:
            self._name_native_threads(p, set(tids), t_s)

    def _name_native_threads(self, p: Proc, tids: set[int], t_s: float) -> None:
        """Names threads a native library started (OpenBLAS, OpenMP...), in a helper thread:
        a scan of the process's stacks costs milliseconds, a tick's budget."""
        if p.pid in self._naming or not self._native.due(p.pid, t_s):
            self._naming_due.add(p.pid)  # looked at on a later tick
            return
        self._naming_due.discard(p.pid)
        self._naming.add(p.pid)
        proc_id, pid = p.proc_id, p.pid

        def write(found: dict[int, str]) -> Callable[[RecordingWriter], None]:
            def apply(w: RecordingWriter) -> None:
                for tid, label in found.items():
                    w.name_native_thread(proc_id, tid, label)
            return apply

        def name() -> None:
            try:
                found = self._native.names(pid, tids, t_s)
            finally:
                self._naming.discard(pid)
            if found:
                self.submit(write(found))

        threading.Thread(target=name, name="inspector-native-names", daemon=True).start()

    def _futex_kind(self, p: Proc, syscall_text: str) -> int | None:
        """thread_samples.futex_kind for a thread blocked in futex: 1 when the address lies
        in the interpreter's own data (the GIL), 2 elsewhere (a lock), None when it cannot
        be told. Only Python processes are asked (others have no GIL: their waits are locks
        whatever the address), and each process's maps are read once."""
        if not p.is_python:
            return None
        wait = futex.parse_futex_wait(syscall_text)
        if wait is None or not wait.waiting:
            return None
        if p.waits is None:
            p.waits = futex.AddressClassifier(p.pid)
        try:
            kind = p.waits.kind(wait.uaddr)
        except (Gone, Unreadable):
            return None
        return 1 if kind == futex.GIL else 2 if kind == futex.LOCK else None

    def _sample_machine(self, t_s: float) -> None:
        m = self._machine.read(t_s, self.ignore_pids)
        if m is not None:
            self.writer.add_machine_sample(m.t_s, m.busy_cores, m.recorder_cores)

    def _adopt_orphans(self, t_s: float) -> None:
        """Descendants whose parent died are re-parented to us (we are a subreaper). Not
        while a py-spy run is being started: it is our child too, and not yet known as ours."""
        with self.spawning:
            self._adopt_orphans_now(t_s)

    def _adopt_orphans_now(self, t_s: float) -> None:
        try:
            tids = procfs.list_tids(self._my_pid)
        except (Gone, Unreadable):
            return
        files = self._own_children
        for tid in set(files).difference(tids):
            files.pop(tid).close()
        for tid in tids:
            try:
                f = files.get(tid)
                if f is None:
                    f = files[tid] = ProcFile(f"/proc/{self._my_pid}/task/{tid}/children")
                text = f.read()
            except (Gone, Unreadable):  # Gone: also an empty file, no children
                continue
            for pid in (int(x) for x in text.split()):
                if pid in self._procs or pid in self.ignore_pids or not self._all:
                    continue
                try:  # a py-spy run we are starting this very moment is not an orphan
                    if procfs.read_text(f"/proc/{pid}/comm").strip() == "py-spy":
                        continue
                    # ...nor is it before its exec: until then it is a copy of us (seen in a
                    # demo run: a py-spy recorded as the target's second process)
                    if procfs.read_cmdline(pid) == procfs.read_cmdline(self._my_pid):
                        continue
                except (Gone, Unreadable):
                    continue
                self._add(pid, None, False, t_s)

    def recorder_cpu_so_far(self) -> tuple[float, float, float] | None:
        """(seconds, own CPU s, py-spy runs' CPU s) since the first tick, as of the latest."""
        return self._machine.so_far()

    def recorder_cpu(self) -> dict[str, float] | None:
        """The recorder's own mean CPU and its py-spy runs' (meta recorder_cpu)."""
        return self._machine.mean_cores()

    def finish(self) -> None:
        """Ends whatever is still tracked and writes the remaining rows."""
        with self._lock:
            self._drain()
            for p in list(self._procs.values()):
                self._end(p, None)
            self._drain()
            for f in self._own_children.values():
                f.close()
            self._own_children.clear()
            self._machine.close()


def _decode_wait_status(status: int) -> int:
    """waitpid-style status to exit code; -N for a signal N (as subprocess reports it)."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return status


def _uss_bytes(pid: int) -> int | None:
    """Unique set size from smaps_rollup (what psutil's memory_full_info reads)."""
    try:
        text = procfs.read_text(f"/proc/{pid}/smaps_rollup")
    except (Gone, Unreadable):
        return None
    total = 0
    for line in text.splitlines():
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            total += int(line.split()[1]) * 1024
    return total
