"""What every part of the report shares: the processes in tree order, their threads in
lane order, their labels and colours. Strings here are raw (as the target wrote them);
each renderer escapes them for where they go.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from inspector.analyze.frames import parse_frame
from inspector.analyze.vocabulary import STATES
from inspector.recording.values import opt_float, opt_int, opt_str

# One colour per process, the same in every chart; the tree and the legends match them.
PROCESS_COLORS = ("#3969AC", "#E68310", "#11A579", "#CF1C90", "#7F3C8D", "#80BA5A",
                  "#F2B701", "#008695", "#E73F74", "#A5AA99")
OTHER_COLOR = "#B0B0B0"

# A colour per thread state (analyze.vocabulary names them and says them): the report's
# one mapping of them, used by the legend, the bars and the timeline. Colours are drawing,
# so they live here; a state without one fails at import, not in a half-drawn page.
_STATE_COLOR = {
    "cpu": "#2E9E4F",       # green: doing work
    "gil": "#D62728",       # red: wanted to run Python, waited for the GIL
    "lock": "#FF9F1C",      # orange: waiting on the program itself (lock, queue, join)
    "io": "#3B7DD8",        # blue: waiting on the outside world
    "sleep": "#D9D9D9",     # light grey: asked to wait
    "runqueue": "#9467BD",  # purple: runnable, no free core
    "other": "#8C8C8C",     # dark grey: could not tell
}
STATE_COLORS = {state: _STATE_COLOR[state] for state in STATES}

# Charts with one series per process stay readable up to about this many; the rest are
# drawn together as "other processes".
MAX_PROCESS_SERIES = 10
# Labels beside lanes and in legends: longer names are cut in the middle, where the part
# that tells them apart is least often found (it is the start or the end).
MAX_LABEL_CHARS = 32


def clip(text: str, limit: int, keep_end: bool = False) -> str:
    """At most `limit` characters: cut in the middle, or (keep_end) at the start."""
    if len(text) <= limit:
        return text
    if keep_end:
        return "…" + text[len(text) - (limit - 1):].lstrip("./")
    head = (limit - 1) // 2
    return text[:head] + "…" + text[len(text) - (limit - 1 - head):]


def frame_caption(text: str) -> str:
    """'work (/a/b/job.py:7)' -> 'work · job.py:7': short enough for a panel or a cell."""
    frame = parse_frame(text)
    if not frame.file:
        return frame.func
    return f"{frame.func} · {frame.file.rsplit('/', 1)[-1]}:{frame.line}"


@dataclass
class ThreadView:
    proc_id: int
    pid: int
    tid: int
    name: str
    start_s: float | None
    end_s: float | None

    @property
    def label(self) -> str:
        return f"{clip(self.name, MAX_LABEL_CHARS)} ({self.tid})" if self.name else str(self.tid)


@dataclass
class ProcessView:
    proc_id: int
    pid: int
    ppid: int | None
    parent_proc_id: int | None
    name: str
    cmdline: list[str]
    exe: str
    start_s: float | None
    end_s: float | None
    exit_code: int | None
    is_python: bool
    python_version: str | None
    python_gil: str | None
    is_target: bool
    depth: int = 0
    color: str = OTHER_COLOR
    threads: list[ThreadView] = field(default_factory=list)

    @property
    def short_command(self) -> str:
        """The script or module a person would name it by, else the program's name."""
        args = self.cmdline or [self.name]
        for i, arg in enumerate(args):
            if arg == "-m" and i + 1 < len(args):
                return f"-m {args[i + 1]}"
            if i > 0 and arg.endswith(".py"):
                return os.path.basename(arg)
        return os.path.basename(args[0]) if args and args[0] else (self.name or "?")

    @property
    def label(self) -> str:
        # A module's or script's last part names it best: keep the end.
        return f"{self.pid} {clip(self.short_command, MAX_LABEL_CHARS, keep_end=True)}"


@dataclass
class ReportModel:
    processes: list[ProcessView]                # tree order: parent, then its children
    by_proc_id: dict[int, ProcessView]

    @property
    def threads(self) -> list[ThreadView]:
        return [t for p in self.processes for t in p.threads]


def build_model(processes: pd.DataFrame, threads: pd.DataFrame,
                cpu_s_by_proc: Mapping[int, float] | None = None) -> ReportModel:
    """Processes in tree order (children after their parent, busiest first among siblings)."""
    views: dict[int, ProcessView] = {}
    for row in processes.to_dict("records"):
        pv = ProcessView(
            proc_id=int(row["proc_id"]), pid=int(row["pid"]), ppid=opt_int(row.get("ppid")),
            parent_proc_id=opt_int(row.get("parent_proc_id")), name=opt_str(row["name"]) or "",
            cmdline=[str(a) for a in (row.get("cmdline") or [])], exe=opt_str(row["exe"]) or "",
            start_s=opt_float(row.get("start_s")), end_s=opt_float(row.get("end_s")),
            exit_code=opt_int(row.get("exit_code")), is_python=bool(row.get("is_python")),
            python_version=opt_str(row.get("python_version")),
            python_gil=opt_str(row.get("python_gil")), is_target=bool(row.get("is_target")))
        views[pv.proc_id] = pv
    for row in threads.sort_values(["proc_id", "start_s", "tid"]).to_dict("records"):
        owner = views.get(int(row["proc_id"]))
        if owner is None:  # a thread whose process row is missing: keep it, under a stub
            owner = views[int(row["proc_id"])] = ProcessView(
                int(row["proc_id"]), int(row["pid"]), None, None, "?", [], "", None, None, None,
                False, None, None, False)
        owner.threads.append(ThreadView(
            proc_id=owner.proc_id, pid=int(row["pid"]), tid=int(row["tid"]),
            name=opt_str(row.get("name")) or opt_str(row.get("os_name")) or "",
            start_s=opt_float(row.get("start_s")), end_s=opt_float(row.get("end_s"))))
    busy = cpu_s_by_proc or {}
    children: dict[int | None, list[ProcessView]] = {}
    for pv in views.values():
        parent = pv.parent_proc_id if pv.parent_proc_id in views else None
        children.setdefault(parent, []).append(pv)
    ordered: list[ProcessView] = []

    def visit(level: Iterable[ProcessView], depth: int) -> None:
        for pv in sorted(level, key=lambda p: (not p.is_target, p.start_s or 0.0, p.proc_id)):
            pv.depth = depth
            ordered.append(pv)
            visit(children.get(pv.proc_id, []), depth + 1)

    visit(children.get(None, []), 0)
    # Colours go to the busiest processes first, so the ones that matter are told apart.
    by_cpu = sorted(ordered, key=lambda p: -busy.get(p.proc_id, 0.0))
    for i, pv in enumerate(by_cpu):
        pv.color = PROCESS_COLORS[i] if i < len(PROCESS_COLORS) else OTHER_COLOR
    return ReportModel(ordered, {p.proc_id: p for p in ordered})
