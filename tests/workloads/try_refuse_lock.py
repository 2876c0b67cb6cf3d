"""Workers that share a threading.Lock handed to them: processes would each get a copy, so
swapped to processes `inspector try` must refuse (tests/test_try.py)."""

import threading
from concurrent.futures import ThreadPoolExecutor

counts = {"done": 0}


def count(lock: threading.Lock, k: int) -> int:
    with lock:
        counts["done"] += 1
    return k


if __name__ == "__main__":
    lock = threading.Lock()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(count, [lock] * 50, range(50)))
    print(counts["done"])
