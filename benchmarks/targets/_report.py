"""What every benchmark target reports about itself: its own wall and CPU time, as JSON.

Targets time their own work, so a recorder's start-up and shut-down are not counted as
the target's slowdown (run.py times the whole command as well, separately).
"""

from __future__ import annotations

import json
import os
import resource
import time
from typing import Any


class SelfTimer:
    """Wall and CPU time (this process and its waited-for children) from creation to `write()`."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.cpu0 = _cpu_s()

    def write(self, path: str | None, **extra: Any) -> dict[str, Any]:
        result = {"wall_s": time.perf_counter() - self.t0, "cpu_s": _cpu_s() - self.cpu0,
                  "pid": os.getpid(), **extra}
        if path:
            with open(path, "w") as f:
                json.dump(result, f)
        return result


def _cpu_s() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        total += ru.ru_utime + ru.ru_stime
    return total


def burn(units: int) -> int:
    """Pure-Python CPU work, `units` of ~1000 loop iterations (the CPU targets' common load)."""
    x = 0
    for _ in range(units):
        for i in range(1000):
            x += i * i % 7
    return x
