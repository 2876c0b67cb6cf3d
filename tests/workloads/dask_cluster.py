"""A LocalCluster(processes=True, n_workers=2, threads_per_worker=2) recorded through
inspector.record.dask twice: a pure-Python map (each worker's 2 threads share one GIL) into
OUT/python.sqlite, then a NumPy map (ufuncs release the GIL) into OUT/numpy.sqlite. Each
worker gets 2 tasks of seconds each (default 3), pinned to it. Then the pure-Python map once
more, recorded from outside by `inspector record --dask SCHEDULER` into OUT/cli.sqlite."""

import subprocess
import sys
import time
from pathlib import Path

from distributed import Client, LocalCluster

from inspector.record.dask import record_cluster


def pure_python(seconds: float) -> int:
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        for i in range(10_000):
            n += i * i % 7
    return n


def with_numpy(seconds: float) -> float:
    import numpy as np

    a = np.random.default_rng(0).random(2_000_000)
    b = np.empty_like(a)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        np.sin(a, out=b)  # a ufunc loop over a large array runs without the GIL
        np.sqrt(b * b, out=b)
    return float(b[0])


def on_every_worker(client: Client, fn, seconds: float) -> None:
    futures = []
    for address in client.scheduler_info()["workers"]:
        futures += client.map(fn, [seconds, seconds], pure=False, workers=[address],
                              allow_other_workers=False)
    client.gather(futures)


def main() -> None:
    out = Path(sys.argv[1])
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    with LocalCluster(processes=True, n_workers=2, threads_per_worker=2,
                      dashboard_address=None, silence_logs=40) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(2)
        with record_cluster(client, out / "python.sqlite"):
            on_every_worker(client, pure_python, seconds)
        with record_cluster(client, out / "numpy.sqlite"):
            on_every_worker(client, with_numpy, seconds)
        recorder = subprocess.Popen([sys.executable, "-m", "inspector", "record", "-q",
                                     "--dask", cluster.scheduler_address, "--duration",
                                     str(seconds), "-o", str(out / "cli.sqlite")])
        while recorder.poll() is None:  # work all through the recording, however slow
            on_every_worker(client, pure_python, 1.0)  # its start is
        if recorder.wait(120) != 0:
            sys.exit(f"inspector record --dask exited with {recorder.returncode}")


if __name__ == "__main__":
    main()
