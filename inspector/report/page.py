"""Assembles the report page, answer first: verdict, process/thread tree, timeline, CPU,
memory, hottest functions, blocked event loops, the run. One self-contained HTML file:
plotly.js is embedded and a Content-Security-Policy forbids fetching anything.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

import pandas as pd
from plotly.offline import get_plotlyjs

from inspector.analyze.cluster import ClusterDiagnosis
from inspector.analyze.diagnose import Diagnosis
from inspector.recording import Recording, StacksMeta
from inspector.report import sections
from inspector.report.assets import CSS, SCRIPT
from inspector.report.cluster import cluster_section
from inspector.report.figure import Chart
from inspector.report.flame import (
    FROZEN_COLOR,
    STDLIB_COLOR,
    USER_COLOR,
    hot_functions_table,
    hotspots_chart,
)
from inspector.report.markup import esc, script_json
from inspector.report.model import ReportModel, build_model
from inspector.report.timeline import MAX_TIMELINE_LANES, build_timeline
from inspector.report.usage_charts import cpu_chart, memory_chart

# Nothing may be fetched: scripts and styles are inline (plotly's WebGL code, regl, compiles
# functions at run time: 'unsafe-eval'), images only data:/blob: URIs
# (plotly's own), and no connections at all. Injected markup could not load anything either.
CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
       "img-src data: blob:; font-src data:; connect-src 'none'; base-uri 'none'; "
       "form-action 'none'")

# (anchor, title, short name for the navigation bar)
SECTION_TITLES = (
    ("verdict", "The answer", "Answer"),
    ("tree", "Processes and threads: what htop shows vs what it is", "Processes & threads"),
    ("timeline", "What every thread was doing", "Timeline"),
    ("cpu", "CPU per process", "CPU"),
    ("memory", "Memory per process", "Memory"),
    ("hot", "Hottest functions per thread", "Hot functions"),
    ("loops", "Blocked asyncio event loops", "Event loops"),
    ("run", "The run", "The run"),
)


@dataclass
class ReportInputs:
    """What a report is made from: the recording, and the diagnosis's per-interval thread
    states and its Diagnosis; either may be None (then the page says so)."""

    recording: Recording
    states: Optional[pd.DataFrame] = None
    diagnosis: Optional[Diagnosis] = None
    cluster: Optional[ClusterDiagnosis] = None  # a merged recording's: answers per worker
    # a streamed recording's resolution, said above the answer (inspector/bounded.py)
    note: Optional[str] = None


def render_report(inputs: ReportInputs) -> str:
    rec = inputs.recording
    meta = rec.meta
    diagnosis = inputs.diagnosis
    states = inputs.states if inputs.states is not None else pd.DataFrame()
    interval_s = rec.interval_s
    rate_hz = rec.stack_rate_hz
    duration_s = float(rec.duration_s)

    cpu_s_by_thread = _thread_cpu_s(rec.thread_samples, diagnosis)
    cpu_s_by_proc: dict[int, float] = {}
    for (proc_id, _tid), v in cpu_s_by_thread.items():
        cpu_s_by_proc[proc_id] = cpu_s_by_proc.get(proc_id, 0.0) + v
    model = build_model(rec.processes, rec.threads, cpu_s_by_proc)
    total_cpu = sum(cpu_s_by_thread.values()) if cpu_s_by_thread else None

    charts: list[Chart] = []
    facts = sections.key_facts(meta, diagnosis, model, total_cpu)
    body = {
        "verdict": (cluster_section(inputs.cluster) if inputs.cluster is not None else
                    sections.verdict_section(diagnosis, facts, _empty_reason(rec, interval_s))),
        "tree": (sections.tree_section(model, diagnosis, cpu_s_by_thread) if model.processes
                 else sections.nothing("No process was recorded.")),
        "timeline": _timeline_section(rec, model, states, diagnosis, interval_s, rate_hz,
                                      charts),
        "cpu": _cpu_section(rec, model, interval_s, charts),
        "memory": _memory_section(rec, model, charts),
        "hot": _hot_section(rec, model, diagnosis, cpu_s_by_thread, rate_hz, meta.stacks,
                            charts),
        "loops": sections.loops_section(diagnosis, model),
        "run": sections.run_section(meta, rec.problems, model, interval_s, rate_hz,
                                    str(rec.path)),
    }
    if inputs.note:
        body["verdict"] = f'<p class="note">{esc(inputs.note)}</p>' + body["verdict"]
    return _page(" ".join(meta.command) or "(unknown command)", meta.start_time_unix,
                 meta.cpu_count, body, charts, duration_s)


# A cluster judged on its workers (`report --dask`): only the answer, since no samples came
# back to draw.
CLUSTER_SECTIONS = (("verdict", "The answer", "Answer"),)


def render_cluster_page(cd: ClusterDiagnosis, source: str, cost: str | None = None) -> str:
    """The page of a cluster whose recordings stayed on its workers' hosts."""
    note = ('<p class="note">The recordings stayed on the workers\' hosts and were judged '
            "there: this page has no timeline, CPU or memory charts (a merged recording's "
            "report has them).</p>")
    cores = sum(h.cpu_count for h in cd.hosts)
    command = " ".join(cd.command) if cd.command else source
    return _page(command, None, cores, {"verdict": cluster_section(cd, cost) + note}, [],
                 cd.duration_s, CLUSTER_SECTIONS)


