"""A LocalCluster(processes=True, n_workers=2, threads_per_worker=2) whose recordings stay on
the workers: a pure-Python map recorded through inspector.record.dask with
keep_on_workers=True as "python", then a NumPy map as "numpy" (WORKER_DIR/NAME/worker-N.sqlite),
each worker given 2 tasks of SECONDS, pinned to it; then the pure-Python map once more, recorded
from outside by `inspector record --dask SCHEDULER --keep-on-workers -o cli` (its stderr in
WORKER_DIR/record-cli.log). Then it prints `READY SCHEDULER` and keeps
the cluster up for `inspector summary --dask` until its stdin closes; a line `version V` sets
inspector.__version__ to V on every worker (a worker of another version), answered `OK`.

    python dask_kept.py WORKER_DIR SECONDS
"""

import subprocess
import sys
from pathlib import Path

import cloudpickle
import dask_cluster
from dask_cluster import on_every_worker, pure_python, with_numpy
from distributed import Client, LocalCluster

from inspector.record.dask import record_cluster

# The workers cannot import this folder's modules: the tasks travel by value.
cloudpickle.register_pickle_by_value(dask_cluster)


def set_version(version: str) -> str:
    import inspector

    inspector.__version__ = version
    return version


def main() -> None:
    worker_dir, seconds = sys.argv[1], float(sys.argv[2])
    with LocalCluster(processes=True, n_workers=2, threads_per_worker=2,
                      dashboard_address=None, silence_logs=40) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(2)
        with record_cluster(client, "python", keep_on_workers=True, worker_dir=worker_dir):
            on_every_worker(client, pure_python, seconds)
        with record_cluster(client, "numpy", keep_on_workers=True, worker_dir=worker_dir):
            on_every_worker(client, with_numpy, seconds)
        with open(Path(worker_dir) / "record-cli.log", "w") as log:
            recorder = subprocess.Popen(
                [sys.executable, "-m", "inspector", "record", "-q", "--dask",
                 cluster.scheduler_address, "--duration", str(seconds), "--keep-on-workers",
                 "--worker-dir", worker_dir, "-o", "cli"], stderr=log)
            while recorder.poll() is None:  # work all through the recording, however slow
                on_every_worker(client, pure_python, 1.0)  # its start is
        if recorder.wait(120) != 0:
            sys.exit(f"inspector record --dask exited with {recorder.returncode}")
        print("READY", cluster.scheduler_address, flush=True)
        for line in sys.stdin:
            words = line.split()
            if words[:1] == ["version"]:
                client.run(set_version, words[1])
                print("OK", flush=True)


if __name__ == "__main__":
    main()
