"""Four CPU-bound threads, a two-worker process pool and a sleeping thread, at once.

Record it with `inspector record -- python -m inspector.examples.threads_and_processes`:
htop shows many rows, but there are 3 processes; the 4 threads share one core (the GIL),
while the 2 pool workers each get a core of their own.
"""

from __future__ import annotations

import argparse
import multiprocessing
import threading
import time


def sum_of_squares(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="how long each part runs (default 3)")
    args = parser.parse_args()
    deadline = time.monotonic() + args.seconds

    def spin() -> None:
        while time.monotonic() < deadline:
            sum_of_squares(20_000)

    threads = [threading.Thread(target=spin, name=f"cpu-{i}") for i in range(4)]
    threads.append(threading.Thread(target=time.sleep, args=(args.seconds,), name="sleeper"))
    for t in threads:
        t.start()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        chunks = pool.map(_pool_job, [args.seconds] * 2)
    for t in threads:
        t.join()
    print(f"pool workers computed {sum(chunks)} blocks; threads done")


def _pool_job(seconds: float) -> int:
    deadline = time.monotonic() + seconds
    blocks = 0
    while time.monotonic() < deadline:
        sum_of_squares(20_000)
        blocks += 1
    return blocks


if __name__ == "__main__":
    main()
