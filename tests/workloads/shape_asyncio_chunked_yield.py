"""A coroutine that computes for 1.5 s in ~5 ms chunks, yielding to the loop between them
(`await asyncio.sleep(0)`), beside a ticker that measures the loop's worst lag: a few ms. The
loop is busy, never blocked. The worst lag goes to stderr."""

import asyncio
import sys
import time

SECONDS = 1.5
CHUNK_S = 0.005
TICK_S = 0.01


async def chunked_compute() -> None:
    end = time.monotonic() + SECONDS
    total = 0
    while time.monotonic() < end:
        chunk_end = time.monotonic() + CHUNK_S
        while time.monotonic() < chunk_end:
            for i in range(200):
                total += i * i % 7
        await asyncio.sleep(0)


async def ticker(done: asyncio.Event) -> float:
    worst_lag_s = 0.0
    while not done.is_set():
        before = time.monotonic()
        await asyncio.sleep(TICK_S)
        worst_lag_s = max(worst_lag_s, time.monotonic() - before - TICK_S)
    return worst_lag_s


async def main() -> None:
    done = asyncio.Event()
    tick = asyncio.create_task(ticker(done))
    await chunked_compute()
    done.set()
    print(f"worst loop lag: {await tick * 1000:.1f} ms", file=sys.stderr)


asyncio.run(main())
