"""A recording too large to hold, folded window by window into a bounded one that the
analysis reads as it reads any: each thread's states (thread_states, computed on each
window at full resolution) summed into bins of `bin_s` seconds, process samples and the
machine's into the same bins (counters at the bin's end, memory at its peak), stack spans
into one span per thread, stack and bin of `stack_bin_s`, and event-loop blocks judged on
each window's own spans. What is kept is O(threads x bins + threads x stacks x stack bins),
whatever the recording's length; docs/scale.md says what resolution it gives up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from inspector.analyze.eventloop import LoopBlock, judge_blocks, loop_blocks, open_runs
from inspector.analyze.states import STATE_COLUMNS, STATES, thread_states
from inspector.recording import Recording

_THREAD = ["proc_id", "pid", "tid"]
_DOMINANT = ("syscall_name", "leaf", "futex_basis")  # the value of most time in a bin
_SUMMED = ("dt_s", *STATE_COLUMNS, "startup_s")
# Process sample columns that are a level, not a counter: their peak in a bin is kept.
_PEAKS = ("rss_bytes", "uss_bytes", "num_threads")
_JOIN_EVERY = 16
# Samples of each thread carried into the next window: an interval's wait kind may be read
# from the sample after its end or the one before its start (states._split_waits), so the
# interval ending at a window's last sample is judged in the next window, from these three
# and the next window's first.
_CARRIED_SAMPLES = 3


@dataclass(frozen=True)
class Folded:
    """The folded recording, its folded states and the event-loop blocks judged on the
    windows' own spans (blocks, starved), as diagnose() takes them."""

    recording: Recording
    states: pd.DataFrame
    loops: tuple[list[LoopBlock], list[LoopBlock]]
    bin_s: float
    stack_bin_s: float


def _bin_end(t: np.ndarray, bin_s: float) -> np.ndarray:
    """The end of the bin each time falls in ((k-1) * bin_s < t <= k * bin_s): an interval
    ending at t belongs to the bin it ends in."""
    return np.ceil(np.round(t / bin_s, 9)) * bin_s


