"""A script without `if __name__ == "__main__":` that starts its workers by spawn: swapped to
processes, every worker would import it and run it again, so `inspector try` must refuse
(tests/test_try.py)."""

import multiprocessing
from concurrent.futures import ThreadPoolExecutor


def square(k: int) -> int:
    return k * k


multiprocessing.set_start_method("spawn")
with ThreadPoolExecutor(2) as pool:
    print(sum(pool.map(square, range(100))))
