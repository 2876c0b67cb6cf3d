"""The plain way to watch a process tree: psutil, every interval, on every process in it.

`python psutil_poller.py [--interval S] -- COMMAND...` runs COMMAND and polls, until it
exits, children(recursive=True) + cpu_times + memory_info + threads() per process: the
baseline inspector's /proc sampler is compared with in benchmarks/run.py.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import psutil


def poll_tree(root: psutil.Process) -> int:
    """One round; returns the number of threads seen (so the work cannot be skipped)."""
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    n = 0
    for p in procs:
        try:
            with p.oneshot():
                p.cpu_times()
                p.memory_info()
                n += len(p.threads())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("psutil_poller: give a COMMAND after --", file=sys.stderr)
        return 2
    proc = subprocess.Popen(command)
    root = psutil.Process(proc.pid)
    next_tick = time.monotonic()
    rounds = 0
    while proc.poll() is None:
        poll_tree(root)
        rounds += 1
        next_tick += args.interval
        time.sleep(max(0.0, next_tick - time.monotonic()))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
