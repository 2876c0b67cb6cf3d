"""A lambda handed to a ThreadPoolExecutor: it cannot be pickled, so swapped to processes
`inspector try` must refuse before any task runs (tests/test_try.py)."""

from concurrent.futures import ThreadPoolExecutor

if __name__ == "__main__":
    with ThreadPoolExecutor(2) as pool:
        print(sum(pool.map(lambda k: k * k, range(100))))
