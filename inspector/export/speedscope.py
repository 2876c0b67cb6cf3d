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
    from inspector.analyze.frames import Frame
    from inspector.recording import Recording

SCHEMA_URL = "https://www.speedscope.app/file-format-schema.json"


def document(rec: Recording) -> dict[str, Any]:
    """The speedscope file as a JSON-ready dict."""
    frame_index: dict[Frame, int] = {}
    frames: list[dict[str, Any]] = []
    names = {(t.pid, t.tid): t.name for t in common.threads(rec)}
    order = {key: i for i, key in enumerate(names)}
    profiles: list[tuple[int, float, dict[str, Any]]] = []
    for pid, tid, spans in common.thread_spans(rec):
        samples, weights = [], []
        for span in spans:
            stack = []
            for frame in span.stack:
                index = frame_index.get(frame)
                if index is None:
                    index = frame_index[frame] = len(frames)
                    entry: dict[str, Any] = {"name": frame.func or "?"}
                    if frame.file:
                        entry["file"], entry["line"] = frame.file, frame.line
                    frames.append(entry)
                stack.append(index)
            samples.append(stack)
            weights.append(round(span.end_s - span.start_s, 9))
        name = names.get((pid, tid), f"thread {tid}")
        profiles.append((order.get((pid, tid), len(order)), sum(weights), {
            "type": "sampled",
            "name": f"{name} (pid {pid}, tid {tid})",
            "unit": "seconds",
            "startValue": round(spans[0].start_s, 9),
            "endValue": round(spans[-1].end_s, 9),
            "samples": samples,
            "weights": weights,
        }))
    profiles.sort(key=lambda p: p[0])
    busiest = max(range(len(profiles)), key=lambda i: profiles[i][1], default=0)
    return {
        "$schema": SCHEMA_URL,
        "name": common.command_text(rec.meta.get("command"), "inspector recording"),
        "exporter": f"inspector {__version__}",
        "activeProfileIndex": busiest,
        "shared": {"frames": frames},
        "profiles": [p[2] for p in profiles],
    }


def to_bytes(rec: Recording) -> bytes:
    return json.dumps(document(rec), ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8", "replace")
