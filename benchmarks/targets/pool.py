"""A multiprocessing pool of 2 workers sharing pure-Python work (both cores busy)."""

from __future__ import annotations

import argparse
import multiprocessing

from _report import SelfTimer, burn

CHUNKS_PER_WORKER = 8  # several chunks each, so the workers stay busy until near the end


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--work", type=int, default=1000, help="units of ~1000 loop iterations")
    ap.add_argument("--report")
    args = ap.parse_args()
    timer = SelfTimer()
    chunks = args.processes * CHUNKS_PER_WORKER
    with multiprocessing.Pool(args.processes) as pool:
        pool.map(burn, [max(1, args.work // chunks)] * chunks, chunksize=1)
    timer.write(args.report, processes=args.processes)


if __name__ == "__main__":
    main()
