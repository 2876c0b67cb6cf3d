"""Coroutines that pause with time.sleep instead of asyncio.sleep: the loop is blocked the
whole time and its tasks run one after another, a run that looks idle (it sleeps)."""

import asyncio
import time


async def poll(i: int) -> None:
    await asyncio.sleep(0.02)
    time.sleep(0.12)  # should be: await asyncio.sleep(0.12)


async def main() -> None:
    await asyncio.gather(*(poll(i) for i in range(8)))


asyncio.run(main())
