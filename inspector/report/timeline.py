"""The timeline: one lane per thread, grouped under its process, coloured by what the
thread was doing (from the diagnosis's thread states), with the Python stack sampled at
each moment one hover away.

It is a single heatmap (drawn on a 2D canvas, no WebGL context) over a grid of at most
MAX_TIMELINE_COLUMNS time buckets; each cell takes the state the thread spent most of
that bucket in, and the hover panel shows the whole split and the stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from inspector.analyze.eventloop import LoopBlock
from inspector.analyze.vocabulary import STATES, THREAD_STATES
from inspector.report.downsample import bucket_count
from inspector.report.figure import Chart, b64, base_layout
from inspector.report.markup import esc
from inspector.report.model import STATE_COLORS, ReportModel, ThreadView, frame_caption

# Wider than the plot area of most screens (~1,200 px): more columns could not be seen.
MAX_TIMELINE_COLUMNS = 1500
# Beyond this many lanes a timeline is a wall; the quietest threads are left out (and said).
MAX_TIMELINE_LANES = 200
# A lane is tall enough to hover at any count, and no taller than a line of text.
LANE_PX_MIN, LANE_PX_MAX = 9, 22
# Frames of a stack kept for the hover panel, leaf first; deeper ones are counted, not shown.
MAX_HOVER_FRAMES = 30
# Asyncio blocks outlined on the timeline; more would hide the lanes under them.
MAX_MARKED_BLOCKS = 200
_SECONDS_COLUMNS = tuple(f"{s}_s" for s in STATES)


def build_timeline(model: ReportModel, states: pd.DataFrame, stacks: pd.DataFrame,
                   duration_s: float, interval_s: float, rate_hz: float,
                   loop_blocks: Sequence[LoopBlock] = ()) -> tuple[Chart, int]:
    """The chart, and how many quiet threads were left out to stay under the lane cap."""
    threads, dropped = _lane_threads(model, states)
    lanes = _lanes(model, threads)
    n_lanes = len(lanes)
    _, width = bucket_count(duration_s, interval_s, MAX_TIMELINE_COLUMNS)
    origin = _grid_origin(states, width)
    n_cols = max(1, int(np.ceil((max(duration_s, width) - origin) / width - 1e-9)))
    lane_of = {(ln["proc_id"], ln["tid"]): i for i, ln in enumerate(lanes) if ln["tid"] >= 0}

    seconds = _state_seconds(states, lane_of, n_lanes, n_cols, origin, width)  # (l, c, 7)
    total = seconds.sum(axis=2)
    z = np.where(total > 0, seconds.argmax(axis=2), np.nan).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total[:, :, None] > 0, np.rint(seconds * 100.0 / total[:, :, None]),
                         0).astype(np.uint8)
    cell_stack, stack_list, frames = _cell_stacks(stacks, lane_of, n_lanes, n_cols, origin,
                                                  width, tolerance_s=1.0 / max(rate_hz, 1.0))

    n_states = len(STATES)
    colorscale = []
    for k, state in enumerate(STATES):
        colorscale += [[k / n_states, STATE_COLORS[state]], [(k + 1) / n_states,
                                                               STATE_COLORS[state]]]
    heat = dict(type="heatmap", z=z, x0=origin + width / 2, dx=width, y0=0, dy=1,
                zmin=-0.5, zmax=n_states - 0.5, colorscale=colorscale, showscale=False,
                hoverinfo="none", xgap=0, ygap=1, zsmooth=False)

    lane_px = int(np.clip(900 / max(n_lanes, 1), LANE_PX_MIN, LANE_PX_MAX))
    shapes: list[dict[str, Any]] = []
    ticktext = []
    for i, ln in enumerate(lanes):
        if ln["tid"] < 0:
            ticktext.append(f"<b>{esc(ln['label'])}</b>")
            shapes.append(dict(type="rect", xref="paper", x0=0, x1=1, y0=i - 0.5, y1=i + 0.5,
                               yref="y", fillcolor=ln["color"], opacity=0.18, line_width=0,
                               layer="below"))
        else:
            ticktext.append(esc(ln["label"]))
    for block in list(loop_blocks)[:MAX_MARKED_BLOCKS]:
        lane = _block_lane(block, lanes, lane_of)
        if lane is None:
            continue
        shapes.append(dict(type="rect", xref="x", yref="y", x0=block.start_s,
                           x1=block.start_s + block.duration_s,
                           y0=lane - 0.5, y1=lane + 0.5, line=dict(color="#111", width=2),
                           fillcolor="rgba(0,0,0,0)"))
    layout = base_layout(
        height=n_lanes * lane_px + 70, margin=dict(l=10, r=20, t=10, b=45),
        xaxis=dict(title=dict(text="seconds since the start"),
                   range=[0, max(duration_s, width)], showgrid=False),
        yaxis=dict(tickvals=list(range(n_lanes)), ticktext=ticktext, autorange="reversed",
                   showgrid=False, automargin=True, ticks="", fixedrange=True,
                   tickfont=dict(size=11 if lane_px >= 12 else 9)),
        shapes=shapes, dragmode="zoom")

    fig = go.Figure(data=[heat], layout=layout)
    data = {
        "x0": origin, "dx": width, "rows": n_lanes, "cols": n_cols,
        "states": list(STATES),
        "colors": [STATE_COLORS[s] for s in STATES],
        "captions": [THREAD_STATES[s].word for s in STATES],
        "lanes": [{"label": ln["label"], "process": ln["process"], "pid": ln["pid"],
                   "tid": ln["tid"]} for ln in lanes],
        "share": b64(share.reshape(-1)),
        "stack": b64(cell_stack.reshape(-1)),
        "stacks": stack_list,
        "frames": frames,
        "maxFrames": MAX_HOVER_FRAMES,
    }
    return Chart("timeline", fig, data), dropped


def _lane_threads(model: ReportModel, states: pd.DataFrame
                  ) -> tuple[list[ThreadView], int]:
    threads = model.threads
    if len(threads) <= MAX_TIMELINE_LANES:
        return threads, 0
    busy_cols = [c for c in _SECONDS_COLUMNS if c in states.columns and c != "sleep_s"]
    busy = states.groupby(["proc_id", "tid"])[busy_cols].sum().sum(axis=1)
    ranked = sorted(threads, key=lambda t: -float(busy.get((t.proc_id, t.tid), 0.0)))
    keep = {(t.proc_id, t.tid) for t in ranked[:MAX_TIMELINE_LANES]}
    return [t for t in threads if (t.proc_id, t.tid) in keep], len(threads) - len(keep)


def _lanes(model: ReportModel, threads: list[ThreadView]) -> list[dict[str, Any]]:
    """A header lane per process, then its threads' lanes."""
    wanted = {(t.proc_id, t.tid) for t in threads}
    lanes: list[dict[str, Any]] = []
    for p in model.processes:
        mine = [t for t in p.threads if (t.proc_id, t.tid) in wanted]
        if not mine:
            continue
        n = len(p.threads)
        label = f"{p.label} · {n} thread{'s' if n != 1 else ''}"
        lanes.append(dict(proc_id=p.proc_id, pid=p.pid, tid=-1, label=label,
                          process=p.label, color=p.color))
        for t in mine:
            lanes.append(dict(proc_id=p.proc_id, pid=p.pid, tid=t.tid, label=t.label,
                              process=p.label, color=p.color))
    return lanes


