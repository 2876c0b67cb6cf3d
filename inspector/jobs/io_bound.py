"""The I/O-bound reference job: fetch N URLs from a slow HTTP server.

Each request spends almost all its time waiting for the server's answer, so any model that
keeps several requests in flight wins: a thread each (the GIL is released while waiting),
a process each (at the price of starting processes), or one event loop multiplexing
non-blocking sockets.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Callable
from urllib.parse import urlsplit

from inspector.jobs import JobError

# Requests in flight: several times the cores, as I/O pools usually are, and below the 32 at
# which concurrent.futures' default thread pool stops growing.
DEFAULT_WORKERS = 16
TIMEOUT_S = 30.0  # per request: far above any delay the demo asks for, short of hanging forever

# No proxy: http_proxy in the environment must not send loopback requests elsewhere.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def urls(base_url: str, size: int) -> list[str]:
    base = base_url.rstrip("/")
    return [f"{base}/item/{i}" for i in range(size)]


def fetch(url: str) -> int:
    """GET with urllib (blocking); returns the body's length."""
    with _OPENER.open(url, timeout=TIMEOUT_S) as response:
        if response.status != 200:
            raise JobError(f"{url}: HTTP {response.status}")
        return len(response.read())


def run_sequential(targets: list[str], workers: int) -> int:
    return sum(fetch(url) for url in targets)


def run_threading(targets: list[str], workers: int) -> int:
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as pool:
        return sum(pool.map(fetch, targets))


def run_multiprocessing(targets: list[str], workers: int) -> int:
    with multiprocessing.Pool(processes=workers) as pool:
        return sum(pool.map(fetch, targets, chunksize=1))


async def fetch_async(url: str) -> int:
    """GET over a non-blocking socket (asyncio streams), HTTP/1.0 by hand: the server closes
    the connection after the answer, so the body is everything up to EOF."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT_S)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode("ascii"))
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), TIMEOUT_S)
    finally:
        writer.close()
        await writer.wait_closed()
    head, sep, body = raw.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if not sep or len(status) < 2 or status[1] != b"200":
        raise JobError(f"{url}: bad answer {head[:60]!r}")
    return len(body)


async def _fetch_all(targets: list[str], workers: int) -> int:
    # As many requests in flight as the pools have workers: the same concurrency for every
    # variant, so the comparison is between models, not between limits.
    limit = asyncio.Semaphore(workers)

    async def one(url: str) -> int:
        async with limit:
            return await fetch_async(url)

    return sum(await asyncio.gather(*(one(url) for url in targets)))


def run_asyncio(targets: list[str], workers: int) -> int:
    return asyncio.run(_fetch_all(targets, workers))


RUNNERS: dict[str, Callable[[list[str], int], int]] = {
    "sequential": run_sequential,
    "threading": run_threading,
    "multiprocessing": run_multiprocessing,
    "asyncio": run_asyncio,
}

