"""An asyncio program whose loop gets blocked: one coroutine calls time.sleep, another runs
a pure-Python loop, while a ticker task shows how the loop should idle in its selector."""

import asyncio
import time

BLOCK_S = 0.4


async def ticker() -> None:
    for _ in range(20):
        await asyncio.sleep(0.05)


async def sleepy_handler() -> None:
    await asyncio.sleep(0.3)
    time.sleep(BLOCK_S)  # blocks the loop: should be `await asyncio.sleep(...)`


async def crunching_handler() -> None:
    await asyncio.sleep(0.9)
    end = time.monotonic() + BLOCK_S
    total = 0
    while time.monotonic() < end:  # blocks the loop: CPU work belongs in an executor
        for i in range(2000):
            total += i * i


async def main() -> None:
    await asyncio.gather(ticker(), sleepy_handler(), crunching_handler())
    await asyncio.sleep(0.3)


asyncio.run(main())
