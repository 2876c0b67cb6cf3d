"""Makes the kernel give a dead child's pid to a new child at once (a forced pid reuse).

Usage: fault_pid_reuse.py REPORT_FILE. Starts `sleep FIRST_LIFE_S`, reaps it, and in the
same instant sets /proc/sys/kernel/ns_last_pid to pid-1 and starts `sh -c 'sleep ..; true'`,
which so gets the same pid (needs root: CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE). Another
process may grab the pid first: then it tries again. Writes {"forced": bool, "pid": P, ...}.
"""

from __future__ import annotations

import json
import subprocess
import sys

FIRST_LIFE_S = "0.6"  # several 0.1 s ticks: the recorder is sure to know the first process
SECOND_LIFE_S = "0.6"
TRIES = 10
NS_LAST_PID = "/proc/sys/kernel/ns_last_pid"


def main() -> None:
    report: dict[str, object] = {"forced": False}
    for attempt in range(1, TRIES + 1):
        first = subprocess.Popen(["sleep", FIRST_LIFE_S])
        first.wait()
        try:
            with open(NS_LAST_PID, "w") as f:
                f.write(str(first.pid - 1))
        except OSError as e:
            report["why_not"] = f"{NS_LAST_PID}: {e.strerror}"
            break
        second = subprocess.Popen(["sh", "-c", f"sleep {SECOND_LIFE_S}; true"])
        second.wait()
        if second.pid == first.pid:
            report = {"forced": True, "pid": first.pid, "attempts": attempt}
            break
    with open(sys.argv[1], "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main()
