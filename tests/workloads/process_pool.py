"""The same pure-Python arithmetic in a 2-process pool: each worker has its own GIL."""

import multiprocessing
import time

SECONDS = 2.5


def arithmetic(seconds: float) -> int:
    end = time.monotonic() + seconds
    total = 0
    while time.monotonic() < end:
        for i in range(5000):
            total += i * i % 7
    return total


if __name__ == "__main__":
    with multiprocessing.Pool(2) as pool:
        pool.map(arithmetic, [SECONDS, SECONDS], chunksize=1)