class Fold:
    """Windows in (Recordings of one stretch each, in time order, from recording/windows.py),
    a Folded out. A bin is folded once no later window can add to it: every row a later
    window brings ends at or after that window's first time (`upto_s`), but for each
    thread's interval ending at its last sample, which waits for the next window's first
    sample (it may tell the interval's wait) and is judged there."""

    def __init__(self, head: Recording, bin_s: float, stack_bin_s: float) -> None:
        self.head = head
        self.bin_s = bin_s
        self.stack_bin_s = stack_bin_s
        self._carry = pd.DataFrame()          # each thread's last samples, for the next window
        self._judged_s: dict[tuple[int, int], float] = {}  # thread -> its intervals judged up to
        self._carry_spans = pd.DataFrame()    # spans still covering those samples
        self._pending: dict[str, pd.DataFrame] = {}
        self._done: dict[str, list[pd.DataFrame]] = {
            "states": [], "stacks": [], "threads": [], "processes": [], "machine": []}
        self._blocks: dict[tuple[int, int, float], LoopBlock] = {}
        self._starved: dict[tuple[int, int, float], LoopBlock] = {}
        self._last_t = 0.0

    def add(self, window: Recording, upto_s: float) -> None:
        """Folds one window; `upto_s`: where the next window starts (inf for the last)."""
        ts = window.thread_samples
        own_spans = window.stacks
        if not ts.empty:
            self._last_t = max(self._last_t, float(ts["t_s"].max()))
        samples = _joined(self._carry, ts)
        spans = _joined(self._carry_spans, own_spans)
        rec = replace(window, thread_samples=samples, stacks=spans)
        states = thread_states(rec)
        judged_s = self._judged_s
        waiting = _waiting(ts, window.threads) if np.isfinite(upto_s) else {}
        # a loop's stretch out of its selector that runs to the window's end is judged whole
        # in the next window: its thread's samples and spans since then are carried
        opened = open_runs(spans) if np.isfinite(upto_s) else {}
        if not samples.empty:
            # samples come in thread and time order, the carried ones first
            last = samples.groupby(["proc_id", "tid"], sort=False).tail(_CARRIED_SAMPLES)
            self._carry = _with_open_runs(samples, last, opened).reset_index(drop=True)
            self._carry_spans = _still_open(spans, self._carry, rec.stack_rate_hz)
            self._judged_s = _judged_through(self._carry, waiting)
        self._judge_loops(spans, states, opened)
        states = _not_judged(states, judged_s, waiting)
        # a waiting interval comes with the next window, and ends before it starts
        self._stage("states", states, self.bin_s, min([upto_s, *waiting.values()]))
        self._stage("stacks", own_spans, self.stack_bin_s, upto_s)
        self._stage("threads", ts, self.bin_s, upto_s)
        self._stage("processes", window.process_samples, self.bin_s, upto_s)
        self._stage("machine", window.machine_samples, self.bin_s, upto_s)

    def _judge_loops(self, spans: pd.DataFrame, states: pd.DataFrame,
                     opened: dict[tuple[int, int], float]) -> None:
        # (a block's start is rounded to 0.1 ms)
        whole = [b for b in loop_blocks(spans)
                 if not abs(opened.get((b.pid, b.tid), np.inf) - b.start_s) < 1e-4]
        kept, starved = judge_blocks(whole, spans, states)
        # a block seen again, whole or in part, from the spans carried into the next window
        # (those still open at its first carried sample may start inside it): the longer stays
        for found, into in ((kept, self._blocks), (starved, self._starved)):
            for b in found:
                same = [k for k, o in into.items() if k[:2] == (b.pid, b.tid)
                        and b.start_s < o.start_s + o.duration_s
                        and o.start_s < b.start_s + b.duration_s]
                if all(into[k].duration_s < b.duration_s for k in same):
                    for k in same:
                        del into[k]
                    into[(b.pid, b.tid, round(b.start_s, 6))] = b

    def _stage(self, kind: str, rows: pd.DataFrame, bin_s: float, upto_s: float) -> None:
        """Adds rows to the kind's pending ones and folds the bins that are complete."""
        if rows.empty:
            return
        if not bin_s:  # kept as recorded
            self._keep(kind, rows)
            return
        rows = rows.assign(_bin=_bin_end(rows["t_s"].to_numpy(dtype=np.float64), bin_s)
                           if kind != "stacks" else
                           np.floor(rows["t_s"].to_numpy(dtype=np.float64) / bin_s) * bin_s)
        if kind == "stacks":  # sums, firsts and peaks: a window's spans fold at once
            rows = _fold_spans(rows)
        pending = _joined(self._pending.get(kind, pd.DataFrame()), rows)
        complete = pending["_bin"].to_numpy() < _first_open_bin(upto_s, bin_s, kind)
        if complete.any():
            self._keep(kind, self._fold(kind, pending[complete], bin_s))
        self._pending[kind] = pending[~complete].reset_index(drop=True)

    def _keep(self, kind: str, folded: pd.DataFrame) -> None:
        """Adds folded rows; every so often joins those kept into one frame (a day folded in
        hundreds of small frames held ~100 MB more than in one)."""
        parts = self._done[kind]
        parts.append(folded)
        if len(parts) >= _JOIN_EVERY:
            self._done[kind] = [_joined(*parts)]

    def _fold(self, kind: str, rows: pd.DataFrame, bin_s: float) -> pd.DataFrame:
        if kind == "states":
            return _fold_states(rows)
        if kind == "stacks":
            return _fold_spans(rows).drop(columns="_bin")
        if kind == "threads":
            return _last_per_bin(rows, ["proc_id", "tid"], ())
        if kind == "processes":
            return _last_per_bin(rows, ["proc_id"], _PEAKS)
        return _mean_per_bin(rows)

    def result(self) -> Folded:
        for kind in list(self._pending):
            pending = self._pending.pop(kind)
            if not pending.empty:
                bin_s = self.stack_bin_s if kind == "stacks" else self.bin_s
                self._done[kind].append(self._fold(kind, pending, bin_s) if bin_s else pending)
        done = {kind: _joined(*parts) if parts else pd.DataFrame()
                for kind, parts in self._done.items()}
        head = self.head
        if not head.meta.duration_s:
            head = replace(head, meta=replace(head.meta, duration_s=self._last_t))
        # the last bin ends with the recording, not beyond it
        end = float(head.meta.duration_s or self._last_t) if self.bin_s else np.inf
        states = _clip_time(done["states"], end)
        rec = replace(head,
                      thread_samples=_rated(_clip_time(done["threads"], end),
                                            ["proc_id", "tid"]),
                      process_samples=_rated(_clip_time(done["processes"], end),
                                             ["proc_id"]),
                      stacks=_sorted_spans(done["stacks"]),
                      machine_samples=_clip_time(done["machine"], end))
        # in the order diagnose() finds them: by thread, then time
        blocks = sorted(self._blocks.values(), key=lambda b: (b.pid, b.tid, b.start_s))
        starved = sorted(self._starved.values(), key=lambda b: (b.pid, b.tid, b.start_s))
        return Folded(rec, states.reset_index(drop=True) if not states.empty
                      else thread_states(replace(head, thread_samples=pd.DataFrame())),
                      (blocks, starved), self.bin_s, self.stack_bin_s)


