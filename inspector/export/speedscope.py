"""A recording's Python stacks in speedscope's file format
(https://www.speedscope.app/file-format-schema.json): one sampled profile per thread, each
sample a stack span weighted by the seconds it lasted, in time order.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from inspector import __version__
from inspector.export import common

if TYPE_CHECKING:
    from inspector.recording import Recording

SCHEMA_URL = "https://www.speedscope.app/file-format-schema.json"


def document(rec: Recording) -> dict[str, Any]:
    """The speedscope file as a JSON-ready dict."""
    # one frame per function (name and file): the sandwich view then sums a function's time
    # over all its lines, as a profiler's function table does
    frame_index: dict[tuple[str, str], int] = {}
    frames: list[dict[str, Any]] = []
    listed = common.threads(rec)
    names = {(t.pid, t.tid): t.name for t in listed}
    hosts = {(t.pid, t.tid): f"{t.host}, " for t in listed if t.host}
    order = {key: i for i, key in enumerate(names)}
    profiles: list[tuple[int, tuple[int, int], dict[str, Any]]] = []
    for pid, tid, spans in common.thread_spans(rec):
        samples, weights = [], []
        for span in spans:
            stack = []
            for frame in span.stack:
                key = (frame.func or "?", frame.file)
                index = frame_index.get(key)
                if index is None:
                    index = frame_index[key] = len(frames)
                    entry: dict[str, Any] = {"name": key[0]}
                    if frame.file:
                        entry["file"] = frame.file
                    frames.append(entry)
                stack.append(index)
            samples.append(stack)
            weights.append(round(span.end_s - span.start_s, 9))
        name = names.get((pid, tid), f"thread {tid}")
        profiles.append((order.get((pid, tid), len(order)), (pid, tid), {
            "type": "sampled",
            "name": f"{name} ({hosts.get((pid, tid), '')}pid {pid}, tid {tid})",
            "unit": "seconds",
            "startValue": round(spans[0].start_s, 9),
            "endValue": round(spans[-1].end_s, 9),
            "samples": samples,
            "weights": weights,
        }))
    profiles.sort(key=lambda p: p[0])
    # speedscope opens on the thread that used the most CPU: where a reader's question is
    cpu_s = _cpu_s_by_thread(rec)
    keys = [p[1] for p in profiles]
    busiest = max(range(len(profiles)), key=lambda i: cpu_s.get(keys[i], 0.0), default=0)
    return {
        "$schema": SCHEMA_URL,
        "name": common.command_text(rec.meta.command, "inspector recording"),
        "exporter": f"inspector {__version__}",
        "activeProfileIndex": busiest,
        "shared": {"frames": frames},
        "profiles": [p[2] for p in profiles],
    }


def to_bytes(rec: Recording) -> bytes:
    return json.dumps(document(rec), ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8", "replace")


def _cpu_s_by_thread(rec: Recording) -> dict[tuple[int, int], float]:
    """(pid, tid) -> CPU seconds the thread used while recorded (the cumulative counters'
    last value less their first)."""
    ts = rec.thread_samples
    if ts.empty:
        return {}
    cpu = ts["cpu_user_s"].fillna(0) + ts["cpu_system_s"].fillna(0)
    by = cpu.groupby([ts["pid"], ts["tid"]], sort=False)
    used = by.max() - by.min()
    return {(int(p), int(t)): float(v) for (p, t), v in used.items()}
