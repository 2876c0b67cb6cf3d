"""An asyncio program whose coroutines each call the blocking `urllib.request.urlopen`
against a slow loopback HTTP server (a thread of this process, answering after 150 ms):
6 requests that the loop could have overlapped run one after another."""

import asyncio
import urllib.request

import slow_server

REQUESTS = 6
host, port = slow_server.start(delay_s=0.15)
URL = f"http://{host}:{port}/"


async def fetch_status() -> int:
    with urllib.request.urlopen(URL, timeout=30) as response:  # blocks the loop
        response.read()
        return int(response.status)


async def main() -> None:
    statuses = await asyncio.gather(*(fetch_status() for _ in range(REQUESTS)))
    assert statuses == [200] * REQUESTS, statuses


asyncio.run(main())
