"""The pure-Python arithmetic the CPU-bound workloads run, one loop for all of them: what differs
between them is how they spread it (a pool, a straggler, a pin)."""

import time


def arithmetic(seconds: float) -> int:
    """Computes for `seconds` of wall time, holding the GIL between checks of the clock."""
    end = time.monotonic() + seconds
    total = 0
    while time.monotonic() < end:
        for i in range(5000):
            total += i * i % 7
    return total
