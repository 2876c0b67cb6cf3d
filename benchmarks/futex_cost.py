"""What judging futex waits costs: per thread sample, and per read of a process's maps.

`python benchmarks/futex_cost.py [--rounds N]` starts tests/workloads/waits_futex.py (14
threads, 4 of them busy) and a process of 200 threads parked in event.wait(), and prints the
median over N rounds (default 7) of:
- parse + judge: parse_futex_wait and judge() on a syscall line already read (what the sampler
  adds per waiting thread, since it reads the syscall file anyway);
- pread + parse + judge: the same with the pread of the kept-open syscall file;
- read_maps: open/read/parse of /proc/PID/maps (once per process, again only on a new mapping);
- usable_cores (inspector/record/cores.py): affinity and cgroup quota, once per process.
Used by inspector/record/futex.py; CPU time (thread_time), so a busy neighbour matters little.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from inspector.record.cores import usable_cores
from inspector.record.futex import AddressClassifier, judge, parse_futex_wait, read_maps
from inspector.record.procfs import ProcFile

ROOT = Path(__file__).resolve().parent.parent
WAITS = ROOT / "tests" / "workloads" / "waits_futex.py"
PARKED = """
import sys, threading
event = threading.Event()
for _ in range(200):
    threading.Thread(target=event.wait, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


def _per_call_us(fn, calls: int) -> float:
    t0 = time.thread_time()
    for _ in range(calls):
        fn()
    return (time.thread_time() - t0) / calls * 1e6


def _thread_files(pid: int) -> list[ProcFile]:
    tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    return [ProcFile(f"/proc/{pid}/task/{t}/syscall") for t in tids]


def measure(pid: int, rounds: int) -> dict[str, float]:
    files = _thread_files(pid)
    classifier = AddressClassifier(pid)
    texts = [f.read() for f in files]
    n = len(files)

    def parse_and_judge() -> None:
        for i, text in enumerate(texts):
            wait = parse_futex_wait(text)
            if wait is not None:
                judge(i, wait, classifier)

    def pread_parse_judge() -> None:
        for i, f in enumerate(files):
            wait = parse_futex_wait(f.read())
            if wait is not None:
                judge(i, wait, classifier)

    def maps() -> None:
        read_maps(pid)

    out = {
        "threads": float(n),
        "futex_waits": float(sum(parse_futex_wait(t) is not None for t in texts)),
        "parse_judge_us_per_thread": statistics.median(
            _per_call_us(parse_and_judge, 200) / n for _ in range(rounds)),
        "pread_parse_judge_us_per_thread": statistics.median(
            _per_call_us(pread_parse_judge, 50) / n for _ in range(rounds)),
        "read_maps_ms": statistics.median(
            _per_call_us(maps, 20) / 1000 for _ in range(rounds)),
        "usable_cores_ms": statistics.median(
            _per_call_us(lambda: usable_cores(pid), 20) / 1000 for _ in range(rounds)),
        "maps_lines": float(len(Path(f"/proc/{pid}/maps").read_text().splitlines())),
        "maps_reads_while_judging": float(classifier.maps_reads),
    }
    for f in files:
        f.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    results = {}
    for name, argv in (("waits_futex.py", [sys.executable, str(WAITS), "120"]),
                       ("200 parked threads", [sys.executable, "-c", PARKED])):
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            proc.stdout.readline()
            time.sleep(0.5)
            results[name] = measure(proc.pid, args.rounds)
        finally:
            proc.kill()
            proc.wait()
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(f"{'target':26} {'threads':>7} {'futex':>5} {'parse+judge us':>14} "
          f"{'pread+parse+judge us':>20} {'maps lines':>10} {'read_maps ms':>12} "
          f"{'usable_cores ms':>15}")
    for name, r in results.items():
        print(f"{name:26} {r['threads']:7.0f} {r['futex_waits']:5.0f} "
              f"{r['parse_judge_us_per_thread']:14.2f} {r['pread_parse_judge_us_per_thread']:20.2f}"
              f" {r['maps_lines']:10.0f} {r['read_maps_ms']:12.3f} {r['usable_cores_ms']:15.3f}")
    print("us: CPU per thread per sample; ms: CPU per call (medians of rounds)")


if __name__ == "__main__":
    main()
