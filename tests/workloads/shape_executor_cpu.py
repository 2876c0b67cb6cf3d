"""Pure-Python sums handed to an event loop's default executor (threads): CPU work that the
loop only waits for. Threads of Python take turns on the GIL; asyncio adds nothing to it."""

import asyncio


def total(n: int) -> int:
    s = 0
    for i in range(n):
        s += i % 7
    return s


async def main() -> None:
    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(None, total, 1_500_000) for _ in range(8)))


asyncio.run(main())
