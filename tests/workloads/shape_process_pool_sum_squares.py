"""The classic CPU script in a multiprocessing.Pool() (one worker per core): the same sum of
squares over 16 chunks; each worker has its own GIL."""

import multiprocessing

CHUNKS = 16
CHUNK = 1_000_000


def sum_squares(start: int) -> int:
    return sum(i * i for i in range(start, start + CHUNK))


if __name__ == "__main__":
    with multiprocessing.Pool() as pool:
        total = sum(pool.map(sum_squares, [k * CHUNK for k in range(CHUNKS)], chunksize=1))
