"""The comparison page: recordings side by side (a table, the speed-ups, the CPU each used and
CPU over time), one self-contained HTML file with plotly.js embedded. `inspector compare` and
`inspector demo` both write it.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from inspector.analyze.comparison import ComparedRun
from inspector.recording import Recording
from inspector.report.assets import CSS, SCRIPT
from inspector.report.downsample import minmax_indices
from inspector.report.figure import Chart, base_layout
from inspector.report.markup import esc, script_json, tag
from inspector.report.model import PROCESS_COLORS
from inspector.report.page import CSP
from inspector.text.comparison import (
    predicted_text,
    runs_text,
    shows_jobs,
    speedup_text,
    verdict_text,
    wall_text,
)
from inspector.text.evidence import basis_text, said

# One colour per concurrency model, the same in every chart; other recordings take the
# report's process palette in turn.
VARIANT_COLORS = {"sequential": "#8C8C8C", "threading": "#3B7DD8",
                  "multiprocessing": "#2E9E4F", "asyncio": "#E68310"}

# What this page adds to the report's style sheet.
_CSS = """
table.runs td.n { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
table.runs td.v { white-space:nowrap; }
details { margin:4px 0; } summary { cursor:pointer; }
table.runs tr.noise td.n { color:#666; }
"""


@dataclass(frozen=True)
class Links:
    """Where a run's own files are, relative to the page (None: not written)."""

    report: str | None = None
    recording: str | None = None


@dataclass
class PageInput:
    title: str
    rows: Sequence[ComparedRun]
    recordings: Sequence[Recording]
    lead: Sequence[str] = ()                 # plain sentences under the title
    links: Sequence[Links] = ()              # one per row, in the same order
    cpu_count: int = 1


def build_page(page: PageInput) -> str:
    """The whole HTML document, in the report's look. Every string from a recording goes
    through `esc`, or into JSON through `script_json`; the report's script draws the figures
    and marks the body `data-rendered` when all are drawn."""
    groups = _groups(page.rows)
    charts = [
        ("speed-up", "Speed-up",
         "Median wall time of the sequential (or first) runs divided by each row's; above 1 "
         "is faster. The bar is the ratio of the medians; the error bar spans the baseline's "
         "fastest run over this row's slowest to its slowest over this row's fastest. A bar "
         "whose range holds 1.0 is no measurable difference. Hover a bar for its runs. A "
         "hollow diamond, where there is one, is the speed-up the baseline's recordings "
         "predicted for that model, with its range; hover it for the basis.",
         _speedup_figure(page.rows, groups)),
        ("cpu", "CPU used",
         "CPU time of all the run's processes over its wall time, in % of one core (the "
         "median of the runs). Dotted: "
         "100%, one core, the most one process's Python threads can use together while the "
         f"GIL is held. Dashed: all {page.cpu_count} cores.",
         _cpu_figure(page.rows, groups, page.cpu_count)),
        ("cpu-time", "CPU over time",
         "All processes of each row's median run together, % of one core, at every sample.",
         _cpu_time_figure(page.rows, page.recordings, groups, page.cpu_count)),
    ]
    sections = [
        ("runs", "Runs", "".join(tag("p", esc(s), class_="lead") for s in page.lead)
         + _runs_table(page.rows, page.links)),
    ]
    data = []
    for key, title, caption, figure in charts:
        element = f"chart-{key}"
        sections.append((key, title, tag("p", esc(caption), class_="muted")
                         + f'<div class="figure" id="{esc(element)}"></div>'))
        data.append(_figure_script(Chart(element, figure)))
    sections.append(("evidence", "Evidence behind each verdict", _evidence(page.rows)))
    nav = "".join(tag("a", esc(title), href=f"#s-{key}") for key, title, _ in sections)
    body = "".join(f'<section id="s-{key}"><h2><span class="n">{n}</span>{esc(title)}</h2>'
                   f"{content}</section>"
                   for n, (key, title, content) in enumerate(sections, start=1))
    runs = sum(len(r.runs) for r in page.rows)
    recorded = len({run.path for r in page.rows for run in r.runs})
    made = (f"{runs} recordings" if recorded == runs
            else f"{runs} timed runs and {recorded} recordings")
    sub = (f"{len(page.rows)} rows from {made} · {page.cpu_count} CPU cores · made "
           f"{datetime.date.today().isoformat()}")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(page.title)}</title><style>{CSS}{_CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
        f'<header class="top"><h1>{esc(page.title)}</h1><div class="sub">{esc(sub)}</div>'
        f"</header><nav>{nav}</nav><main>{body}</main>"
        + "".join(data) + f"<script>{SCRIPT}</script></body></html>\n")


def _figure_script(chart: Chart) -> str:
    """The figure's JSON where the report's script looks for it: a JSON script element
    naming the div it is drawn in."""
    fig_id = f"{chart.element_id}-figure"
    return script_json(fig_id, chart.figure_json()).replace(
        f'id="{fig_id}"', f'id="{fig_id}" data-figure="{esc(chart.element_id)}"', 1)


# -- table ----------------------------------------------------------------------------------

def _runs_table(rows: Sequence[ComparedRun], links: Sequence[Links]) -> str:
    jobs = shows_jobs(rows)
    headers = (["job", "variant"] if jobs else ["recording"]) + [
        "wall (median, min–max)", "speed-up (range)", "predicted (range)",
        "CPU (% of one core)", "processes",
        "peak threads", "peak RSS", "runs", "verdict → advice", "files"]
    head = "".join(tag("th", esc(h)) for h in headers)
    body = []
    for i, r in enumerate(rows):
        f = r.facts
        name = [esc(f.job), esc(f.variant)] if jobs else [
            esc(f.label) + "<br>" + tag("code", esc(" ".join(f.command)))]
        numbers = [wall_text(r, "–"), speedup_text(r, "–"), predicted_text(r, "–"),
                   f"{r.cpu_percent:.0f}%",
                   str(f.processes), str(f.threads), f"{f.rss_peak_bytes / 2**20:.0f} MiB",
                   runs_text(r)]
        link = links[i] if i < len(links) else Links()
        files = " ".join(tag("a", esc(text), href=target) for text, target in
                         (("report", link.report), ("recording", link.recording)) if target)
        cells = ([tag("td", c) for c in name]
                 + [tag("td", esc(n), class_="n") for n in numbers]
                 + [tag("td", esc(_verdict(r)), class_="v"), tag("td", files)])
        body.append(tag("tr", "".join(cells), title=f"speed-up against {r.baseline}",
                        class_="noise" if r.within_noise else None))
    return tag("table", tag("thead", tag("tr", head)) + tag("tbody", "".join(body)),
               class_="runs")


def _verdict(r: ComparedRun) -> str:
    return verdict_text(r.facts.verdict).replace(" -> ", " → ")


def _evidence(rows: Sequence[ComparedRun]) -> str:
    out = []
    for r in rows:
        evidence = said(r.facts.verdict.evidence)
        items = "".join(tag("li", esc(e)) for e in evidence) or tag(
            "li", esc("no diagnosis for this recording"))
        out.append(tag("details", tag("summary", esc(f"{r.facts.label}: {_verdict(r)}"))
                       + tag("ul", items, class_="evidence")))
    return "".join(out)


# -- figures --------------------------------------------------------------------------------

def _groups(rows: Sequence[ComparedRun]) -> list[str]:
    """Subplots: one per job for reference jobs (their speed-ups are not comparable across
    jobs), else one for all."""
    if shows_jobs(rows):
        return list(dict.fromkeys(str(r.facts.job) for r in rows))
    return [""]


def _group_of(r: ComparedRun, groups: list[str]) -> int:
    return groups.index(str(r.facts.job)) if groups != [""] else 0


def _color(r: ComparedRun, index: int) -> str:
    if r.facts.variant in VARIANT_COLORS:
        return VARIANT_COLORS[str(r.facts.variant)]
    return PROCESS_COLORS[index % len(PROCESS_COLORS)]


def _short(r: ComparedRun, groups: list[str]) -> str:
    return str(r.facts.variant) if groups != [""] else r.facts.label


def _titles(groups: list[str]) -> list[str]:
    """Subplot titles, escaped: plotly reads them as its pseudo-HTML (<b>, <a href>)."""
    names = {"cpu": "CPU-bound job", "io": "I/O-bound job"}
    return [esc(names.get(g, g)) for g in groups]


def _template_text(text: str) -> str:
    """Text inside a hovertemplate: escaped, and a `%` as an entity so `%{...}` in a label
    stays text, not a placeholder."""
    return esc(text).replace("%", "&#37;")


def _subplots(groups: list[str], height: int) -> go.Figure:
    fig = make_subplots(rows=1, cols=len(groups), subplot_titles=_titles(groups),
                        horizontal_spacing=0.08)
    fig.update_layout(**base_layout(height, showlegend=False, margin=dict(t=40)))
    fig.update_xaxes(showline=True, linecolor="#999")
    fig.update_yaxes(gridcolor="#ECECEC", showline=True, linecolor="#999", zeroline=False)
    return fig


def _bars(rows: Sequence[ComparedRun], groups: list[str], fig: go.Figure, values: list[float],
          texts: list[str], hover: list[str],
          errors: Sequence[tuple[float, float]] | None = None) -> None:
    """One bar per row, a subplot per group; `errors` (below, above) draws error bars."""
    for g in range(len(groups)):
        picked = [i for i, r in enumerate(rows) if _group_of(r, groups) == g]
        error_y = None if errors is None else dict(
            type="data", symmetric=False, color="#222", thickness=1.5, width=6,
            array=[errors[i][1] for i in picked], arrayminus=[errors[i][0] for i in picked])
        fig.add_trace(go.Bar(error_y=error_y,
            x=[esc(_short(rows[i], groups)) for i in picked], y=[values[i] for i in picked],
            text=[texts[i] for i in picked], textposition="outside", cliponaxis=False,
            marker_color=[_color(rows[i], i) for i in picked],
            hovertext=[esc(hover[i]) for i in picked], hoverinfo="text", name=""),
            row=1, col=g + 1)


def _speedup_figure(rows: Sequence[ComparedRun], groups: list[str]) -> go.Figure:
    fig = _subplots(groups, 360)
    _bars(rows, groups, fig, [r.speedup for r in rows],
          ["~1x" if r.within_noise else f"{r.speedup:.1f}x" for r in rows],
          [f"{r.facts.label}: {wall_text(r, '–')} over {len(r.runs)} runs "
           f"({', '.join(f'{x.wall_s:.2f}' for x in r.runs)} s); {speedup_text(r, '–')} "
           f"against {r.baseline}" for r in rows],
          errors=[(r.speedup - r.speedup_low, r.speedup_high - r.speedup) for r in rows])
    _predicted_marks(rows, groups, fig)
    for g in range(len(groups)):
        fig.add_hline(y=1.0, line=dict(color="#444", width=1, dash="dot"), row=1, col=g + 1)
    fig.update_yaxes(title_text="speed-up (x)", row=1, col=1)
    return fig


def _predicted_marks(rows: Sequence[ComparedRun], groups: list[str], fig: go.Figure) -> None:
    """A hollow diamond with its range beside each bar that has a predicted speed-up: what
    the sequential run's recording foretold, next to what was measured."""
    for g in range(len(groups)):
        picked = [r for r in rows if _group_of(r, groups) == g and r.predicted_speedup is not None]
        if not picked:
            continue
        mid = [float(r.predicted_speedup or 0.0) for r in picked]
        fig.add_trace(go.Scatter(
            x=[esc(_short(r, groups)) for r in picked], y=mid, mode="markers",
            marker=dict(symbol="diamond-open", size=12, color="#222", line=dict(width=2)),
            error_y=dict(type="data", symmetric=False, color="#777", thickness=1, width=4,
                         array=[(r.predicted_high or m) - m for r, m in zip(picked, mid)],
                         arrayminus=[m - (r.predicted_low or m) for r, m in zip(picked, mid)]),
            hovertext=[esc(f"predicted from {r.baseline}'s recording: "
                           f"{predicted_text(r, '–')}; "
                           f"{basis_text(r.predicted_basis) if r.predicted_basis else ''}")
                       for r in picked],
            hoverinfo="text", name="predicted"), row=1, col=g + 1)


def _cpu_figure(rows: Sequence[ComparedRun], groups: list[str], cpu_count: int) -> go.Figure:
    fig = _subplots(groups, 360)
    _bars(rows, groups, fig, [r.cpu_percent for r in rows],
          [f"{r.cpu_percent:.0f}%" for r in rows],
          [f"{r.facts.label} (its median run): {r.facts.cpu_s:.2f} s CPU in "
           f"{r.facts.wall_s:.2f} s, "
           f"{r.facts.processes} processes, {r.facts.threads} threads at most" for r in rows])
    for g in range(len(groups)):
        fig.add_hline(y=100.0, line=dict(color="#D62728", width=1, dash="dot"), row=1, col=g + 1)
        fig.add_hline(y=100.0 * cpu_count, line=dict(color="#444", width=1, dash="dash"),
                      row=1, col=g + 1)
    fig.update_yaxes(title_text="% of one core", rangemode="tozero", row=1, col=1)
    return fig


def _cpu_time_figure(rows: Sequence[ComparedRun], recordings: Sequence[Recording],
                     groups: list[str], cpu_count: int) -> go.Figure:
    fig = _subplots(groups, 420)
    # The legend under the axes: above them it would cover the subplot titles.
    fig.update_layout(showlegend=True, margin=dict(t=40, b=110),
                      legend=dict(orientation="h", yanchor="top", y=-0.22, x=0))
    for i, (r, rec) in enumerate(zip(rows, recordings)):
        ps = rec.process_samples
        if ps.empty:
            continue
        total = ps.groupby("t_s")["cpu_percent"].sum(min_count=1).dropna()
        t = total.index.to_numpy(dtype="float64")
        y = total.to_numpy(dtype="float64")
        keep = minmax_indices(t, y)
        fig.add_trace(go.Scatter(
            x=t[keep].astype(np.float32), y=y[keep].astype(np.float32), mode="lines",
            name=esc(r.facts.label), line=dict(color=_color(r, i), width=1.5),
            showlegend=True,
            hovertemplate="%{y:.0f}% at %{x:.1f} s<extra>" + _template_text(r.facts.label)
                          + "</extra>"),
            row=1, col=_group_of(r, groups) + 1)
    for g in range(len(groups)):
        fig.add_hline(y=100.0, line=dict(color="#D62728", width=1, dash="dot"), row=1, col=g + 1)
        fig.add_hline(y=100.0 * cpu_count, line=dict(color="#444", width=1, dash="dash"),
                      row=1, col=g + 1)
        fig.update_xaxes(title_text="seconds since start", row=1, col=g + 1)
    fig.update_yaxes(title_text="% of one core", rangemode="tozero", row=1, col=1)
    return fig
