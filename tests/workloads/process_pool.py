"""The same pure-Python arithmetic in a 2-process pool: each worker has its own GIL, for
SECONDS (argv[1], default 2.5)."""

import multiprocessing
import sys

from busy import arithmetic

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 2.5


if __name__ == "__main__":
    with multiprocessing.Pool(2) as pool:
        pool.map(arithmetic, [SECONDS, SECONDS], chunksize=1)
