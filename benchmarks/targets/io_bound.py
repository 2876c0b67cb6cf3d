"""An I/O-bound job: client threads making small requests over loopback TCP to a slow server
(handler threads in the same process that take SERVER_LATENCY_S to answer), so every thread
spends most of its time waiting in recv or sleep, like threads fetching from a remote service.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time

from _report import SelfTimer

MESSAGE = b"x" * 64
SERVER_LATENCY_S = 0.0005  # a fast remote service: I/O-bound, yet many round trips a second


def serve_one(conn: socket.socket) -> None:
    with conn:
        while True:
            data = conn.recv(4096)
            if not data:
                return
            time.sleep(SERVER_LATENCY_S)
            conn.sendall(data)


def client(port: int, round_trips: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(round_trips):
            s.sendall(MESSAGE)
            got = 0
            while got < len(MESSAGE):
                got += len(s.recv(4096))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--work", type=int, default=1000, help="round trips, all clients together")
    ap.add_argument("--report")
    args = ap.parse_args()
    timer = SelfTimer()
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    handlers: list[threading.Thread] = []

    def accept() -> None:
        for i in range(args.clients):
            conn, _ = server.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            h = threading.Thread(target=serve_one, args=(conn,), name=f"handler-{i}")
            h.start()
            handlers.append(h)

    acceptor = threading.Thread(target=accept, name="acceptor")
    acceptor.start()
    per_client = max(1, args.work // args.clients)
    clients = [threading.Thread(target=client, args=(port, per_client), name=f"client-{i}")
               for i in range(args.clients)]
    for t in clients:
        t.start()
    for t in clients:
        t.join()
    acceptor.join()
    for h in handlers:
        h.join()
    server.close()
    timer.write(args.report, clients=args.clients)


if __name__ == "__main__":
    main()
