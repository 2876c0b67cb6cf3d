"""Two threads hashing a 32 MiB buffer over and over: hashlib releases the GIL for large
buffers, so both threads run at once on two cores."""

import hashlib
import threading
import time

SECONDS = 2.5
BUFFER = bytes(32 << 20)


def hash_buffers() -> None:
    end = time.monotonic() + SECONDS
    while time.monotonic() < end:
        hashlib.sha256(BUFFER).digest()


threads = [threading.Thread(target=hash_buffers, name=f"hash-{i}") for i in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
