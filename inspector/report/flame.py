"""Where each thread's time went, from the sampled Python stacks: an icicle (all threads,
process > thread > frames, root at the top) and a table of each thread's top functions.

Frames are merged by function and file (not line) so a loop over many lines is one box.
Samples are wall-clock: a thread waiting in `sleep` or `Lock.acquire` shows that frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from inspector.analyze.frames import parse_frame
from inspector.report.figure import Chart, base_layout
from inspector.report.markup import esc, table
from inspector.report.model import ReportModel, frame_caption
from inspector.text.terminal import seconds_text

# Nodes smaller than this share of all samples are dropped: they would be thinner than a
# pixel in the icicle yet cost bytes in the page.
MIN_NODE_SHARE = 0.002
# Beyond this many boxes plotly's icicle gets slow to lay out and the page heavy.
MAX_ICICLE_NODES = 3000
# Levels drawn at once (root, process, thread and the first frames; clicking goes deeper),
# each about a line of text tall.
ICICLE_DEPTH = 24
ICICLE_LEVEL_PX = 26
ICICLE_MIN_PX, ICICLE_MAX_PX = 320, 900
# The table lists the busiest threads and, for each, the functions most often on top.
MAX_HOT_THREADS = 24
TOP_FUNCTIONS = 3

USER_COLOR = "#F0A35E"     # the program's own code (and its libraries)
STDLIB_COLOR = "#A9C1DE"   # the standard library
FROZEN_COLOR = "#D0D0D0"   # <frozen ...> modules: runpy, importlib


@dataclass(frozen=True)
class _FrameKey:
    func: str
    file: str
    stdlib: bool

    @property
    def caption(self) -> str:
        return f"{self.func} · {self.file.rsplit('/', 1)[-1]}" if self.file else self.func


@lru_cache(maxsize=65536)
def _frame_key(text: str) -> _FrameKey:
    frame = parse_frame(text)
    return _FrameKey(frame.func, frame.file, frame.is_stdlib)


def _per_thread_stacks(stacks: pd.DataFrame) -> pd.DataFrame:
    """Samples per (process, thread, stack), with the stack text."""
    df = stacks[stacks["proc_id"].notna()]
    if df.empty:
        return pd.DataFrame(columns=["proc_id", "tid", "stack_id", "samples", "stack"])
    agg = (df.groupby(["proc_id", "tid", "stack_id"], sort=False)["samples"].sum()
           .reset_index())
    texts = df.drop_duplicates("stack_id").set_index("stack_id")["stack"]
    agg["stack"] = texts.reindex(agg["stack_id"].to_numpy()).to_numpy()
    agg["proc_id"] = agg["proc_id"].astype("int64")
    return agg


def hotspots_chart(model: ReportModel, stacks: pd.DataFrame) -> Optional[Chart]:
    """The icicle of every thread's sampled stacks: root > process > thread > frames."""
    agg = _per_thread_stacks(stacks)
    if agg.empty:
        return None
    thread_total = agg.groupby(["proc_id", "tid"])["samples"].sum()
    trie = _frame_trie(agg, thread_total.index)
    total = float(agg["samples"].sum())
    icicle = _Icicle(ids=["root"], labels=["all threads"], parents=[""], values=[total],
                     colors=["#E4E7EC"], hover=["every sampled thread"])
    shown = _add_threads(icicle, model, trie, thread_total)
    _add_frames(icicle, trie, _kept_frames(trie, total), shown)
    return _icicle_chart(icicle)


@dataclass
class _FrameTrie:
    """One trie of frames under every thread: node -> (parent, frame key), value = samples.
    Thread nodes are roots (parent -1, no key); node ids grow from root to leaf."""

    parent_of: list[int] = field(default_factory=list)
    key_of: list[Optional[_FrameKey]] = field(default_factory=list)
    value_of: list[float] = field(default_factory=list)
    thread_node: dict[tuple[int, int], int] = field(default_factory=dict)

    def add(self, parent: int, key: Optional[_FrameKey]) -> int:
        self.parent_of.append(parent)
        self.key_of.append(key)
        self.value_of.append(0.0)
        return len(self.parent_of) - 1


