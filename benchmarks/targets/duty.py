"""Threads that each burn a set share of one core: busy for duty x 10 ms, asleep for the rest.

The busy part hashes a buffer (hashlib releases the GIL), so the threads do not take turns
on the GIL and each can reach its duty. Each thread reports its OS thread id and the CPU
time it really used (time.thread_time), the truth a recorder is compared with.
"""

from __future__ import annotations

import argparse
import hashlib
import threading
import time

from _report import SelfTimer

SLICE_S = 0.010  # one busy+sleep period
BUFFER = b"\x01" * 16384  # ~40 us of sha256: fine-grained enough to stop on time


def burn(duty: float, seconds: float, out: dict) -> None:
    out["tid"] = threading.get_native_id()
    cpu0, t0 = time.thread_time(), time.perf_counter()
    end = t0 + seconds
    slice_start = t0
    while slice_start < end:
        busy_until = slice_start + duty * SLICE_S
        h = hashlib.sha256()
        while time.perf_counter() < busy_until:
            h.update(BUFFER)
        slice_start += SLICE_S
        pause = slice_start - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    wall = time.perf_counter() - t0
    out["cpu_s"] = time.thread_time() - cpu0
    out["wall_s"] = wall
    out["cpu_percent"] = out["cpu_s"] / wall * 100


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duties", default="25,50,75", help="percent of a core, one thread each")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--report")
    args = ap.parse_args()
    timer = SelfTimer()
    duties = [int(d) for d in args.duties.split(",")]
    results: list[dict] = [{"duty_percent": d} for d in duties]
    threads = [threading.Thread(target=burn, args=(d / 100, args.seconds, r), name=f"duty{d}")
               for d, r in zip(duties, results)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    timer.write(args.report, threads=results)


if __name__ == "__main__":
    main()
