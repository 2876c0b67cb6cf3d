"""A slow local HTTP server for the I/O job: answers every GET after a fixed delay.

The demo runs it in its own process (a thread of `inspector demo`), never inside the recorded
command, so the recording holds the client alone.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self

# The default listen backlog (5) would drop the SYNs of a burst of concurrent connections and
# make the clients wait a second for the retransmission: that would measure the server.
LISTEN_BACKLOG = 256


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG
    delay_s: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # the name http.server looks for
        time.sleep(self.server.delay_s)
        body = f"{self.path}\n".encode("utf-8", "replace")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request on stderr would drown the demo's output


class DelayServer:
    """`with DelayServer(0.1) as server: ... server.url ...` on 127.0.0.1, a free port."""

    def __init__(self, delay_s: float, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.delay_s = delay_s
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="inspector-delay-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def delay_s(self) -> float:
        return self._server.delay_s

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
