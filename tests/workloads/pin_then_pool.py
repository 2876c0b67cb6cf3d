"""A 2-process pool of arithmetic whose cores are set after the program starts, as a library's
start-up or a pool initializer would: `pin_then_pool.py MODE [SECONDS] [DIR...]`.

MODE: `parent` sleeps PIN_AFTER_S, pins itself to its lowest CPU (os.sched_setaffinity) and
then starts the pool, whose workers, forked after the pin, inherit it; `workers-same` pins each
worker to the lowest CPU in the pool's initializer (the parent stays free); `workers-apart`
pins worker i to the i-th lowest; `none` pins nothing; `cgroups`: worker i computes for
MOVE_AFTER_S, then moves itself into cgroup directory DIR[i] (root, cgroup v1 or v2: writes its
pid to cgroup.procs) and computes on. Each worker computes for SECONDS (default 1.0). Prints
when it pinned or moved, as unix times, for the test to place it.
"""

import multiprocessing
import os
import sys
import time

from busy import arithmetic

PIN_AFTER_S = 0.25
MOVE_AFTER_S = 0.3
MODE = sys.argv[1]
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
DIRS = sys.argv[3:]
CPUS = sorted(os.sched_getaffinity(0))


def work(seconds: float) -> int:
    if MODE != "cgroups":
        return arithmetic(seconds)
    total = arithmetic(MOVE_AFTER_S)
    worker = multiprocessing.current_process()._identity[0] - 1  # 0, 1: the pool's order
    before = time.time()
    with open(os.path.join(DIRS[worker % len(DIRS)], "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))
    print(f"moved between {before:.6f} and {time.time():.6f}", flush=True)
    return total + arithmetic(seconds - MOVE_AFTER_S)


def initializer() -> None:
    worker = multiprocessing.current_process()._identity[0] - 1
    if MODE == "workers-same":
        os.sched_setaffinity(0, {CPUS[0]})
    elif MODE == "workers-apart":
        os.sched_setaffinity(0, {CPUS[worker % len(CPUS)]})


if __name__ == "__main__":
    if MODE == "parent":
        time.sleep(PIN_AFTER_S)
        before = time.time()
        os.sched_setaffinity(0, {CPUS[0]})  # the pool's workers, forked below, inherit it
        print(f"pinned between {before:.6f} and {time.time():.6f}", flush=True)
    with multiprocessing.get_context("fork").Pool(2, initializer=initializer) as pool:
        pool.map(work, [SECONDS, SECONDS], chunksize=1)
