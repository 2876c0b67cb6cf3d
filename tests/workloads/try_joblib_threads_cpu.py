"""Pure-Python sums in joblib's Parallel(n_jobs=2, prefer="threads"): the GIL keeps them on
one core, so `inspector try` swaps joblib's backend for loky's processes (tests/test_try.py)."""

from joblib import Parallel, delayed

CHUNKS = 24
CHUNK = 400_000


def sum_squares(start: int) -> int:
    return sum(i * i for i in range(start, start + CHUNK))


if __name__ == "__main__":
    parts = Parallel(n_jobs=2, prefer="threads")(
        delayed(sum_squares)(k * CHUNK) for k in range(CHUNKS))
    print(f"sum of squares below {CHUNKS * CHUNK}: {sum(parts)}")
