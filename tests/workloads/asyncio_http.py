"""asyncio with many connections at once (200, in 2 waves) to a slow HTTP server on
loopback (1 s per answer, served by a child process): one event loop thread multiplexes all
the waits."""

import asyncio

import slow_server

CONNECTIONS = 200
WAVES = 2
host, port, server = slow_server.start_in_child(delay_s=1.0)


async def fetch() -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return data


async def main() -> None:
    for _ in range(WAVES):
        answers = await asyncio.gather(*(fetch() for _ in range(CONNECTIONS)))
        assert all(a.startswith(b"HTTP/1.0 200") for a in answers)


asyncio.run(main())
server.stdin.close()  # type: ignore[union-attr]
server.wait()
