"""A LocalCluster(processes=True, n_workers=2, threads_per_worker=2) recorded every way
inspector.record.dask records one, each worker given 2 tasks at once, pinned to it:

- brought back and merged by record_cluster: a pure-Python map (each worker's 2 threads share
  one GIL) into OUT/python.sqlite, then a NumPy map (ufuncs release the GIL) into
  OUT/numpy.sqlite, tasks of SECONDS: their verdicts are judged;
- kept on the workers (keep_on_workers=True) as "python" and "numpy" in
  OUT/workers/NAME/worker-N.sqlite, the same maps with tasks of SHORT seconds: their verdicts
  are compared with their merged file's, not judged;
- from outside, by `inspector record --dask SCHEDULER --duration SHORT`, into OUT/cli.sqlite
  and kept on the workers as "cli" (its stderr in OUT/workers/record-cli.log), the pure-Python
  map running all through each.

Then it prints `READY SCHEDULER` and keeps the cluster up for `inspector summary --dask` until
its stdin closes; a line `version V` sets inspector.__version__ to V on every worker (a worker
of another version), answered `OK`.

    python dask_cluster.py OUT SECONDS SHORT
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
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


def recorded(workers: set[int]) -> set[int]:
    """Those of the worker pids that an `inspector record --pid PID -o PATH` records now:
    it writes PATH.partial from its start until its file is finished."""
    found = set()
    for proc in psutil.process_iter(["cmdline"]):
        argv = proc.info["cmdline"] or []
        if "inspector" in argv and "--pid" in argv[:-1] and "-o" in argv[:-1]:
            pid = argv[argv.index("--pid") + 1]
            if (pid.isdigit() and int(pid) in workers
                    and os.path.exists(argv[argv.index("-o") + 1] + ".partial")):
                found.add(int(pid))
    return found


def recorded_from_outside(client: Client, scheduler: str, seconds: float, *args: str,
                          fn=pure_python, stderr=None) -> None:
    """`inspector record -q --dask SCHEDULER --duration SECONDS ARGS...`, the workers running
    fn all through its recording: from when every worker's recorder has started its file to
    when they have finished theirs, not while `record --dask` starts (its imports and
    connection take seconds) nor while it collects and merges."""
    workers = set(client.run(os.getpid).values())
    recorder = subprocess.Popen([sys.executable, "-m", "inspector", "record", "-q", "--dask",
                                 scheduler, "--duration", str(seconds), *args], stderr=stderr)
    while recorder.poll() is None and recorded(workers) != workers:
        time.sleep(0.05)
    while recorder.poll() is None and recorded(workers):
        on_every_worker(client, fn, 0.5)
    if recorder.wait(120) != 0:
        sys.exit(f"inspector record --dask exited with {recorder.returncode}")


def set_version(version: str) -> str:
    import inspector

    inspector.__version__ = version
    return version


def main() -> None:
    out, seconds, short = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    worker_dir = out / "workers"
    worker_dir.mkdir()
    with LocalCluster(processes=True, n_workers=2, threads_per_worker=2,
                      dashboard_address=None, silence_logs=40) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(2)
        scheduler = cluster.scheduler_address
        for name, fn in (("python", pure_python), ("numpy", with_numpy)):
            with record_cluster(client, out / f"{name}.sqlite"):
                on_every_worker(client, fn, seconds)
        for name, fn in (("python", pure_python), ("numpy", with_numpy)):
            with record_cluster(client, name, keep_on_workers=True, worker_dir=str(worker_dir)):
                on_every_worker(client, fn, short)
        recorded_from_outside(client, scheduler, short, "-o", str(out / "cli.sqlite"))
        with open(worker_dir / "record-cli.log", "w") as log:
            recorded_from_outside(client, scheduler, short, "--keep-on-workers",
                                  "--worker-dir", str(worker_dir), "-o", "cli", stderr=log)
        print("READY", scheduler, flush=True)
        for line in sys.stdin:
            words = line.split()
            if words[:1] == ["version"]:
                client.run(set_version, words[1])
                print("OK", flush=True)


if __name__ == "__main__":
    main()
