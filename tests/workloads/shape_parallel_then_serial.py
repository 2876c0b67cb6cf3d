"""Two phases: 0.8 s of two threads hashing large buffers (hashlib releases the GIL, so they
run at once), then 3.2 s of one thread of pure Python. The serial phase costs the most."""

import hashlib
import threading
import time

PARALLEL_S = 0.8
SERIAL_S = 3.2
BUFFER = bytes(16 << 20)


def hash_buffers() -> None:
    end = time.monotonic() + PARALLEL_S
    while time.monotonic() < end:
        hashlib.sha256(BUFFER).digest()


def arithmetic() -> None:
    end = time.monotonic() + SERIAL_S
    total = 0
    while time.monotonic() < end:
        for i in range(5000):
            total += i * i % 7


hashers = [threading.Thread(target=hash_buffers, name=f"hash-{i}") for i in range(2)]
for t in hashers:
    t.start()
for t in hashers:
    t.join()
serial = threading.Thread(target=arithmetic, name="serial")
serial.start()
serial.join()
