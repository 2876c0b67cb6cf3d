"""A LocalCluster(processes=True, n_workers=1) recorded twice, each while a task runs: by
`record_cluster` in this script (whose own command line carries a secret: the merged file
stores it), and by `inspector record --dask` given ARGS... (its options go to the worker's
recorder).

Usage: dask_options.py OUT_FOLDER SECONDS CARRIED [ARGS...]: CARRIED is only carried (on the
command line record_cluster stores); writes OUT/client.sqlite and OUT/cli.sqlite.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

from dask_cluster import recorded
from distributed import Client, LocalCluster

from inspector.record.dask import record_cluster


def spin(seconds: float) -> int:
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += sum(range(1000))
    return n


def main() -> None:
    out, seconds, args = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[4:]
    with LocalCluster(processes=True, n_workers=1, threads_per_worker=1,
                      dashboard_address=None, silence_logs=40) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(1)
        with record_cluster(client, out / "client.sqlite"):
            client.submit(spin, seconds, pure=False).result()
        workers = set(client.run(os.getpid).values())
        recorder = subprocess.Popen([sys.executable, "-m", "inspector", "record", "-q",
                                     "--dask", cluster.scheduler_address, "--duration",
                                     str(seconds), "-o", str(out / "cli.sqlite"), *args])
        # work all through the worker's recording (as dask_cluster.py recorded_from_outside)
        while recorder.poll() is None and recorded(workers) != workers:
            time.sleep(0.05)
        while recorder.poll() is None and recorded(workers):
            client.submit(spin, 0.25, pure=False).result()
        if recorder.wait(120) != 0:
            sys.exit(f"inspector record --dask exited with {recorder.returncode}")


if __name__ == "__main__":
    main()
