"""An asyncio program that hands CPU-bound work to a fork-context `ProcessPoolExecutor`
through `loop.run_in_executor` (2 workers, 4 jobs of 0.7 s: ~1.7 s). The workers inherit the
loop's frames but run no loop. `--block` adds a 0.4 s `time.sleep` on the parent's loop (a real
block); `--loop-in-worker` runs each job under `asyncio.run` inside the worker (a real loop)."""

import asyncio
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor

WORKERS = 2
JOBS = 4
JOB_S = 0.7
PARENT_BLOCK_S = 0.4


def crunch(seconds: float) -> int:
    end = time.monotonic() + seconds
    total = 0
    while time.monotonic() < end:
        for i in range(2000):
            total += i * i % 7
    return total


async def crunch_in_a_loop(seconds: float) -> int:
    # Computes without yielding: a blocked loop of the worker's own.
    return crunch(seconds)


def crunch_under_asyncio(seconds: float) -> int:
    return asyncio.run(crunch_in_a_loop(seconds))


async def main() -> None:
    job = crunch_under_asyncio if "--loop-in-worker" in sys.argv else crunch
    loop = asyncio.get_running_loop()
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=WORKERS, mp_context=ctx) as pool:
        futures = [loop.run_in_executor(pool, job, JOB_S) for _ in range(JOBS)]
        if "--block" in sys.argv:
            await asyncio.sleep(0.1)
            time.sleep(PARENT_BLOCK_S)  # blocks the parent's loop
        results = await asyncio.gather(*futures)
    assert len(results) == JOBS, results


asyncio.run(main())
