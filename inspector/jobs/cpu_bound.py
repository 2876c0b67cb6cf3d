"""The CPU-bound reference job: the sum of the sums of squares below each number of a list.

Pure Python arithmetic holds the GIL the whole time, so only processes can use a second core;
threads take turns, and asyncio (with no await inside) runs the coroutines one after another.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

DEFAULT_CHUNK = 100_000  # terms per number: ~5 ms of pure Python, far above task overhead


def numbers(size: int, chunk: int = DEFAULT_CHUNK) -> list[int]:
    """The job's input: `size` numbers near `chunk` (distinct, so each task is its own)."""
    return [chunk + i for i in range(size)]


def sum_of_squares(n: int) -> int:
    """0² + 1² + ... + (n-1)², the slow way on purpose: a pure-Python loop."""
    total = 0
    for i in range(n):
        total += i * i
    return total


def expected(size: int, chunk: int = DEFAULT_CHUNK) -> int:
    """The answer by the closed form (n-1)n(2n-1)/6, to check every variant against."""
    return sum((n - 1) * n * (2 * n - 1) // 6 for n in numbers(size, chunk))


def run_sequential(values: list[int], workers: int) -> int:
    return sum(map(sum_of_squares, values))


def run_threading(values: list[int], workers: int) -> int:
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cpu") as pool:
        return sum(pool.map(sum_of_squares, values))


def run_multiprocessing(values: list[int], workers: int) -> int:
    with multiprocessing.Pool(processes=workers) as pool:
        return sum(pool.map(sum_of_squares, values))


async def _square_sum_task(n: int) -> int:
    # No await inside: the event loop cannot switch until it returns. That is the point.
    return sum_of_squares(n)


async def _gather(values: list[int]) -> int:
    return sum(await asyncio.gather(*(_square_sum_task(n) for n in values)))


def run_asyncio(values: list[int], workers: int) -> int:
    return asyncio.run(_gather(values))


RUNNERS: dict[str, Callable[[list[int], int], int]] = {
    "sequential": run_sequential,
    "threading": run_threading,
    "multiprocessing": run_multiprocessing,
    "asyncio": run_asyncio,
}


def seconds_per_number(chunk: int = DEFAULT_CHUNK, budget_s: float = 0.2) -> float:
    """Times sum_of_squares(chunk) for about `budget_s` on this machine (the best of the
    rounds: the least disturbed by other load)."""
    best = float("inf")
    deadline = time.perf_counter() + budget_s
    while True:
        start = time.perf_counter()
        sum_of_squares(chunk)
        best = min(best, time.perf_counter() - start)
        if time.perf_counter() >= deadline:
            return best
