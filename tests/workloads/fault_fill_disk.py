"""Fills the file system holding FOLDER, then keeps computing: a program that filled the disk.

Usage: fault_fill_disk.py FOLDER REPORT_FILE. Waits WARM_UP_S (the recorder commits a few
times), writes FOLDER/filler until ENOSPC, computes AFTER_S more with a few threads, and
writes {"filled_bytes": N} to REPORT_FILE (which must live elsewhere).
"""

from __future__ import annotations

import errno
import json
import sys
import threading
import time

WARM_UP_S = 1.2  # the recorder commits every 0.5 s: some commits land first, even when slow
AFTER_S = 1.2
THREADS = 20  # rows for the recorder to (fail to) write every tick
CHUNK = b"\0" * 65536


def fill(path: str) -> int:
    written = 0
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                written += f.write(CHUNK)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                return written


def compute_after_the_disk_is_full(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sum(range(300))


def main() -> None:
    folder, report = sys.argv[1], sys.argv[2]
    time.sleep(WARM_UP_S)
    filled = fill(f"{folder}/filler")
    threads = [threading.Thread(target=compute_after_the_disk_is_full, args=(AFTER_S,))
               for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(report, "w") as f:
        json.dump({"filled_bytes": filled}, f)


if __name__ == "__main__":
    main()