def _grid_origin(states: pd.DataFrame, width: float) -> float:
    """Where the columns start, in (-width, 0]: on the phase of the sampling rounds, so
    that an interval between two rounds falls into one column instead of straddling two
    (which would blend neighbouring intervals and blur short states away)."""
    if states.empty:
        return 0.0
    angle = 2 * np.pi * states["t_s"].to_numpy(np.float64) / width
    phase = float(np.angle(np.mean(np.exp(1j * angle)))) / (2 * np.pi) * width % width
    return phase - width if phase > 0 else 0.0


def _state_seconds(states: pd.DataFrame, lane_of: dict[tuple[int, int], int], n_lanes: int,
                   n_cols: int, origin: float, width: float) -> np.ndarray:
    """Seconds per lane, column and state. An interval longer than a column (a late
    sampling round) is shared among the columns it covers, in proportion."""
    out = np.zeros((n_lanes, n_cols, len(STATES)), dtype=np.float64)
    if states.empty:
        return out
    lane = _lane_index(states, lane_of)
    ok = lane >= 0
    every = bool(ok.all())  # no copies then: a long recording's columns are large

    def column(name: str) -> np.ndarray:
        values = states[name].to_numpy(np.float64)
        values = values if every else values[ok]
        return values if np.isfinite(values).all() else np.nan_to_num(values)

    end = states["t_s"].to_numpy(np.float64)
    end = end if every else end[ok]
    dt = column("dt_s")
    lane = lane if every else lane[ok]
    begin = end - dt - origin
    end = end - origin
    first = np.clip(np.floor(begin / width), 0, n_cols - 1).astype(np.int64)
    last = np.clip(np.ceil(end / width - 1e-6) - 1, 0, n_cols - 1).astype(np.int64)
    weights = [column(c) if c in states.columns else np.zeros(len(end))
               for c in _SECONDS_COLUMNS]
    for k in range(int((last - first).max(initial=0)) + 1):
        if k:  # only intervals reaching a k-th column add to it: leave the rest out
            rows = np.flatnonzero(first + k <= last)
            first, last, begin, end, dt, lane = (
                a[rows] for a in (first, last, begin, end, dt, lane))
            weights = [w[rows] for w in weights]
        col = first + k
        reach = col <= last
        lo = np.maximum(begin, col * width)
        hi = np.minimum(end, (col + 1) * width)
        share = np.where(dt > 0, np.clip(hi - lo, 0, None) / np.where(dt > 0, dt, 1), 1.0)
        share = np.where(reach & ((dt > 0) | (k == 0)), share, 0.0)
        cell = lane * n_cols + np.minimum(col, n_cols - 1)
        for s, w in enumerate(weights):
            out[:, :, s] += np.bincount(cell, weights=w * share,
                                        minlength=n_lanes * n_cols).reshape(n_lanes, n_cols)
    return out


