"""A program already split over a 2-process pool, whose longest task is handed out last: the
pool's two workers compute side by side, then one computes alone for 0.9 s while
the other core idles (a straggler)."""

import multiprocessing

from busy import arithmetic

SHORT_S = 0.3
LONG_S = 0.9


if __name__ == "__main__":
    tasks = [SHORT_S] * 6 + [LONG_S]  # the longest last: nothing left to share its time with
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(arithmetic, tasks, chunksize=1)
