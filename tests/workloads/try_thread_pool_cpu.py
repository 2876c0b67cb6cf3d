"""Pure-Python sums in a ThreadPoolExecutor(2): the GIL lets one thread compute at a time,
so `inspector try` swaps it to processes (tests/test_try.py)."""

from concurrent.futures import ThreadPoolExecutor

CHUNKS = 24
CHUNK = 400_000


def sum_squares(start: int) -> int:
    return sum(i * i for i in range(start, start + CHUNK))


if __name__ == "__main__":
    with ThreadPoolExecutor(2) as pool:
        total = sum(pool.map(sum_squares, [k * CHUNK for k in range(CHUNKS)]))
    print(f"sum of squares below {CHUNKS * CHUNK}: {total}")
