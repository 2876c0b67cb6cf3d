"""What finished py-spy runs sampled, as the recording's rows: stack spans trimmed of what an
earlier, overlapping run already gave, clipped to each thread's life as /proc saw it and
named where py-spy's name can be trusted; GIL holder counts with the samples nobody held it.
"""

from __future__ import annotations

from inspector.record.pyspy_output import GilCount, StackSpan
from inspector.record.runs import CHUNK_S
from inspector.record.sampler import Sampler
from inspector.recording import RecordingWriter

NOBODY_TID = 0  # gil_samples row of "no thread held the GIL" (no OS thread has id 0)


class StackRows:
    """Writes the spans and GIL counts of one recording's py-spy runs (on the sampler's
    thread, which owns the writer), remembering across runs what each thread was given."""

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler
        self._covered_until: dict[tuple[int, int], float] = {}  # (pid, tid) -> t_s
        self._names: dict[tuple[int, int], str] = {}

    def trim(self, spans: list[StackSpan]) -> list[StackSpan]:
        """Drops what an earlier, overlapping run already recorded for the same thread."""
        kept = []
        covered = self._covered_until
        for s in spans:
            key = (s.pid, s.tid)
            end = s.t_s + s.duration_s
            until = covered.get(key)
            if until is not None and s.t_s < until:
                if end <= until:
                    continue
                s = StackSpan(until, end - until, s.pid, s.tid, s.thread_name, s.stack)
            kept.append(s)
        for s in kept:
            key = (s.pid, s.tid)
            covered[key] = max(covered.get(key, 0.0), s.t_s + s.duration_s)
        return kept

    def write(self, w: RecordingWriter, spans: list[StackSpan], rate: int,
              t_launch_s: float = 0.0) -> None:
        stale: dict[tuple[int, int, str], bool] = {}
        procs = {}
        for p in self.sampler.snapshot:
            procs[p.pid] = p.proc_id  # the latest process with that pid wins
        rows = []
        slack = self.sampler.interval_s
        for s in spans:
            proc_id = procs.get(s.pid)
            duration = s.duration_s
            if proc_id is not None:
                # py-spy closes a vanished thread's span only when its run ends: clip it to
                # the thread's life as /proc saw it.
                end = w.thread_end_s(proc_id, s.tid)
                if end is not None and s.t_s + duration > end + slack:
                    duration = end + slack - s.t_s
                    if duration <= 0:
                        continue
            if s.thread_name and proc_id is not None:
                skey = (proc_id, s.tid, s.thread_name)
                if skey not in stale:
                    stale[skey] = self._stale_name(w, proc_id, s.tid, s.thread_name,
                                                   t_launch_s)
                if stale[skey]:
                    s = StackSpan(s.t_s, s.duration_s, s.pid, s.tid, None, s.stack)
            samples = max(1, round(duration * rate))
            rows.append((s.t_s, duration, proc_id, s.pid, s.tid, s.thread_name, s.stack,
                         samples, None))
            if s.thread_name and proc_id is not None:
                key = (proc_id, s.tid)
                # remembered once it took: a thread py-spy met before the sampler did has
                # no row to name yet (seen: 5 of 50 threads left unnamed), so a later span
                # or run names it
                if self._names.get(key) != s.thread_name and w.name_thread(
                        proc_id, s.tid, s.thread_name):
                    self._names[key] = s.thread_name
        w.add_stacks(rows)

    def write_gil(self, w: RecordingWriter, t_s: float, duration_s: float,
                  counts: list[GilCount], rate: int, pids: set[int]) -> None:
        procs = {p.pid: p.proc_id for p in self.sampler.snapshot}
        # py-spy takes rate * duration samples per process, catching up after a slow start,
        # and a run cut short takes fewer; never let the holders of one process exceed 100%.
        expected = max(1, round(rate * min(float(CHUNK_S), duration_s)))
        per_pid: dict[int, int] = dict.fromkeys(pids, 0)
        for c in counts:
            per_pid[c.pid] = per_pid.get(c.pid, 0) + c.samples
        rows = [(t_s, duration_s, procs.get(c.pid), c.pid, c.tid, c.thread_name, c.samples,
                 max(expected, per_pid[c.pid])) for c in counts]
        # tid 0: the samples in which no thread of the process held its GIL
        rows += [(t_s, duration_s, procs.get(pid), pid, NOBODY_TID, None,
                  max(expected, held) - held, max(expected, held))
                 for pid, held in per_pid.items()]
        w.add_gil_samples(rows)

    def _stale_name(self, w: RecordingWriter, proc_id: int, tid: int, name: str,
                    t_launch_s: float) -> bool:
        """py-spy caches names by pthread id, and a thread started during a run may have
        reused the pthread id of an ended one: if an ended thread of the process bore the
        same name, the name is not trusted for this run (the next run names it afresh)."""
        start = w.thread_start_s(proc_id, tid)
        if start is None or start < t_launch_s:
            return False
        return w.ended_thread_named(proc_id, tid, name)