def _first_open_bin(upto_s: float, bin_s: float, kind: str) -> float:
    """The first bin (its key) a later window may still add to."""
    if not np.isfinite(upto_s):
        return np.inf
    if kind == "stacks":  # keyed by start; a later span starts at or after upto_s
        return float(np.floor(upto_s / bin_s) * bin_s)
    return float(_bin_end(np.array([upto_s]), bin_s)[0])  # keyed by end; ends >= upto_s


def _joined(*frames: pd.DataFrame) -> pd.DataFrame:
    """Frames one after another; text columns whose categories differ as categoricals of
    their union (pd.concat would make them objects)."""
    frames = tuple(f for f in frames if not f.empty)
    if not frames:
        return pd.DataFrame()
    if len(frames) == 1:
        return frames[0]
    categoricals = {name for f in frames for name in f.columns
                    if isinstance(f[name].dtype, pd.CategoricalDtype)}
    if categoricals:
        recoded = {}
        for name in categoricals:
            cats = [f[name] for f in frames if name in f.columns]
            if len(cats) != len(frames) or not all(
                    isinstance(c.dtype, pd.CategoricalDtype) for c in cats):
                continue
            if all(c.dtype == cats[0].dtype for c in cats):
                continue  # concat keeps them categorical as they are
            # the union by hand: union_categoricals refuses categories of different dtypes
            # (a window whose column held no text has float or empty-object categories)
            seen: dict[object, None] = {}
            for c in cats:
                seen.update(dict.fromkeys(c.cat.categories))
            recoded[name] = pd.Index(list(seen), dtype=object)
        if recoded:
            frames = tuple(f.assign(**{name: pd.Categorical(f[name], categories=union)
                                       for name, union in recoded.items()}) for f in frames)
    return pd.concat(frames, ignore_index=True)


def _waiting(ts: pd.DataFrame, threads: pd.DataFrame) -> dict[tuple[int, int], float]:
    """Thread -> its last sample in the window, for the threads sampled in it and not
    ended there: the interval ending at that sample waits for the next window, whose
    first sample may tell its wait's kind."""
    if ts.empty:
        return {}
    last = ts.groupby(["proc_id", "tid"], sort=False)["t_s"].max()
    ends = dict(zip(zip(threads["proc_id"].tolist(), threads["tid"].tolist()),
                    threads["end_s"].tolist())) if "end_s" in threads.columns else {}
    return {k: t for k, t in zip(last.index.tolist(), last.tolist())
            if not ends.get(k, np.nan) <= t}  # an unknown end: it may go on


def _judged_through(carry: pd.DataFrame, waiting: dict[tuple[int, int], float]
                    ) -> dict[tuple[int, int], float]:
    """Thread -> the end of its last interval judged: its last carried sample's, or where
    that one's interval waits, the sample's before (-inf: none)."""
    out: dict[tuple[int, int], float] = {}
    for k, t in carry.groupby(["proc_id", "tid"], sort=False)["t_s"]:
        times = t.tolist()
        if k not in waiting:
            out[k] = times[-1]
        else:
            out[k] = times[-2] if len(times) > 1 else -np.inf
    return out