def _lane_index(df: pd.DataFrame, lane_of: dict[tuple[int, int], int]) -> np.ndarray:
    """Lane of each row by (proc_id, tid); -1 where the thread has no lane."""
    if df.empty:
        return np.zeros(0, dtype=np.int64)
    keys = pd.MultiIndex.from_arrays([df["proc_id"].astype("int64"), df["tid"].astype("int64")])
    table = pd.Series(list(lane_of.values()),
                      index=pd.MultiIndex.from_tuples(list(lane_of.keys())) if lane_of
                      else pd.MultiIndex.from_arrays([[], []]), dtype="int64")
    pos = table.reindex(keys)
    return pos.fillna(-1).to_numpy(np.int64)


def _cell_stacks(stacks: pd.DataFrame, lane_of: dict[tuple[int, int], int], n_lanes: int,
                 n_cols: int, origin: float, width: float, tolerance_s: float
                 ) -> tuple[np.ndarray, list[list[int]], list[str]]:
    """For each cell, the stack sampled last within it (-1: none), the stacks those ids
    index (frame indices, root first) and the frame texts they index."""
    cell = np.full((n_lanes, n_cols), -1, dtype=np.int32)
    if stacks.empty:
        return cell, [], []
    # Plain arrays, not a sorted copy of the frame: its stack texts are large.
    lane = _lane_index(stacks[["proc_id", "tid"]].fillna(-1), lane_of)
    keep = np.flatnonzero(lane >= 0)
    t_s = stacks["t_s"].to_numpy(np.float64)[keep]
    if len(t_s) > 1 and bool(np.all(t_s[1:] >= t_s[:-1])) and n_lanes < 2**15:
        # in time order already (as load() gives them): a stable sort by lane is enough
        order = np.argsort(lane[keep].astype(np.int16), kind="stable")
    else:
        order = np.lexsort((t_s, lane[keep]))
    lanes = lane[keep][order]
    starts = t_s[order]
    ends = starts + np.maximum(stacks["duration_s"].to_numpy(np.float64)[keep][order],
                               tolerance_s)
    ids = stacks["stack_id"].to_numpy(np.int64)[keep][order]
    col_start = origin + np.arange(n_cols) * width
    col_end = col_start + width
    bounds = np.searchsorted(lanes, np.arange(n_lanes + 1))
    for i in range(n_lanes):
        lo, hi = bounds[i], bounds[i + 1]
        if lo == hi:
            continue
        idx = np.searchsorted(starts[lo:hi], col_end, side="left") - 1
        valid = idx >= 0
        idx_c = np.clip(idx, 0, None) + lo
        valid &= ends[idx_c] >= col_start
        cell[i] = np.where(valid, ids[idx_c], -1)
    used = np.unique(cell[cell >= 0])
    texts = (stacks.drop_duplicates("stack_id").set_index("stack_id")["stack"]
             .reindex(used))
    frame_index: dict[str, int] = {}
    frames: list[str] = []
    stack_list: list[list[int]] = []
    for text in texts:
        parts = str(text).split(";") if isinstance(text, str) and text else []
        if len(parts) > MAX_HOVER_FRAMES:
            # Keep the leaf end; the count of the rest is the first entry's job (-n).
            hidden = len(parts) - MAX_HOVER_FRAMES
            parts = parts[-MAX_HOVER_FRAMES:]
        else:
            hidden = 0
        row = [-hidden - 1] if hidden else []
        for part in parts:
            shown = frame_caption(part)
            j = frame_index.get(shown)
            if j is None:
                j = frame_index[shown] = len(frames)
                frames.append(shown)
            row.append(j)
        stack_list.append(row)
    remap = np.full(int(used.max()) + 1 if len(used) else 1, -1, dtype=np.int32)
    remap[used] = np.arange(len(used), dtype=np.int32)
    cell = np.where(cell >= 0, remap[np.clip(cell, 0, None)], -1).astype(np.int32)
    return cell, stack_list, frames


def _block_lane(block: LoopBlock, lanes: list[dict[str, Any]],
                lane_of: dict[tuple[int, int], int]) -> int | None:
    for (_proc_id, t), i in lane_of.items():
        if t == block.tid and lanes[i]["pid"] == block.pid:
            return i
    return None
