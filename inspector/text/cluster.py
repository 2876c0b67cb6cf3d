"""`inspector summary` of a merged recording in the terminal: hosts -> workers (each with its
verdict) -> processes -> threads, after the cluster's verdict and how the clocks were joined."""

from __future__ import annotations

from inspector.analyze.cluster import ClusterDiagnosis
from inspector.analyze.model import ThreadFacts
from inspector.text.base import TextRenderer
from inspector.text.evidence import said, say, worker_sentence
from inspector.text.summary import process_lines, verdict_line
from inspector.text.terminal import clean


class ClusterText(TextRenderer[ClusterDiagnosis]):
    def __init__(self, source: str) -> None:
        self.source = source

    def lines(self, cd: ClusterDiagnosis) -> list[str]:
        workers = len(cd.workers)
        lines = [f"inspector summary of {clean(self.source)}",
                 f"cluster: {workers} worker(s) on {len(cd.hosts)} host(s), "
                 f"{cd.duration_s:.1f} s",
                 f"clocks: {say(cd.clocks)}", "",
                 f"VERDICT: {clean(say(cd.said))}"]
        lines += [f"  - {clean(e)}" for e in said(cd.evidence)]
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
