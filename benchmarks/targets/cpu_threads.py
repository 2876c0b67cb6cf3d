"""N threads of pure-Python arithmetic sharing a fixed amount of work (GIL-bound), with
optionally W more threads waiting in `Event.wait()` the whole time (the costliest shape for a
stack sampler that reads idle threads too).

The total work is the same whatever N, so the plain wall time hardly depends on N.
"""

from __future__ import annotations

import argparse
import threading

from _report import SelfTimer, burn


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--waiters", type=int, default=0, help="threads in Event.wait() meanwhile")
    ap.add_argument("--work", type=int, default=1000, help="units of ~1000 loop iterations")
    ap.add_argument("--report")
    args = ap.parse_args()
    timer = SelfTimer()
    done = threading.Event()
    waiters = [threading.Thread(target=done.wait, name=f"waiter-{i}")
               for i in range(args.waiters)]
    for t in waiters:
        t.start()
    share = max(1, args.work // args.threads)
    threads = [threading.Thread(target=burn, args=(share,), name=f"worker-{i}")
               for i in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    for t in waiters:
        t.join()
    timer.write(args.report, threads=args.threads, waiters=args.waiters)


if __name__ == "__main__":
    main()
