"""Starts N threads that wait, times a fixed piece of work in the main thread, and ends them.

Usage: fault_threads.py N REPORT_FILE. Writes {"threads": N, "work_s": seconds} so a test can
compare the work's duration with and without recording.
"""

from __future__ import annotations

import json
import sys
import threading
import time

WORK_ITERATIONS = 8_000_000  # about half a second of pure Python on these machines


def waiting_thread(stop: threading.Event) -> None:
    stop.wait()


def timed_work() -> float:
    t0 = time.perf_counter()
    x = 0
    for i in range(WORK_ITERATIONS):
        x += i % 7
    return time.perf_counter() - t0


def main() -> None:
    n, report = int(sys.argv[1]), sys.argv[2]
    stop = threading.Event()
    threads = [threading.Thread(target=waiting_thread, args=(stop,), name=f"waiter-{i}")
               for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # let the recorder see them all before the work starts
    work_s = timed_work()
    stop.set()
    for t in threads:
        t.join()
    with open(report, "w") as f:
        json.dump({"threads": n, "work_s": work_s}, f)


if __name__ == "__main__":
    main()
