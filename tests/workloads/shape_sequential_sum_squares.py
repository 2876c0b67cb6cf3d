"""The classic CPU script, sequential: the sum of squares over 16 chunks, one after another
in the main thread."""

CHUNKS = 16
CHUNK = 1_000_000


def sum_squares(start: int) -> int:
    return sum(i * i for i in range(start, start + CHUNK))


total = sum(sum_squares(k * CHUNK) for k in range(CHUNKS))