# Each section below returns its HTML and appends the charts it draws to `charts`.

def _timeline_section(rec: Recording, model: ReportModel, states: pd.DataFrame,
                      diagnosis: Optional[Diagnosis], interval_s: float, rate_hz: float,
                      charts: list[Chart]) -> str:
    if states.empty:
        why = ("no thread was sampled" if rec.thread_samples.empty
               else "the thread states were not worked out for this report")
        return sections.nothing(f"No timeline: {why}.")
    blocks = diagnosis.event_loop_blocks if diagnosis else ()
    chart, dropped = build_timeline(model, states, rec.stacks, float(rec.duration_s),
                                    interval_s, rate_hz, blocks)
    charts.append(chart)
    note = (f'<p class="note">{dropped} quiet threads are left out: the timeline shows '
            f"the {MAX_TIMELINE_LANES} busiest.</p>" if dropped else "")
    return ("<p>One lane per thread, under its process. Each cell is coloured by what the "
            "thread did most in that stretch; <b>hover</b> to see the whole split and the "
            "Python stack sampled there. Drag to zoom, double-click to zoom out.</p>"
            + sections.state_legend() + _figure_div(chart) + note)


def _cpu_section(rec: Recording, model: ReportModel, interval_s: float,
                 charts: list[Chart]) -> str:
    any_gil = any(p.is_python and p.python_gil != "disabled" for p in model.processes)
    cpu = cpu_chart(model, rec.process_samples, interval_s, rec.cpu_count, any_gil)
    if cpu is None:
        return sections.nothing("No CPU samples: no process lived for two sampling "
                                "intervals.")
    charts.append(cpu)
    ceiling = (" With a GIL, one process's Python threads together stay under the "
               "red line however many there are; processes add up to the grey one."
               if any_gil else "")
    return (f"<p>CPU used by each process, stacked (100% = one core).{ceiling}</p>"
            + _figure_div(cpu))


def _memory_section(rec: Recording, model: ReportModel, charts: list[Chart]) -> str:
    mem = memory_chart(model, rec.process_samples)
    if mem is None:
        return sections.nothing("No memory samples.")
    charts.append(mem)
    return ("<p>Resident memory (RSS) of each process. Forked processes share "
            "pages, which each one's RSS counts again.</p>" + _figure_div(mem))


