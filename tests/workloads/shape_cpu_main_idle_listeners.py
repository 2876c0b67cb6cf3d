"""A CPU-bound main thread (pure-Python arithmetic) beside three idle listeners: a metrics
HTTP server on 127.0.0.1 that nobody calls, and two subscribers blocked in `recv` on
socketpairs nobody writes to. Only the main thread ever works."""

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECONDS = 1.2

server = HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True).start()

pairs = [socket.socketpair() for _ in range(2)]  # kept referenced: the peers never write
for i, (reader, _writer) in enumerate(pairs):
    threading.Thread(target=reader.recv, args=(1,), name=f"subscriber-{i}", daemon=True).start()

end = time.monotonic() + SECONDS
total = 0
while time.monotonic() < end:
    for i in range(5000):
        total += i * i % 7
