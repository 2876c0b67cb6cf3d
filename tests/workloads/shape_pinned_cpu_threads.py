"""Four pure-Python CPU threads in a process pinned to one core (as `taskset -c 0` or a
one-CPU cpuset would): the core, not the GIL, is the limit, so processes would not help."""

import os
import threading
import time

SECONDS = 1.2

os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # threads started later inherit it


def arithmetic() -> None:
    end = time.monotonic() + SECONDS
    total = 0
    while time.monotonic() < end:
        for i in range(5000):
            total += i * i % 7


threads = [threading.Thread(target=arithmetic, name=f"pinned-{i}") for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
