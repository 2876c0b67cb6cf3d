"""A recording analysed within a memory budget: `analysis_input()` gives load()'s Recording
and its states when the file's rows fit the budget, and else a folded one, read window by
window (recording/windows.py) and folded as it goes (analyze/fold.py), so that memory stays
bounded whatever the recording's length. docs/scale.md states the bound.
"""

from __future__ import annotations

import math
import os
import resource
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from inspector.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

    from inspector.analyze.eventloop import LoopBlock
    from inspector.recording import Recording
    from inspector.recording.windows import Size

MEMORY_BUDGET_ENV = "INSPECTOR_MEMORY_BUDGET_MB"
MB = 1 << 20
# What load(), the states and a report hold at their peak per row of the file's growing
# tables (thread and process samples, stack spans, machine samples), beyond the interpreter
# and its imports: the 64-thread hour, 4.7 M rows, peaked at 1.12 GB for `summary` and ~1.1
# GB for `report`, ~0.15 GB of it imports (benchmarks/RESULTS.md): ~210 B a row, rounded up.
FULL_BYTES_PER_ROW = 240
# Of the memory free (or left under a limit on this process) once the analysis has imported
# what it needs, the share it may plan to take: the rest is the page cache's, the OS's, and
# the estimate's error.
BUDGET_SHARE = 0.6
# A streamed run's own rows: those of one window (raw, at full resolution, while folded),
# and those kept folded (half states and samples, half stack spans); each costs at most
# about what a loaded row does.
WINDOW_SHARE = 0.25
FOLDED_SHARE = 0.35
# However large the budget, a stream takes no more than these: a window of 1 M rows costs
# its per-window overhead a thousand times less often than a 1-k one and no larger one
# reads faster, and 2 M folded rows each of states and spans give a 64-thread day 5-s bins;
# a machine shared with others is not filled for nothing.
MAX_WINDOW_ROWS = 1 << 20
MAX_FOLDED_ROWS = 1 << 21
# Bins are one of these, so that the bins of every thread and process line up.
NICE_BIN_S = (0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0,
              600.0, 900.0, 1800.0, 3600.0)
MIN_WINDOW_S = 30.0  # one writer epoch: a window holds at least a block of each thread


@dataclass(frozen=True)
class Plan:
    """Whether a recording is read whole or streamed, and at what resolution."""

    streamed: bool
    budget_bytes: int
    full_bytes: int          # what reading it whole is estimated to take
    bin_s: float = 0.0       # a streamed run's state and sample bins
    stack_bin_s: float = 0.0
    window_s: float = 0.0

    def to_dict(self) -> dict[str, float | int | bool]:
        return {"streamed": self.streamed, "budget_mb": round(self.budget_bytes / MB),
                "full_load_estimate_mb": round(self.full_bytes / MB), "bin_s": self.bin_s,
                "stack_bin_s": self.stack_bin_s, "window_s": self.window_s}

    def sentence(self) -> str:
        why = (f"reading it whole would take ~{self.full_bytes / MB:,.0f} MB, over the budget"
               f" of {self.budget_bytes / MB:,.0f} MB" if self.full_bytes > self.budget_bytes
               else "as asked (--stream)")

        def bins(what: str, bin_s: float) -> str:
            return f"{what} in {bin_s:g}-s bins" if bin_s else f"{what} as recorded"

        return (f"streamed, {why}: {bins('thread states and samples', self.bin_s)},"
                f" {bins('stack spans', self.stack_bin_s)}, read {self.window_s:g} s at a time")


def default_budget_bytes() -> int:
    """BUDGET_SHARE of the memory available now, or of what an address-space or data
    limit on this process leaves, whichever is smaller."""
    free = _available_bytes()
    for limit in (resource.RLIMIT_AS, resource.RLIMIT_DATA):
        soft, _ = resource.getrlimit(limit)
        if soft != resource.RLIM_INFINITY:
            free = min(free, max(0, soft - _used_bytes(limit)))
    return int(BUDGET_SHARE * free)


def _available_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    pages = os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else -1
    return int(pages * os.sysconf("SC_PAGE_SIZE")) if pages > 0 else 8 << 30