def _hot_section(rec: Recording, model: ReportModel, diagnosis: Optional[Diagnosis],
                 cpu_s_by_thread: Mapping[tuple[int, int], float], rate_hz: float,
                 stacks: StacksMeta, charts: list[Chart]) -> str:
    hot = hotspots_chart(model, rec.stacks)
    own_frames = ({(t.proc_id, t.tid): list(t.top_frames) for t in diagnosis.threads}
                  if diagnosis else {})
    hot_table = hot_functions_table(model, rec.stacks, cpu_s_by_thread, own_frames)
    if hot is None or hot_table is None:
        reason = stacks.reason or ("stacks were turned off" if stacks.enabled is False
                                   else "no Python thread was sampled")
        return sections.nothing(f"No Python stacks: {reason}.")
    charts.append(hot)
    return (
        "<p>From the Python stacks sampled at "
        f"{rate_hz:.0f} Hz per thread (waiting counts too: a thread blocked in "
        "<code>Lock.acquire</code> shows it). Busiest threads first.</p>" + hot_table
        + "<h3>All threads, callers above callees</h3>"
        "<p class=\"note\">Click a box to zoom into it, the top bar to zoom out. "
        f'<span class="dot" style="background:{USER_COLOR}"></span>the program\'s code '
        f'<span class="dot" style="background:{STDLIB_COLOR}"></span>standard library '
        f'<span class="dot" style="background:{FROZEN_COLOR}"></span>frozen modules '
        "(runpy, importlib)</p>" + _figure_div(hot))


def _thread_cpu_s(thread_samples: pd.DataFrame, diagnosis: Optional[Diagnosis]
                  ) -> dict[tuple[int, int], float]:
    """CPU seconds per thread: the diagnosis's figure, else the counters' growth."""
    if diagnosis and diagnosis.threads:
        return {(t.proc_id, t.tid): t.cpu_s for t in diagnosis.threads}
    if thread_samples.empty:
        return {}
    cpu = thread_samples["cpu_user_s"].fillna(0) + thread_samples["cpu_system_s"].fillna(0)
    grown = cpu.groupby([thread_samples["proc_id"], thread_samples["tid"]]).agg(
        lambda s: float(s.max() - s.min()))
    return {(int(k[0]), int(k[1])): float(v) for k, v in grown.items()}


def _empty_reason(rec: Recording, interval_s: float) -> Optional[str]:
    if not rec.process_samples.empty or not rec.thread_samples.empty:
        return None
    if rec.processes.empty:
        return ("Nothing was recorded: no process was seen. The command may have failed to "
                "start, or exited before the first sample.")
    return ("The processes were seen but never sampled: the program exited before the first "
            f"sampling round (every {interval_s:g} s here), or the recording was cut short. "
            "Record a longer run, or use a shorter --interval.")


def _figure_div(chart: Chart) -> str:
    return f'<div class="figure" id="{esc(chart.element_id)}"></div>'


def _page(command: str, start: float | None, cpu_count: int | None, body: Mapping[str, str],
          charts: list[Chart], duration_s: float,
          titles: tuple[tuple[str, str, str], ...] = SECTION_TITLES) -> str:
    when = (_dt.datetime.fromtimestamp(float(start)).strftime("%Y-%m-%d %H:%M")
            if start is not None else "")
    nav = "".join(f'<a href="#s-{key}">{esc(short)}</a>' for key, _, short in titles)
    parts = []
    for n, (key, title, _) in enumerate(titles, start=1):
        parts.append(f'<section id="s-{key}"><h2><span class="n">{n}</span>{esc(title)}</h2>'
                     f"{body.get(key, '')}</section>")
    data = []
    for chart in charts:
        fig_id = f"{chart.element_id}-figure"
        data.append(script_json(fig_id, chart.figure_json())
                    .replace(f'id="{fig_id}"', f'id="{fig_id}" data-figure="'
                             f'{esc(chart.element_id)}"', 1))
        if chart.data is not None:
            data.append(script_json(f"{chart.element_id}-data", chart.data))
    cores = cpu_count if cpu_count is not None else "?"
    sub = " · ".join(x for x in (when, f"{duration_s:.1f} s", f"{cores} CPU cores") if x)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>inspector: {esc(command[:120])}</title>"
        f"<style>{CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        "</head><body>"
        f'<header class="top"><h1>What this program really did</h1>'
        f'<div class="cmd">$ {esc(command)}</div><div class="sub">{esc(sub)}</div></header>'
        f"<nav>{nav}</nav><main>{''.join(parts)}</main>"
        '<div id="timeline-tip" hidden></div>'
        + "".join(data)
        + f"<script>{SCRIPT}</script></body></html>\n")

