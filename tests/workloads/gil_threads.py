"""Pure-Python arithmetic in 4 threads for SECONDS (default 2.5): the GIL lets one run at a
time, so the process stays near one core whatever the machine has."""

import sys
import threading
import time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 2.5


def arithmetic() -> None:
    end = time.monotonic() + SECONDS
    total = 0
    while time.monotonic() < end:
        for i in range(5000):
            total += i * i % 7


threads = [threading.Thread(target=arithmetic, name=f"arith-{i}") for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