def _frame_trie(agg: pd.DataFrame, threads: pd.Index) -> _FrameTrie:
    trie = _FrameTrie()
    for (proc_id, tid) in threads:
        trie.thread_node[(int(proc_id), int(tid))] = trie.add(-1, None)
    child: dict[tuple[int, _FrameKey], int] = {}
    for proc_id, tid, samples, text in zip(agg["proc_id"], agg["tid"], agg["samples"],
                                           agg["stack"]):
        node = trie.thread_node[(int(proc_id), int(tid))]
        for part in (text.split(";") if isinstance(text, str) and text else []):
            key = _frame_key(part)
            nxt = child.get((node, key))
            if nxt is None:
                nxt = child[(node, key)] = trie.add(node, key)
            trie.value_of[nxt] += float(samples)
            node = nxt
    return trie


def _kept_frames(trie: _FrameTrie, total: float) -> list[int]:
    """The frame nodes big enough to draw, at most MAX_ICICLE_NODES of the biggest, in id
    order (parents before children)."""
    values = np.asarray(trie.value_of)
    frame_ids = np.flatnonzero((values >= total * MIN_NODE_SHARE)
                               & (np.asarray(trie.parent_of) >= 0))
    if len(frame_ids) > MAX_ICICLE_NODES:
        frame_ids = frame_ids[np.argsort(-values[frame_ids], kind="stable")]
        frame_ids = np.sort(frame_ids[:MAX_ICICLE_NODES])
    return frame_ids.tolist()


@dataclass
class _Icicle:
    """plotly's Icicle columns, a box per row, and each shown trie node's depth."""

    ids: list[str]
    labels: list[str]
    parents: list[str]
    values: list[float]
    colors: list[str]
    hover: list[str]
    depth_of: dict[int, int] = field(default_factory=dict)

    def add(self, id_: str, label: str, parent: str, value: float, color: str,
            hover: str) -> None:
        self.ids.append(id_)
        self.labels.append(label)
        self.parents.append(parent)
        self.values.append(value)
        self.colors.append(color)
        self.hover.append(hover)


def _add_threads(icicle: _Icicle, model: ReportModel, trie: _FrameTrie,
                 thread_total: pd.Series) -> set[int]:
    """A box per process and per sampled thread under it, in the model's order; returns
    the thread nodes drawn."""
    shown: set[int] = set()
    for p in model.processes:
        p_total = sum(float(thread_total.get((p.proc_id, t.tid), 0.0)) for t in p.threads)
        if p_total <= 0:
            continue
        icicle.add(f"p{p.proc_id}", esc(p.label), "root", p_total, p.color,
                   esc(" ".join(p.cmdline) or p.name))
        for t in p.threads:
            tnode = trie.thread_node.get((p.proc_id, t.tid))
            if tnode is None:
                continue
            shown.add(tnode)
            icicle.depth_of[tnode] = 3
            icicle.add(f"n{tnode}", esc(t.label), f"p{p.proc_id}",
                       float(thread_total[(p.proc_id, t.tid)]), p.color,
                       esc(f"thread {t.label} of process {p.pid}"))
    return shown


def _add_frames(icicle: _Icicle, trie: _FrameTrie, frame_ids: list[int],
                shown: set[int]) -> None:
    """A box per kept frame whose parent is drawn (ids grow from root to leaf, so a parent
    is always listed before its children)."""
    for node in frame_ids:
        parent = trie.parent_of[node]
        if parent not in shown:
            continue
        shown.add(node)
        icicle.depth_of[node] = icicle.depth_of[parent] + 1
        key = trie.key_of[node]
        assert key is not None
        color = (FROZEN_COLOR if key.file.startswith("<frozen")
                 else STDLIB_COLOR if key.stdlib else USER_COLOR)
        icicle.add(f"n{node}", esc(key.func), f"n{parent}", trie.value_of[node], color,
                   esc(key.file or "(no file)"))


