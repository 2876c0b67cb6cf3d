"""A ThreadPoolExecutor(8) whose 8 workers all started (8 tasks meet at a barrier, so each
needs its own worker) and are now parked on the pool's queue, while the main thread computes
pure Python. The parked workers wait for work, not for the GIL."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

SECONDS = 3.0
WORKERS = 8

pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="pool")
barrier = threading.Barrier(WORKERS)
for future in [pool.submit(barrier.wait) for _ in range(WORKERS)]:
    future.result()

end = time.monotonic() + SECONDS
total = 0
while time.monotonic() < end:
    for i in range(5000):
        total += i * i % 7

pool.shutdown()
