"""Four workers take turns on one threading.Lock that each holds across a 50 ms request to a
loopback server (real socket I/O: a recv the server answers after 50 ms), beside one busy
background thread computing pure Python the whole time. The workers wait on the lock, not
on the GIL."""

import socket
import threading
import time

SECONDS = 1.2
ANSWER_AFTER_S = 0.05

listener = socket.create_server(("127.0.0.1", 0))
address = listener.getsockname()


def serve(conn: socket.socket) -> None:
    while conn.recv(1):
        time.sleep(ANSWER_AFTER_S)
        conn.sendall(b"k")


def accept_forever() -> None:
    n = 0
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), name=f"io-server-{n}", daemon=True).start()
        n += 1


threading.Thread(target=accept_forever, name="io-acceptor", daemon=True).start()

lock = threading.Lock()
end = time.monotonic() + SECONDS


def worker() -> None:
    conn = socket.create_connection(address)
    while time.monotonic() < end:
        with lock:  # held across the request: the others queue on it
            conn.sendall(b"q")
            conn.recv(1)
    conn.close()


def busy() -> None:
    total = 0
    while time.monotonic() < end:
        for i in range(5000):
            total += i * i % 7


threads = [threading.Thread(target=worker, name=f"locker-{i}") for i in range(4)]
threads.append(threading.Thread(target=busy, name="busy"))
for t in threads:
    t.start()
for t in threads:
    t.join()
