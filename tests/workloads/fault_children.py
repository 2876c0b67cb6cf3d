"""Starts N short-lived children in quick succession and reports how many it started.

Usage: fault_children.py N REPORT_FILE. Each child is a fork that sleeps CHILD_LIFE_S and
exits with status i % 7; at most BATCH live at once. Writes {"started": N, "pids": [...]}.
"""

from __future__ import annotations

import json
import os
import sys
import time

CHILD_LIFE_S = 0.02  # short enough that a 10 Hz sampler misses most: that is the point
BATCH = 10  # children alive at once; keeps the machine (2 cores) responsive


def main() -> None:
    n, report = int(sys.argv[1]), sys.argv[2]
    pids: list[int] = []
    live: list[int] = []
    for i in range(n):
        pid = os.fork()
        if pid == 0:
            time.sleep(CHILD_LIFE_S)
            os._exit(i % 7)
        pids.append(pid)
        live.append(pid)
        if len(live) >= BATCH:
            os.waitpid(live.pop(0), 0)
    for pid in live:
        os.waitpid(pid, 0)
    with open(report, "w") as f:
        json.dump({"started": len(pids), "pids": pids}, f)


if __name__ == "__main__":
    main()
