"""The classic CPU script in a ThreadPoolExecutor(5): the same sum of squares over 16 chunks;
the GIL lets one worker compute at a time."""

from concurrent.futures import ThreadPoolExecutor

CHUNKS = 16
CHUNK = 1_000_000


def sum_squares(start: int) -> int:
    return sum(i * i for i in range(start, start + CHUNK))


with ThreadPoolExecutor(5, thread_name_prefix="squares") as pool:
    total = sum(pool.map(sum_squares, [k * CHUNK for k in range(CHUNKS)]))
