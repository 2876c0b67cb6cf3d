"""Two threads compressing with zlib, which releases the GIL: they can run at once. Recorded
beside two CPU hogs (test_principles), they get about one core between them."""

import os
import threading
import zlib

DATA = os.urandom(1 << 20) * 3


def compress() -> None:
    for _ in range(5):
        zlib.compress(DATA, 6)


threads = [threading.Thread(target=compress) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
