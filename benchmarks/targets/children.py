"""Forks children that live for set times (some shorter than a sampling interval), staggered
so their births fall at every phase of a recorder's sampling ticks, and reports their pids.

A reaper thread waits for each child as soon as it exits, so no child lingers as a zombie
(which a recorder could see long after the child's real end).
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time
import warnings

from _report import SelfTimer

STAGGER_S = 0.023  # between births: not a divisor of a 0.1 s interval


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lifetimes", default="0.01,0.03,0.05,0.1,0.2,0.3,0.5",
                    help="seconds; each child lives one of these")
    ap.add_argument("--count", type=int, default=20, help="children per lifetime")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report")
    args = ap.parse_args()
    timer = SelfTimer()
    lifetimes = [float(x) for x in args.lifetimes.split(",")] * args.count
    random.Random(args.seed).shuffle(lifetimes)
    pending = threading.Semaphore(0)
    born: list[dict] = []
    n_children = len(lifetimes)

    def reap() -> None:
        for _ in range(n_children):
            pending.acquire()
            os.wait()

    reaper = threading.Thread(target=reap, name="reaper")
    reaper.start()
    warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the child only sleeps
    next_birth = time.perf_counter()
    for life in lifetimes:
        pid = os.fork()
        if pid == 0:
            time.sleep(life)
            os._exit(0)
        born.append({"pid": pid, "lifetime_s": life, "born_unix": time.time()})
        pending.release()
        next_birth += STAGGER_S
        pause = next_birth - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    reaper.join()
    timer.write(args.report, children=born)


if __name__ == "__main__":
    main()