def _not_judged(states: pd.DataFrame, after_s: dict[tuple[int, int], float],
                before_s: dict[tuple[int, int], float]) -> pd.DataFrame:
    """The intervals a window judges: of each thread, those ending after `after_s` (the
    earlier ones the window before judged) and before `before_s` (waiting)."""
    if states.empty or not (after_s or before_s):
        return states
    threads = pd.MultiIndex.from_arrays([states["proc_id"], states["tid"]])

    def per_row(by_thread: dict[tuple[int, int], float], missing: float) -> np.ndarray:
        if not by_thread:
            return np.full(len(states), missing)
        return (pd.Series(by_thread, dtype=np.float64).reindex(threads)
                .fillna(missing).to_numpy(dtype=np.float64))

    lo, hi = per_row(after_s, -np.inf), per_row(before_s, np.inf)
    t = states["t_s"].to_numpy(dtype=np.float64)
    return states[(t > lo) & (t < hi)].reset_index(drop=True)


def _with_open_runs(samples: pd.DataFrame, last: pd.DataFrame,
                    opened: dict[tuple[int, int], float]) -> pd.DataFrame:
    """The samples carried: each thread's `last` and, of a thread whose loop was out of its
    selector at the window's end, those since that stretch began and the one before it (its
    first interval's start), in thread and time order."""
    if not opened:
        return last
    t = samples["t_s"].to_numpy(dtype=np.float64)
    since = np.array([opened.get(k, np.inf) for k in zip(samples["pid"].tolist(),
                                                          samples["tid"].tolist())])
    inside = t >= since
    before = np.zeros(len(samples), dtype=bool)  # each such thread's sample before its stretch
    before[:-1] = inside[1:] & ~inside[:-1]
    keep = np.zeros(len(samples), dtype=bool)
    keep[samples.index.get_indexer(last.index)] = True
    return samples[keep | inside | before]


def _still_open(spans: pd.DataFrame, carry: pd.DataFrame, rate_hz: float) -> pd.DataFrame:
    """The spans that may still be the stack at any of each thread's carried samples (from
    its first)."""
    if spans.empty or carry.empty:
        return pd.DataFrame()
    slack = 2.0 / max(rate_hz, 1.0)  # states.STACK_SLACK_PERIODS periods
    first = carry.groupby(["pid", "tid"], sort=False)["t_s"].min()
    since = dict(zip(first.index.tolist(), first.tolist()))
    at = np.array([since.get(k, np.inf) for k in zip(spans["pid"].tolist(),
                                                   spans["tid"].tolist())])
    end = spans["t_s"].to_numpy(dtype=np.float64) + spans["duration_s"].to_numpy(
        dtype=np.float64)
    return spans[end + slack >= at].reset_index(drop=True)


def _dominant(rows: pd.DataFrame, group: list[str], column: str) -> pd.Series:
    """Per group, the value of `column` that took most of its time (dt_s)."""
    values = rows[column]
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes, labels = values.cat.codes.to_numpy(), values.cat.categories
    else:
        codes, labels = pd.factorize(values.to_numpy(dtype=object))
    weights = rows[group].assign(_code=codes, _w=rows["dt_s"].to_numpy())
    best = (weights.groupby([*group, "_code"], sort=False)["_w"].sum()
            .sort_values(kind="stable").groupby(level=list(range(len(group)))).tail(1))
    best_codes = best.index.get_level_values("_code").to_numpy()
    index = best.index.droplevel("_code")
    return pd.Series(pd.Categorical.from_codes(np.where(best_codes >= 0, best_codes, -1),
                                               categories=labels), index=index)


