"""The machine as the recorder measured it beside a recording (inspector/record/calibrate.py
measures it; meta `calibration` and `calibration_end` hold it; docs/calibration.md explains
each figure). A data record of the format: standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, NamedTuple


@dataclass(frozen=True)
class Calibration:
    """The machine as measured. Times are seconds (wall unless `cpu` is in the name)."""

    taken_at: float                 # Unix time at the start
    wall_s: float
    cpu_s: float                    # the calibration's own CPU, its children included
    budget_cpu_s: float
    processes: int                  # k: the processes run at once
    rounds: int
    slice_cpu_s: float              # each worker's planned slice of Python
    process_speedup: float          # k at once against 1 alone, median of the rounds
    process_speedup_low: float      # the rounds' min and max
    process_speedup_high: float
    process_cpu_inflation: float    # a slice's CPU when k run at once / alone (shared cores)
    iterations_per_s: float         # one worker alone, wall: the machine's pace
    gil_switch_interval_s: float    # sys.getswitchinterval() of the calibrating interpreter
    gil_handoffs: int               # hand-offs seen over all rounds
    gil_handoff_s: float | None     # the wall each hand-off costs, median (None: none seen)
    gil_handoff_cost: float | None  # that over the switch interval: threads taking turns
    gil_handoff_cost_low: float | None   # every interval cost this much more; rounds' range
    gil_handoff_cost_high: float | None
    worker_start_fork_s: float | None    # fork, first result back (None: not measured)
    worker_start_spawn_s: float | None   # a spawn-like start, first result back
    interpreter_start_s: float | None    # sys.executable to its first line of -c code
    thread_start_s: float | None         # Thread.start() to its first result
    others_busy_cores: float        # cores other programs kept busy meanwhile (mean)
    method: str
    # A multiprocessing pool of forked workers (creation to join, one task each): what each
    # worker adds to its life, and its fixed part, from pools of two sizes. Added later: a
    # calibration without them reads them as None.
    pool_worker_fork_s: float | None = None
    pool_fixed_fork_s: float | None = None

    @property
    def together_iterations_per_s(self) -> float:
        """What the k processes do together: the machine's capacity for this program."""
        return self.iterations_per_s * self.process_speedup

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, for a recording's meta; from_dict() gives back an equal Calibration."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibration | None:
        """From to_dict()'s output (a recording's meta: untrusted); keys it does not know are
        ignored. None when a field is missing or of the wrong kind, or a number is not
        finite: a calibration that cannot be read is one the predictions do without."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in d:
                if f.default is MISSING:
                    return None
                continue  # a field added later, its default
            v = d[f.name]
            kind = _KINDS[f.name]
            if v is None and kind.optional:
                values[f.name] = None
            elif _fits(v, kind.type):
                values[f.name] = v
            else:
                return None
        return cls(**values)


def _fits(v: Any, kind: type) -> bool:
    if kind is str:
        return isinstance(v, str)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return False
    return kind is not int or isinstance(v, int)


class _Kind(NamedTuple):
    type: type
    optional: bool


_KINDS = {f.name: _Kind(str if "str" in str(f.type) else int if str(f.type) == "int" else float,
                        "None" in str(f.type))
          for f in fields(Calibration)}