def _used_bytes(limit: int) -> int:
    """What counts against `limit` already: the address space, or the data segments."""
    field = "VmSize:" if limit == resource.RLIMIT_AS else "VmData:"
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def budget_from(mb: Optional[float]) -> int:
    """The budget in bytes beyond what the process holds already: `mb` if given, else
    INSPECTOR_MEMORY_BUDGET_MB, else the default."""
    if mb is None:
        told = os.environ.get(MEMORY_BUDGET_ENV, "").strip()
        if not told:
            return default_budget_bytes()
        try:
            mb = float(told)
        except ValueError:
            raise UsageError(f"{MEMORY_BUDGET_ENV}={told!r}: give megabytes") from None
    if not mb > 0 or not math.isfinite(mb):
        raise UsageError(f"memory budget {mb!r}: give a positive number of megabytes")
    return int(mb * MB)


def _nice(seconds: float, at_least: float) -> float:
    want = max(seconds, at_least)
    return next((b for b in NICE_BIN_S if b >= want - 1e-9),
                math.ceil(want / 3600.0) * 3600.0)


def plan(size: Size, interval_s: float, budget_bytes: int, force: bool = False) -> Plan:
    """Read whole if the rows fit the budget (and not `force`d to stream); else bins and
    windows sized so a streamed run's rows fit it: state bins so that threads x bins, stack
    bins so that threads x stacks x bins each stay within the folded share."""
    full = FULL_BYTES_PER_ROW * size.rows
    if full <= budget_bytes and not force:
        return Plan(False, budget_bytes, full)
    rows_budget = max(1, budget_bytes // FULL_BYTES_PER_ROW)
    folded = max(1, min(MAX_FOLDED_ROWS, int(rows_budget * FOLDED_SHARE / 2)))  # each
    length = max(size.duration_s, interval_s)
    # 0: as recorded, when even that fits (a stream asked for on a small file)
    samples = size.thread_samples + size.process_samples + size.machine_samples
    bin_s = 0.0 if samples <= folded else _nice(length * size.threads / folded, interval_s)
    per_bin = size.threads * max(1, min(size.stack_texts, 64))
    stack_bin_s = 0.0 if size.stack_spans <= folded else _nice(length * per_bin / folded,
                                                               max(bin_s, interval_s))
    per_s = max(1.0, size.rows / length)
    window_s = max(MIN_WINDOW_S, min(MAX_WINDOW_ROWS, rows_budget * WINDOW_SHARE) / per_s)
    return Plan(True, budget_bytes, full, bin_s, stack_bin_s, float(math.floor(window_s)))


@dataclass(frozen=True)
class AnalysisInput:
    """What the summary and the report analyse: a Recording (loaded, or folded), its states,
    the event-loop blocks judged on the windows (None: diagnose judges them) and the plan."""

    recording: Recording
    states: pd.DataFrame
    loops: Optional[tuple[list[LoopBlock], list[LoopBlock]]]
    plan: Plan


def analysis_input(path: str | os.PathLike[str], budget_mb: Optional[float] = None,
                   stream: bool = False) -> AnalysisInput:
    """load() and thread_states() if the file fits the budget, else the folded recording."""
    from inspector.analyze import thread_states
    from inspector.recording import load
    from inspector.recording.windows import size_of

    p = Path(path)
    size = size_of(p)
    the_plan = plan(size, size.interval_s, budget_from(budget_mb), force=stream)
    if not the_plan.streamed:
        rec = load(p)
        return AnalysisInput(rec, thread_states(rec), None, the_plan)
    return streamed(p, the_plan)


def streamed(path: Path, the_plan: Plan) -> AnalysisInput:
    """The recording read by windows and folded as `the_plan` says."""
    from inspector.analyze.fold import Fold
    from inspector.recording.windows import Windows

    windows = Windows(path, the_plan.window_s)
    fold = Fold(windows.head, the_plan.bin_s, the_plan.stack_bin_s)
    trim = _heap_trim()
    for k, window in enumerate(windows):
        fold.add(window, windows.bounds_s(k)[1])
        del window
        trim()
    folded = fold.result()
    del fold, windows
    trim()
    return AnalysisInput(folded.recording, folded.states, folded.loops, the_plan)


def _heap_trim() -> Callable[[], object]:
    """glibc's malloc_trim(0), or nothing elsewhere: each window's arrays, once freed, go
    back to the OS rather than stay in a heap the next window's (of other sizes) fragment,
    which grew a streamed day's peak with its length."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = libc.malloc_trim if libc is not None else None
    except (OSError, AttributeError):
        trim = None
    if trim is None:
        return lambda: None
    return lambda: trim(0)
