"""PROCESSES (argv[1], default 8) processes of pure-Python arithmetic, each until it has used
CPU_S seconds of CPU: on a machine with fewer cores, they queue for the cores."""

import multiprocessing
import sys
import time

PROCESSES = int(sys.argv[1]) if len(sys.argv) > 1 else 8
CPU_S = 0.25


def arithmetic() -> None:
    total = 0
    while time.process_time() < CPU_S:
        for i in range(5000):
            total += i * i % 7


if __name__ == "__main__":
    procs = [multiprocessing.Process(target=arithmetic, name=f"cpu-{i}")
             for i in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