def _fold_states(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per thread per bin: the seconds summed, the state the largest of them, the
    texts those of most time, `importing` where most of it imported."""
    group = [*_THREAD, "_bin"]
    sums = rows.groupby(group, sort=True)[list(_SUMMED)].sum()
    out = sums.reset_index()
    out["name"] = rows.groupby(group, sort=True)["name"].first().to_numpy()
    imported = rows["dt_s"].where(rows["importing"].to_numpy(dtype=bool), 0.0)
    out["importing"] = (imported.groupby([rows[c] for c in group], sort=True).sum()
                        .to_numpy() > 0.5 * out["dt_s"].to_numpy())
    for column in _DOMINANT:
        out[column] = _dominant(rows, group, column).reindex(sums.index).to_numpy()
    seconds = out[list(STATE_COLUMNS)].to_numpy().T
    out["state"] = pd.Categorical.from_codes(seconds.argmax(axis=0), categories=STATES)
    out["t_s"] = out.pop("_bin")
    columns = ["t_s", "dt_s", *_THREAD, "name", "state", *STATE_COLUMNS, "syscall_name",
               "futex_basis", "leaf", "importing", "startup_s"]
    out = out[columns]
    for column in ("name", "syscall_name", "futex_basis", "leaf"):
        out[column] = out[column].astype("category")
    return out


def _fold_spans(rows: pd.DataFrame) -> pd.DataFrame:
    """One span per thread, stack and bin (`_bin`, kept): from its first start, as long as
    all of them; folding folded spans again gives the same."""
    group = [*_THREAD, "stack_id", "_bin"]
    g = rows.groupby(group, sort=False, dropna=False)
    out = g.agg(t_s=("t_s", "min"), duration_s=("duration_s", "sum"),
                samples=("samples", "sum"), owns_gil=("owns_gil", "max")).reset_index()
    first = g[["thread_name", "stack"]].first().reset_index(drop=True)
    out["thread_name"] = first["thread_name"].to_numpy()
    out["stack"] = first["stack"].to_numpy()
    return out


def _last_per_bin(rows: pd.DataFrame, keys: list[str], peaks: Iterable[str]
                  ) -> pd.DataFrame:
    """One sample per key per bin, at the bin's end: the bin's last (counters exact), with
    the peak of each level in `peaks`."""
    ordered = rows.sort_values([*keys, "t_s"], kind="stable")
    last = ordered.groupby([*keys, "_bin"], sort=False).tail(1).copy()
    for column in peaks:
        if column in rows.columns:
            peak = ordered.groupby([*keys, "_bin"], sort=False)[column].max()
            last[column] = peak.reindex(pd.MultiIndex.from_frame(last[[*keys, "_bin"]])
                                        ).to_numpy()
    last["t_s"] = last.pop("_bin")
    return last.drop(columns=["cpu_percent"], errors="ignore")


def _mean_per_bin(rows: pd.DataFrame) -> pd.DataFrame:
    """The machine's cores, the mean of each bin's samples, at the bin's end."""
    keys = ["host", "_bin"] if "host" in rows.columns else ["_bin"]
    out = rows.groupby(keys, sort=True, dropna=False)[["busy_cores", "recorder_cores"]].mean()
    out = out.reset_index()
    out["t_s"] = out.pop("_bin")
    return out


def _clip_time(frame: pd.DataFrame, end_s: float) -> pd.DataFrame:
    if frame.empty or "t_s" not in frame.columns or end_s <= 0 or not np.isfinite(end_s):
        return frame
    frame = frame.copy()
    frame["t_s"] = np.minimum(frame["t_s"].to_numpy(dtype=np.float64), end_s)
    return frame


def _rated(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Folded samples with cpu_percent over each bin, in key and time order."""
    from inspector.recording.tables import with_rates

    if frame.empty:
        return frame
    return with_rates({name: frame[name].to_numpy() if not isinstance(
        frame[name].dtype, pd.CategoricalDtype) else frame[name].array
        for name in frame.columns}, keys).reset_index(drop=True)


def _sorted_spans(spans: pd.DataFrame) -> pd.DataFrame:
    """In time order, as load() gives them (ties as they came)."""
    if spans.empty:
        return spans
    out = spans.sort_values("t_s", kind="stable").reset_index(drop=True)
    out["stack"] = out["stack"].astype("category")
    return out
