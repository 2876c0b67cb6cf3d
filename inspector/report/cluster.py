"""The report's answer for a cluster (a merged recording, or `report --dask`): the cluster's
verdict and how the clocks were put on one, then hosts -> workers (each with its verdict) ->
processes -> threads; past DETAIL_WORKERS workers, a table of hosts, one of workers and the
busiest threads of the whole cluster, named, instead of every thread. Every value from the
recordings passes through `esc`.
"""

from __future__ import annotations

from inspector.analyze.cluster import ClusterDiagnosis, WorkerSaid, WorkerVerdict, busiest_threads
from inspector.report.markup import esc, tag
from inspector.report.sections import state_bar, state_legend
from inspector.text.cluster import BUSIEST_THREADS, big, kinds_text
from inspector.text.evidence import said, say, worker_sentence

# Threads listed per worker process; the quieter rest are counted in one line.
MAX_WORKER_THREADS = 8


def cluster_section(cd: ClusterDiagnosis, cost: str | None = None) -> str:
    """The answer: the cluster's verdict, then its hosts, workers and threads. `cost`: where
    the analysis ran and what it took (`--dask`)."""
    facts = tuple(e for e in cd.evidence if not (big(cd) and isinstance(e, WorkerSaid)))
    evidence = "".join(tag("li", esc(e)) for e in said(facts))
    lead = (f'<div class="verdict"><h2>{esc(say(cd.said))}</h2><ul>{evidence}</ul>'
            f'<p class="note">Clocks: {esc(say(cd.clocks))}.</p>'
            + (f'<p class="note">{esc(cost)}.</p>' if cost else "") + "</div>")
    if big(cd):
        return lead + _big_cluster(cd)
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
    return (lead + state_legend()
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


def _table(head: tuple[str, ...], rows: list[str]) -> str:
    cells = "".join(tag("th", esc(h)) for h in head)
    return (f'<table class="tree"><thead><tr>{cells}</tr></thead><tbody>{"".join(rows)}'
            "</tbody></table>")


def _big_cluster(cd: ClusterDiagnosis) -> str:
    """Hosts, then workers, one row each, then the busiest threads of them all: what a page
    of thousands of threads would bury."""
    hosts = [f"<tr><td><b>{esc(h.host)}</b></td><td>{h.cpu_count}</td><td>{len(h.workers)}</td>"
             f"<td>{sum(w.cpu_s for w in h.workers):.1f} s</td><td>{esc(kinds_text(h))}</td></tr>"
             for h in cd.hosts]
    workers = [f"<tr><td>{esc(w.host)}</td><td><b>{esc(w.label)}</b></td>"
               f"<td>{esc(worker_sentence(w))}</td><td>{w.cpu_s:.1f} s</td>"
               f"<td>{w.busy_cores:.1f}</td></tr>" for w in cd.workers]
    top = busiest_threads(cd, BUSIEST_THREADS)
    threads = [f"<tr><td>{esc(w.host)} / {esc(w.label)}</td><td>{t.pid} / {t.tid}</td>"
               f"<td>{esc(t.name or '?')}</td><td>{t.cpu_s:.1f} s</td>"
               f"<td>{state_bar(t.state_s)}</td></tr>" for w, t in top]
    every = sum(len(w.diagnosis.threads) for w in cd.workers)
    return (f"<h3>{len(cd.hosts)} hosts</h3>"
            + _table(("host", "cores", "workers", "CPU", "workers by kind"), hosts)
            + f"<h3>{len(cd.workers)} workers</h3>"
            + _table(("host", "worker", "verdict", "CPU", "busy cores"), workers)
            + f"<h3>The {len(top)} busiest of {every} threads</h3>" + state_legend()
            + _table(("host / worker", "pid / tid", "name", "CPU", "where the time went"),
                     threads)
            + '<p class="note">Every thread of every worker is in <code>inspector summary '
              "--json</code> (workers[].diagnosis.threads).</p>")
