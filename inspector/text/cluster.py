"""`inspector summary` of a cluster (a merged recording, or `--dask`) in the terminal: the
cluster's verdict and how the clocks were joined, then hosts -> workers (each with its verdict)
-> processes -> threads; past DETAIL_WORKERS workers, one line per host and per worker and the
busiest threads of the whole cluster, named, instead of every thread."""

from __future__ import annotations

from collections import Counter

from inspector.analyze.cluster import (
    ClusterDiagnosis,
    HostFacts,
    WorkerSaid,
    busiest_threads,
)
from inspector.analyze.model import ThreadFacts
from inspector.analyze.vocabulary import WORKER_KIND_WORDS
from inspector.text.base import TextRenderer
from inspector.text.evidence import said, say, worker_sentence
from inspector.text.summary import process_lines, split_text, verdict_line
from inspector.text.terminal import clean

# Up to this many workers every worker's processes and threads are listed; a bigger cluster
# is told by host and worker, and its threads by the busiest of all of them.
DETAIL_WORKERS = 8
# The threads of a big cluster that are named: the busiest of all its workers'.
BUSIEST_THREADS = 12


def kinds_text(host: HostFacts) -> str:
    """'3 GIL-limited, 1 idle': its workers counted by kind."""
    counts = Counter(w.kind for w in host.workers)
    return ", ".join(f"{n} {WORKER_KIND_WORDS[k]}" for k, n in counts.most_common())


def big(cd: ClusterDiagnosis) -> bool:
    return len(cd.workers) > DETAIL_WORKERS


class ClusterText(TextRenderer[ClusterDiagnosis]):
    def __init__(self, source: str, cost: str | None = None) -> None:
        self.source = source
        self.cost = cost  # where the analysis ran and what it took (`--dask`)

    def lines(self, cd: ClusterDiagnosis) -> list[str]:
        workers = len(cd.workers)
        lines = [f"inspector summary of {clean(self.source)}",
                 f"cluster: {workers} worker(s) on {len(cd.hosts)} host(s), "
                 f"{cd.duration_s:.1f} s",
                 f"clocks: {say(cd.clocks)}"]
        if self.cost:
            lines.append(clean(self.cost))
        lines += ["", f"VERDICT: {clean(say(cd.said))}"]
        # a big cluster's workers have a line each below: the verdict keeps its own facts
        evidence = [e for e in cd.evidence if not (big(cd) and isinstance(e, WorkerSaid))]
        lines += [f"  - {clean(e)}" for e in said(tuple(evidence))]
        return lines + (self._big(cd) if big(cd) else self._every_thread(cd))

    def _every_thread(self, cd: ClusterDiagnosis) -> list[str]:
        lines: list[str] = []
        for host in cd.hosts:
            lines += ["", f"HOST {clean(host.host)} ({host.cpu_count} cores, "
                          f"{len(host.workers)} worker(s))"]
            for w in host.workers:
                diag = w.diagnosis
                clock = ("" if w.clock_uncertainty_s is None else
                         f"; clock {w.clock_offset_s * 1e3:+.1f} ms +-"
                         f"{w.clock_uncertainty_s * 1e3:.1f}")
                lines += [f"  WORKER {clean(w.label)}: {clean(worker_sentence(w))}",
                          f"    {verdict_line(diag)}; advice {diag.verdict.advice}{clock}"]
                threads: dict[int, list[ThreadFacts]] = {}
                for t in diag.threads:
                    threads.setdefault(t.proc_id, []).append(t)
                for p in diag.processes:
                    lines += ["  " + line
                              for line in process_lines(p, threads.get(p.proc_id, []))]
        return lines

    def _big(self, cd: ClusterDiagnosis) -> list[str]:
        width = max(len(clean(h.host)) for h in cd.hosts)
        lines = ["", f"HOSTS ({len(cd.hosts)}):"]
        for h in cd.hosts:
            cpu = sum(w.cpu_s for w in h.workers)
            lines.append(f"  {clean(h.host):<{width}}  {h.cpu_count:4d} cores  "
                         f"{len(h.workers):3d} worker(s)  CPU {cpu:9.1f} s  {kinds_text(h)}")
        lines += ["", f"WORKERS ({len(cd.workers)}):"]
        for w in cd.workers:
            lines.append(f"  {clean(w.host):<{width}}  {clean(worker_sentence(w))}")
        threads = sum(len(w.diagnosis.threads) for w in cd.workers)
        top = busiest_threads(cd, BUSIEST_THREADS)
        lines += ["", f"BUSIEST THREADS ({len(top)} of {threads}; summary --json has them all):"]
        for w, t in top:
            lines.append(f"  {clean(w.host)} worker {clean(w.label)} pid {t.pid} tid {t.tid} "
                         f"{clean(t.name or '?')[:28]}: CPU {t.cpu_s:.1f} s  {split_text(t)}")
        return lines