def _icicle_chart(icicle: _Icicle) -> Chart:
    levels = max(icicle.depth_of.values(), default=3)
    fig = go.Figure(go.Icicle(
        ids=icicle.ids, labels=icicle.labels, parents=icicle.parents, values=icicle.values,
        branchvalues="total", maxdepth=min(levels, ICICLE_DEPTH), tiling=dict(orientation="v"),
        marker=dict(colors=icicle.colors, line=dict(color="white", width=0.5)),
        leaf=dict(opacity=1), customdata=icicle.hover, sort=False,
        hovertemplate=("<b>%{label}</b><br>%{customdata}<br>%{value:.0f} samples · "
                       "%{percentParent:.0%} of its caller · %{percentRoot:.1%} of all"
                       "<extra></extra>"),
        textfont=dict(size=11), insidetextfont=dict(color="#222")))
    height = int(np.clip(min(levels, ICICLE_DEPTH) * ICICLE_LEVEL_PX, ICICLE_MIN_PX,
                         ICICLE_MAX_PX))
    fig.update_layout(**base_layout(height=height, margin=dict(l=5, r=5, t=5, b=5)))
    return Chart("hotspots", fig)


def hot_functions_table(model: ReportModel, stacks: pd.DataFrame,
                        cpu_s_by_thread: Mapping[tuple[int, int], float],
                        own_frames: Mapping[tuple[int, int], Sequence[tuple[str, float]]]
                        ) -> Optional[str]:
    """HTML: for the busiest threads, the functions most often on top of the stack, and
    (from the diagnosis) the program's own frames it was seen in longest."""
    agg = _per_thread_stacks(stacks)
    if agg.empty:
        return None
    agg["leaf"] = [_frame_key(s.rsplit(";", 1)[-1]).caption if isinstance(s, str) and s
                   else "(no Python frame)" for s in agg["stack"]]
    per_leaf = agg.groupby(["proc_id", "tid", "leaf"])["samples"].sum()
    totals = agg.groupby(["proc_id", "tid"])["samples"].sum()
    threads = [(p, t) for p in model.processes for t in p.threads
               if (p.proc_id, t.tid) in totals.index]
    threads.sort(key=lambda pt: -cpu_s_by_thread.get((pt[0].proc_id, pt[1].tid), 0.0))
    rows = []
    for p, t in threads[:MAX_HOT_THREADS]:
        total = float(totals[(p.proc_id, t.tid)])
        top = per_leaf.loc[(p.proc_id, t.tid)].sort_values(ascending=False).head(TOP_FUNCTIONS)
        funcs = "".join(
            f'<div class="fn"><span class="pct">{100 * v / total:.0f}%</span> '
            f"<code>{esc(name)}</code></div>" for name, v in top.items())
        own = "".join(
            f'<div class="fn"><span class="pct">{seconds_text(s)}</span> '
            f"<code>{esc(frame_caption(f))}</code></div>"
            for f, s in list(own_frames.get((p.proc_id, t.tid), ()))[:TOP_FUNCTIONS])
        cpu = cpu_s_by_thread.get((p.proc_id, t.tid))
        rows.append([
            f'<span class="dot" style="background:{esc(p.color)}"></span>{esc(t.label)}',
            esc(p.pid), f"{cpu:.1f} s" if cpu is not None else "–", f"{total:.0f}", funcs,
            own or '<span class="muted">–</span>'])
    note = ""
    if len(threads) > MAX_HOT_THREADS:
        note = (f'<p class="note">The {MAX_HOT_THREADS} busiest of {len(threads)} sampled '
                "threads; every thread is in the icicle below.</p>")
    return table(["thread", "pid", "CPU", "samples", "most often on top of its stack",
                  "longest in the program's own code"], rows, cls="hot") + note
