"""The demo's takeaways: what its table says, one sentence per job, with the explanations
only where the diagnosis of that very run supports them."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Protocol

from inspector.analyze.capacity import CAPACITY_CHANGE_SHARE, MachineChange
from inspector.analyze.comparison import ComparedRun
from inspector.text.comparison import NO_DIFFERENCE


class DemoSettings(Protocol):
    """What the sentences quote of the demo's plan (commands/demo.py DemoPlan)."""

    @property
    def cpu_workers(self) -> int: ...
    @property
    def io_size(self) -> int: ...
    @property
    def io_delay_s(self) -> float: ...
    @property
    def io_workers(self) -> int: ...
    @property
    def repeat(self) -> int: ...


def takeaways(rows: Sequence[ComparedRun], plan: DemoSettings) -> list[str]:
    """What the numbers say, one sentence per job; the explanations only where the diagnosis
    of that very run supports them, and no speed-up where the runs cannot tell it from 1."""
    by = {(r.facts.job, r.facts.variant): r for r in rows}
    out = []
    cpu = [by.get(("cpu", v)) for v in ("multiprocessing", "threading", "asyncio")]
    if all(cpu):
        mp, th, aio = (r for r in cpu if r is not None)
        gil = " (the diagnosis: GIL-limited)" if th.facts.verdict.gil_limited else ""
        out.append(
            f"CPU-bound job: {plan.cpu_workers} processes ran {_vs(mp)}, using "
            f"{mp.cpu_percent:.0f}% CPU (100% is one core); {plan.cpu_workers} threads "
            f"{_vs(th)} at {th.cpu_percent:.0f}%{gil}; asyncio {_vs(aio)}: its coroutines "
            f"never await, so they ran one after another on one thread.")
    io = [by.get(("io", v)) for v in ("multiprocessing", "threading", "asyncio")]
    if all(io):
        mp, th, aio = (r for r in io if r is not None)
        out.append(
            f"I/O-bound job ({plan.io_size} requests answered after {plan.io_delay_s} s each, "
            f"{plan.io_workers} at a time): threads ran {_vs(th)} and asyncio {_vs(aio)}, at "
            f"{th.cpu_percent:.0f}% and {aio.cpu_percent:.0f}% CPU, asyncio with "
            f"{aio.facts.threads} thread; processes {_vs(mp)}, after starting "
            f"{mp.facts.processes} processes ({mp.facts.rss_peak_bytes / 2**20:.0f} MiB RSS in "
            f"all, threads {th.facts.rss_peak_bytes / 2**20:.0f} MiB).")
    out.append(f"Each figure is the median of {plan.repeat} interleaved runs, in brackets the "
               "range they allow." if plan.repeat > 1 else
               "One run of each (--repeat 1): no spread measured, so no difference can be "
               "told from noise.")
    return out


def _vs(r: ComparedRun) -> str:
    """'1.6x as fast as sequential (1.5-1.7x)', or that the runs show no difference."""
    if r.within_noise:
        return f"with {NO_DIFFERENCE} from sequential ({r.speedup_low:.2f}-{r.speedup_high:.2f}x)"
    spread = (f" ({r.speedup_low:.2f}-{r.speedup_high:.2f}x)"
              if r.speedup_low < r.speedup_high else "")
    return f"{r.speedup:.2f}x as fast as sequential{spread}"


def capacity_sentence(change: MachineChange) -> str:
    """Why a demo's figures are flagged: the machine changed under it."""
    third = max(1, len(change.capacities) // 3)
    first = statistics.median(change.capacities[:third])
    last = statistics.median(change.capacities[-third:])
    return (f"the machine's capacity changed during the demo: what its cores did together "
            f"went from {first / 1e6:.1f} to {last / 1e6:.1f} M iterations/s (medians of its "
            f"first and last calibrations, more than {CAPACITY_CHANGE_SHARE:.0%} apart), so "
            "measured and predicted speed-ups stood on different machines; re-run it when the "
            "machine is steadier")
