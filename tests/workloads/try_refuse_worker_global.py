"""Process-pool workers that keep a count in a module global, each its own: threads would
share one, so swapped to threads `inspector try` must refuse (tests/test_try.py)."""

from concurrent.futures import ProcessPoolExecutor

calls = 0


def tally(k: int) -> int:
    global calls
    calls += 1
    return k


if __name__ == "__main__":
    with ProcessPoolExecutor(2) as pool:
        print(sum(pool.map(tally, range(100))))
