"""A slow HTTP server on 127.0.0.1 (a free port) for the I/O workloads: every GET is
answered after a fixed delay, by a thread of the workload's own process (`start`) or of a
child process (`start_in_child`)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # a burst of connections must not wait for SYN retransmits
    delay_s = 0.0


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        time.sleep(self.server.delay_s)
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def start(delay_s: float) -> tuple[str, int]:
    """Starts the server in a daemon thread; returns (host, port)."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.delay_s = delay_s
    threading.Thread(target=server.serve_forever, name="slow-server", daemon=True).start()
    host, port = server.server_address[:2]
    return str(host), int(port)


def start_in_child(delay_s: float) -> tuple[str, int, subprocess.Popen]:
    """Starts the server in a child Python process (its threads then take no GIL from the
    workload); returns (host, port, process). The child exits when its stdin closes."""
    proc = subprocess.Popen([sys.executable, __file__, str(delay_s)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    host, port = proc.stdout.readline().split()
    return host, int(port), proc


if __name__ == "__main__":
    host, port = start(float(sys.argv[1]))
    print(host, port, flush=True)
    sys.stdin.read()  # until the parent closes our stdin (or exits)
