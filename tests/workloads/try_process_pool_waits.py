"""A ProcessPoolExecutor(4) whose tasks only wait (a sleep each): the processes cost their
start and their memory and buy nothing, so `inspector try --to threading` swaps them for
threads (tests/test_try.py)."""

import time
from concurrent.futures import ProcessPoolExecutor

TASKS = 64
WAIT_S = 0.06


def wait(k: int) -> int:
    time.sleep(WAIT_S)
    return k * k


if __name__ == "__main__":
    with ProcessPoolExecutor(4) as pool:
        total = sum(pool.map(wait, range(TASKS)))
    print(f"{TASKS} waits of {WAIT_S} s: {total}")
