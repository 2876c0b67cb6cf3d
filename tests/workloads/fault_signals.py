"""Counts the SIGINTs (as KeyboardInterrupt) and SIGTERMs it receives and writes the counts.

Usage: fault_signals.py COUNT_FILE READY_FILE. Writes READY_FILE once its handlers are in
place; after the first signal it waits QUIET_S more (a duplicate would land then), writes
`{"SIGINT": n, "SIGTERM": m}` to COUNT_FILE and exits 0.
"""

from __future__ import annotations

import json
import signal
import sys
import time

QUIET_S = 0.7  # a forwarded duplicate arrives within milliseconds; this leaves a wide margin
GIVE_UP_S = 30.0  # never outlive a test that failed to send anything

counts = {"SIGINT": 0, "SIGTERM": 0}


def on_term(signum: int, frame: object) -> None:
    counts["SIGTERM"] += 1


def busy_waiting_for_signals() -> None:
    deadline = time.monotonic() + GIVE_UP_S
    first_at: float | None = None
    while time.monotonic() < deadline:
        try:
            sum(range(500))
            time.sleep(0.005)
            if first_at is None and (counts["SIGINT"] or counts["SIGTERM"]):
                first_at = time.monotonic()
            if first_at is not None and time.monotonic() - first_at > QUIET_S:
                return
        except KeyboardInterrupt:
            counts["SIGINT"] += 1


def main() -> None:
    count_file, ready_file = sys.argv[1], sys.argv[2]
    signal.signal(signal.SIGTERM, on_term)
    with open(ready_file, "w") as f:
        f.write("ready")
    busy_waiting_for_signals()
    with open(count_file, "w") as f:
        json.dump(counts, f)


if __name__ == "__main__":
    main()
