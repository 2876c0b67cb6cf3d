"""The same pure-Python arithmetic in a 2-process pool: each worker has its own GIL."""

import multiprocessing

from busy import arithmetic

SECONDS = 2.5


if __name__ == "__main__":
    with multiprocessing.Pool(2) as pool:
        pool.map(arithmetic, [SECONDS, SECONDS], chunksize=1)
