"""Two threads hashing a 32 MiB buffer over and over for 1.2 s (12 rounds at the default
interval; a verdict of parallel threads needs 3): hashlib releases the GIL for large
buffers, so both threads run at once on two cores."""

import hashlib
import threading
import time

SECONDS = 1.2
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
