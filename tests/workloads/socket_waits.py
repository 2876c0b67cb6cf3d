"""4 threads each waiting on a socket that the main thread feeds a byte every 50 ms, for
SECONDS (default 1.5): nearly all their time goes to waiting for input, none to the CPU.
Runs on every Python from 3.9 on."""

import socket
import sys
import threading
import time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 1.5


def wait_for_input(sock: socket.socket) -> None:
    while sock.recv(1) == b".":
        pass


pairs = [socket.socketpair() for _ in range(4)]
threads = [threading.Thread(target=wait_for_input, args=(b,), name=f"waiter-{i}")
           for i, (_, b) in enumerate(pairs)]
for t in threads:
    t.start()
end = time.monotonic() + SECONDS
while time.monotonic() < end:
    for a, _ in pairs:
        a.send(b".")
    time.sleep(0.05)
for a, _ in pairs:
    a.send(b"x")
for t in threads:
    t.join()
