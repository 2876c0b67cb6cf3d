"""P processes with N threads each, all waiting (or, with --wake-every, each waking up that
often to do nothing): what a recorder costs per process and per thread it samples, with the
cores left free for the measurement.
"""

from __future__ import annotations

import argparse
import multiprocessing
import threading
import time

from _report import SelfTimer


def nap(stop: threading.Event, every_s: float) -> None:
    while not stop.is_set():
        time.sleep(every_s)


def hold(threads: int, seconds: float, wake_every_s: float = 0.0) -> None:
    stop = threading.Event()
    target, args = ((nap, (stop, wake_every_s)) if wake_every_s > 0 else (stop.wait, ()))
    extra = [threading.Thread(target=target, args=args, name=f"waiter-{i}")
             for i in range(threads - 1)]
    for t in extra:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in extra:
        t.join()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="per process, main thread included")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--wake-every", type=float, default=0.0, metavar="S",
                    help="the extra threads wake up every S seconds (0: they just wait)")
    ap.add_argument("--report")
    args = ap.parse_args()
    timer = SelfTimer()
    children = [multiprocessing.Process(target=hold,
                                        args=(args.threads, args.seconds, args.wake_every))
                for _ in range(args.processes - 1)]
    for c in children:
        c.start()
    hold(args.threads, args.seconds, args.wake_every)
    for c in children:
        c.join()
    timer.write(args.report, processes=args.processes, threads=args.threads)


if __name__ == "__main__":
    main()
