"""CPU over time (stacked per process, against one core and all cores) and memory over
time per process. Both keep each bucket's lowest and highest samples when down-sampled.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from inspector.report.downsample import minmax_indices
from inspector.report.figure import Chart, base_layout
from inspector.report.markup import esc
from inspector.report.model import MAX_PROCESS_SERIES, OTHER_COLOR, ProcessView, ReportModel

MIB = 1024 * 1024
# A series this short (a process sampled once or twice) is drawn with markers, or a single
# sample would be invisible.
FEW_POINTS = 2


def _series_groups(model: ReportModel, cpu_s_by_proc: dict[int, float]
                   ) -> tuple[list[ProcessView], dict[int, str]]:
    """The processes drawn on their own (busiest first, at most MAX_PROCESS_SERIES), and a
    column key for every proc_id ('other' for the rest)."""
    ranked = sorted(model.processes, key=lambda p: -cpu_s_by_proc.get(p.proc_id, 0.0))
    shown = ranked[:MAX_PROCESS_SERIES]
    if len(ranked) == MAX_PROCESS_SERIES + 1:   # one "other" would be silly: show it too
        shown = ranked
    keys = {p.proc_id: str(p.proc_id) for p in shown}
    for p in ranked:
        keys.setdefault(p.proc_id, "other")
    order = {p.proc_id: i for i, p in enumerate(model.processes)}
    return sorted(shown, key=lambda p: order[p.proc_id]), keys


def cpu_chart(model: ReportModel, process_samples: pd.DataFrame, interval_s: float,
              cpu_count: int, any_gil: bool) -> Optional[Chart]:
    df = process_samples.dropna(subset=["cpu_percent"])
    if df.empty:
        return None
    cpu_s = df.groupby("proc_id")["cpu_percent"].sum().to_dict()
    shown, keys = _series_groups(model, cpu_s)
    tick = np.rint(df["t_s"].to_numpy(np.float64) / max(interval_s, 1e-6)).astype(np.int64)
    frame = pd.DataFrame({"tick": tick, "t_s": df["t_s"].to_numpy(np.float64),
                          "key": df["proc_id"].map(keys).fillna("other"),
                          "cpu": df["cpu_percent"].to_numpy(np.float64)})
    # Two samples of one process in a tick (a late round) average; processes add up.
    per = frame.groupby(["tick", "key"])["cpu"].mean().unstack("key", fill_value=0.0)
    t = frame.groupby("tick")["t_s"].mean().reindex(per.index).to_numpy(np.float64)
    keep = minmax_indices(t, per.sum(axis=1).to_numpy(np.float64))
    per, t = per.iloc[keep], t[keep]
    x = t.astype(np.float32)

    traces: list[go.Scatter] = []
    series: list[tuple[str, str, str]] = [(str(p.proc_id), p.label, p.color) for p in shown]
    if "other" in per.columns:
        n_other = sum(1 for k in keys.values() if k == "other")
        series.append(("other", f"{n_other} other processes", OTHER_COLOR))
    for key, label, color in series:
        if key not in per.columns:
            continue
        traces.append(go.Scatter(
            x=x, y=per[key].to_numpy(np.float32), name=esc(label), mode="lines",
            stackgroup="cpu", line=dict(width=0.6, color=color), fillcolor=color,
            hovertemplate=f"%{{y:.0f}}%<extra>{esc(label)}</extra>"))
    peak = float(per.sum(axis=1).max()) if len(per) else 0.0
    all_cores = cpu_count * 100.0
    one_core = "100% = one core" + (" (the GIL: one process's Python threads share it)"
                                    if any_gil else "")
    lines = [(100.0, one_core, "#D62728"),
             (all_cores, f"{all_cores:.0f}% = all {cpu_count} cores", "#555")]
    shapes, notes = [], []
    for y, text, color in lines:
        shapes.append(dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=y, y1=y,
                           line=dict(color=color, width=1.5, dash="dash")))
        notes.append(dict(xref="paper", x=0.005, xanchor="left", yref="y", y=y,
                          yanchor="bottom", text=esc(text), showarrow=False,
                          bgcolor="rgba(255,255,255,0.85)", font=dict(color=color, size=11)))
    layout = base_layout(
        height=340, shapes=shapes, annotations=notes, hovermode="x unified",
        yaxis=dict(title=dict(text="CPU % (100 = one core)"),
                   range=[0, max(peak, all_cores) * 1.1]),
        xaxis=dict(title=dict(text="seconds since the start")),
        margin=dict(l=60, r=20, t=30, b=45))
    return Chart("cpu", go.Figure(data=traces, layout=layout))


def memory_chart(model: ReportModel, process_samples: pd.DataFrame) -> Optional[Chart]:
    df = process_samples.dropna(subset=["rss_bytes"])
    if df.empty:
        return None
    rss_peak = df.groupby("proc_id")["rss_bytes"].max().to_dict()
    shown, keys = _series_groups(model, {k: float(v) for k, v in rss_peak.items()})
    traces: list[Any] = []
    for p in shown:
        one = df[df["proc_id"] == p.proc_id].sort_values("t_s")
        if one.empty:
            continue
        t = one["t_s"].to_numpy(np.float64)
        y = one["rss_bytes"].to_numpy(np.float64) / MIB
        keep = minmax_indices(t, y)
        traces.append(go.Scattergl(
            x=t[keep].astype(np.float32), y=y[keep].astype(np.float32), name=esc(p.label),
            mode="lines" if len(keep) > FEW_POINTS else "lines+markers",
            line=dict(width=1.6, color=p.color),
            hovertemplate=f"%{{y:.1f}} MiB<extra>{esc(p.label)}</extra>"))
    others = [pid for pid, k in keys.items() if k == "other"]
    if others:
        # Too many to draw one by one: their sum, which is what they cost together.
        sub = df[df["proc_id"].isin(others)]
        tick = sub.groupby("t_s")["rss_bytes"].sum().sort_index()
        t = tick.index.to_numpy(np.float64)
        y = tick.to_numpy(np.float64) / MIB
        keep = minmax_indices(t, y)
        label = f"{len(others)} other processes (sum)"
        traces.append(go.Scattergl(
            x=t[keep].astype(np.float32), y=y[keep].astype(np.float32), name=esc(label),
            mode="lines", line=dict(width=1.6, color=OTHER_COLOR),
            hovertemplate=f"%{{y:.1f}} MiB<extra>{esc(label)}</extra>"))
    layout = base_layout(
        height=300, hovermode="x unified",
        yaxis=dict(title=dict(text="resident memory (MiB)"), rangemode="tozero"),
        xaxis=dict(title=dict(text="seconds since the start")),
        margin=dict(l=60, r=20, t=30, b=45))
    return Chart("memory", go.Figure(data=traces, layout=layout))
