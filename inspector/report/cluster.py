"""The report's answer for a merged recording (many hosts or workers): the cluster's verdict,
then hosts -> workers (each with its verdict) -> processes -> threads, and how the clocks were
put on one. Every value from the recording passes through `esc`.
"""

from __future__ import annotations

from inspector.analyze.cluster import ClusterDiagnosis, WorkerVerdict
from inspector.report.markup import esc, tag
from inspector.report.sections import state_bar, state_legend
from inspector.text.evidence import said, say, worker_sentence

# Threads listed per worker process; the quieter rest are counted in one line.
MAX_WORKER_THREADS = 8


def cluster_section(cd: ClusterDiagnosis) -> str:
    evidence = "".join(tag("li", esc(e)) for e in said(cd.evidence))
    head = "".join(tag("th", esc(h)) for h in (
        "host / worker / pid / tid", "what it is", "verdict / name", "CPU",
        "where the time went"))
    rows: list[str] = []
    for host in cd.hosts:
        rows.append(f'<tr class="proc"><td><b>{esc(host.host)}</b></td><td>host, '
                    f"{host.cpu_count} cores</td><td>{len(host.workers)} worker(s)</td>"
                    "<td></td><td></td></tr>")
        for w in host.workers:
            rows += _worker_rows(w)
    return (f'<div class="verdict"><h2>{esc(say(cd.said))}</h2>'
            f"<ul>{evidence}</ul>"
            f'<p class="note">Clocks: {esc(say(cd.clocks))}.</p></div>'
            + state_legend()
            + f'<table class="tree"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}'
            "</tbody></table>")


def _worker_rows(w: WorkerVerdict) -> list[str]:
    rows = [f'<tr class="proc"><td style="padding-left:1.4em"><b>worker {esc(w.label)}</b>'
            f"</td><td>Dask worker</td><td>{esc(worker_sentence(w))}</td>"
            f"<td>{w.cpu_s:.1f} s</td><td></td></tr>"]
    threads_of: dict[int, list] = {}
    for t in w.diagnosis.threads:
        threads_of.setdefault(t.proc_id, []).append(t)
    for p in w.diagnosis.processes:
        command = " ".join(p.cmdline)[:120]
        rows.append(f'<tr class="proc"><td style="padding-left:2.8em">{p.pid}</td>'
                    f"<td>process</td><td><code>{esc(command)}</code></td>"
                    f"<td>{p.cpu_percent_mean:.0f}% mean</td>"
                    f"<td>{state_bar(p.state_s)}</td></tr>")
        threads = sorted(threads_of.get(p.proc_id, []), key=lambda t: -t.cpu_s)
        for t in threads[:MAX_WORKER_THREADS]:
            rows.append(f'<tr class="thread"><td style="padding-left:4.2em">{t.tid}</td>'
                        f"<td>thread</td><td>{esc(t.name or '?')}</td>"
                        f"<td>{t.cpu_s:.1f} s</td><td>{state_bar(t.state_s)}</td></tr>")
        if len(threads) > MAX_WORKER_THREADS:
            rows.append(f'<tr class="more"><td style="padding-left:4.2em" colspan="5">… and '
                        f"{len(threads) - MAX_WORKER_THREADS} quieter threads</td></tr>")
    return rows
