"""10 threads fetching, one request after another, from a slow HTTP server on loopback
(0.2 s per answer): the threads spend their time waiting on sockets."""

import http.client
import threading
import time

import slow_server

SECONDS = 2.5
host, port = slow_server.start(delay_s=0.2)


def fetch_loop() -> None:
    end = time.monotonic() + SECONDS
    while time.monotonic() < end:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        conn.request("GET", "/")
        conn.getresponse().read()
        conn.close()


threads = [threading.Thread(target=fetch_loop, name=f"fetch-{i}") for i in range(10)]
for t in threads:
    t.start()
for t in threads:
    t.join()
