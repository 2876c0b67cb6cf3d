"""Pure-Python sums in a multiprocessing.pool.ThreadPool(2): one thread computes at a time
under the GIL, so `inspector try` swaps it for multiprocessing's Pool (tests/test_try.py)."""

from multiprocessing.pool import ThreadPool

CHUNKS = 24
CHUNK = 400_000


def sum_squares(start: int) -> int:
    return sum(i * i for i in range(start, start + CHUNK))


if __name__ == "__main__":
    with ThreadPool(2) as pool:
        total = sum(pool.map(sum_squares, [k * CHUNK for k in range(CHUNKS)], chunksize=1))
    print(f"sum of squares below {CHUNKS * CHUNK}: {total}")
