"""Two Dask workers whose names differ only in characters a file name cannot hold ("w/1" and
"w:1": both clean to "w_1"), recorded through inspector.record.dask while each runs one short
task, into argv[1]. Prints the workers' errors, if any, as JSON on stdout."""

import json
import sys
import time

from distributed import Client, Nanny, Scheduler, SpecCluster

from inspector.record.dask import record_cluster

NAMES = ("w/1", "w:1")


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def main() -> None:
    workers = {name: {"cls": Nanny, "options": {"nthreads": 1}} for name in NAMES}
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": None}}
    with SpecCluster(workers=workers, scheduler=scheduler, silence_logs=40) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(len(NAMES))
        with record_cluster(client, sys.argv[1], stacks=False) as session:
            client.gather([client.submit(nap, 0.2, workers=[address], pure=False)
                           for address in client.scheduler_info()["workers"]])
        print(json.dumps(session.errors))


if __name__ == "__main__":
    main()
