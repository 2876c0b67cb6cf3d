"""What recording a cluster costs as it grows: the size of one host's recording (64 threads in
8 processes, /proc every 0.1 s, stacks at 100 Hz: benchmarks/report_scale.py's synthetic
program), and the time and peak memory of `inspector merge` and of the cluster's verdicts
(`inspector summary` of the merged file) for H such hosts; with --dask, the same H hosts'
recordings kept on the workers of a LocalCluster and judged there (`inspector summary --dask`):
the client's time and peak memory, the bytes that came back, the workers' CPU. docs/scale.md
scales them to 100 hosts for an hour.

    python benchmarks/cluster_scale.py                    # 60 s per host; 2, 4 and 8 hosts
    python benchmarks/cluster_scale.py --seconds 30 --hosts 2 4
    python benchmarks/cluster_scale.py --dask --seconds 600 --hosts 2 4 --workers 2
    python benchmarks/cluster_scale.py --reduce 100 --seconds 600   # the client's part alone

--reduce N: one host's recording judged once (a real WorkerSummary, pickled as a worker sends
it), then N copies of it as N hosts combined, worded as text, JSON and a page in a fresh
interpreter: the client's time and memory for N workers, measured rather than extrapolated.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from report_scale import synthetic  # noqa: E402

# Each step runs in a fresh interpreter, so that its peak RSS is the step's alone: read as
# VmHWM, its own address space's, not ru_maxrss, which keeps the forking parent's peak
# across exec (a parent that had judged a 600 s host made its child look 0.4 GB at start).
_HWM = """def hwm_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024
"""
_MERGE = r"""
import json, sys, time
""" + _HWM + r"""from pathlib import Path
from inspector.recording.merge import Source, merge
t0 = time.perf_counter()
merge([Source(Path(p)) for p in sys.argv[2:]], Path(sys.argv[1]))
print(json.dumps({"s": time.perf_counter() - t0,
                  "peak_rss_mb": hwm_mb()}))
"""
_VERDICTS = r"""
import json, sys, time
""" + _HWM + r"""t0 = time.perf_counter()
import inspector
from inspector.analyze.cluster import diagnose_cluster
cd = diagnose_cluster(inspector.load(sys.argv[1]))
print(json.dumps({"s": time.perf_counter() - t0, "workers": len(cd.workers),
                  "peak_rss_mb": hwm_mb()}))
"""


# The client of `summary --dask`, in a fresh interpreter: its peak RSS is the client's alone
# (after importing Dask, pandas and inspector: the baseline, measured too).
_ON_WORKERS = r"""
import json, sys, time
""" + _HWM + r"""t0 = time.perf_counter()
from inspector.record.dask_analysis import analyse_cluster
from inspector.text.json import CLUSTER_JSON
base = hwm_mb()
t1 = time.perf_counter()
(a,) = analyse_cluster(sys.argv[1], [sys.argv[2]], sys.argv[3])
text = CLUSTER_JSON.render(a.cluster)
print(json.dumps({"s": time.perf_counter() - t1, "import_s": t1 - t0, "baseline_rss_mb": base,
                  "peak_rss_mb": hwm_mb(),
                  "workers_judged": len(a.cluster.workers), "hosts": len(a.cluster.hosts),
                  "workers_cpu_s": a.cpu_s, "analysis_wall_s": a.wall_s,
                  "worker_wall_s": [c.wall_s for c in a.costs],
                  "worker_peak_rss_mb": max((c.peak_rss_bytes or 0) / 2**20 for c in a.costs),
                  "reply_bytes": sum(c.reply_bytes for c in a.costs),
                  "recording_bytes": sum(c.recording_bytes for c in a.costs),
                  "json_bytes": len(text), "said": a.cluster.said.kind}))
"""


_REDUCE = r"""
import json, pickle, sys, time
""" + _HWM + r"""from dataclasses import replace
from inspector.analyze.cluster import combine_workers
from inspector.report.page import render_cluster_page
from inspector.text.cluster import ClusterText
from inspector.text.json import CLUSTER_JSON
base = hwm_mb()
blob = open(sys.argv[1], "rb").read()
t0 = time.perf_counter()
summaries = []
for i in range(int(sys.argv[2])):  # each as a worker's reply is unpickled
    s = pickle.loads(blob)
    summaries.append(replace(s, verdict=replace(s.verdict, index=i, host=f"host{i:03d}",
                                                label=str(i))))
t1 = time.perf_counter()
cd = combine_workers(summaries)
t2 = time.perf_counter()
text = ClusterText("reduce").render(cd)
t3 = time.perf_counter()
data = CLUSTER_JSON.render(cd)
t4 = time.perf_counter()
page = render_cluster_page(cd, "reduce")
t5 = time.perf_counter()
print(json.dumps({"unpickle_s": t1 - t0, "combine_s": t2 - t1, "text_s": t3 - t2,
                  "json_s": t4 - t3, "page_s": t5 - t4, "baseline_rss_mb": base,
                  "peak_rss_mb": hwm_mb(),
                  "reply_bytes": len(blob), "text_lines": text.count("\n"),
                  "json_bytes": len(data), "page_bytes": len(page)}))
"""


def measure_reduce(seconds: float, workers: int) -> dict[str, Any]:
    import pickle

    from inspector.record.dask_analysis import judge_kept

    judged = judge_kept(str(synthetic(seconds)), "w")
    assert judged.summary is not None and judged.cost is not None, judged.error
    with tempfile.TemporaryDirectory(prefix="inspector-cluster-reduce-") as tmp:
        blob = Path(tmp) / "summary.pickle"
        blob.write_bytes(pickle.dumps(judged.summary))
        run = _run(_REDUCE, str(blob), str(workers))
    return {"seconds": seconds, "workers": workers, "judge_cpu_s": judged.cost.cpu_s,
            "judge_wall_s": judged.cost.wall_s,
            "judge_peak_rss_mb": (judged.cost.peak_rss_bytes or 0) / 2**20, **run}


def measure_on_workers(seconds: float, hosts: Sequence[int], workers: int) -> dict[str, Any]:
    """H hosts' recordings kept on the workers of a LocalCluster (WORKER_DIR/NAME/worker-hI,
    each with its note, as record_cluster(keep_on_workers=True) leaves them) and judged there
    by `summary --dask`'s client, for each H."""
    from distributed import LocalCluster

    from inspector import __version__
    from inspector.record.dask_kept import KeepOnWorkers, KeptNote, make_run_folder, write_note

    one = synthetic(seconds)
    out: dict[str, Any] = {"seconds": seconds, "workers": workers,
                           "host_file_mb": one.stat().st_size / 2**20, "runs": []}
    with tempfile.TemporaryDirectory(prefix="inspector-cluster-kept-") as tmp, \
            LocalCluster(processes=True, n_workers=workers, threads_per_worker=1,
                         dashboard_address=None, silence_logs=40) as cluster:
        for n in hosts:
            name = f"scale{n}"
            folder = make_run_folder(KeepOnWorkers(name, tmp))
            for i in range(n):
                path = _as_host(one, folder / f"worker-h{i:03d}.sqlite", i)
                write_note(path, KeptNote(f"h{i:03d}", "", 0.0, None, None, __version__))
            run = _run(_ON_WORKERS, cluster.scheduler_address, name, tmp)
            out["runs"].append({"hosts": n, **run})
            shutil.rmtree(folder)
    return out


def _as_host(source: Path, path: Path, index: int) -> Path:
    """A copy of the synthetic recording as if made on host `index`, started a little later."""
    shutil.copyfile(source, path)
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'hostname'",
                   (json.dumps(f"host{index:03d}"),))
        start = json.loads(db.execute(
            "SELECT value FROM meta WHERE key = 'start_time_unix'").fetchone()[0])
        db.execute("UPDATE meta SET value = ? WHERE key = 'start_time_unix'",
                   (json.dumps(start + 0.01 * index),))
    db.close()
    return path


def _run(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(seconds: float, hosts: Sequence[int]) -> dict[str, Any]:
    one = synthetic(seconds)
    out: dict[str, Any] = {"seconds": seconds, "host_file_mb": one.stat().st_size / 2**20,
                           "runs": []}
    with tempfile.TemporaryDirectory(prefix="inspector-cluster-scale-") as tmp:
        folder = Path(tmp)
        copies = [_as_host(one, folder / f"host{i}.sqlite", i) for i in range(max(hosts))]
        for n in hosts:
            merged = folder / f"merged-{n}.sqlite"
            merge = _run(_MERGE, str(merged), *map(str, copies[:n]))
            verdicts = _run(_VERDICTS, str(merged))
            out["runs"].append({"hosts": n, "merge_s": merge["s"],
                                "merge_peak_rss_mb": merge["peak_rss_mb"],
                                "merged_mb": merged.stat().st_size / 2**20,
                                "verdicts_s": verdicts["s"],
                                "verdicts_peak_rss_mb": verdicts["peak_rss_mb"]})
            merged.unlink()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per host (60)")
    parser.add_argument("--hosts", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--dask", action="store_true",
                        help="judge them on the workers of a LocalCluster instead of merging")
    parser.add_argument("--workers", type=int, default=2, help="with --dask (2)")
    parser.add_argument("--reduce", type=int, metavar="N",
                        help="the client's part alone for N workers (see above)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    if args.reduce:
        r = measure_reduce(args.seconds, args.reduce)
        print(f"one host of {r['seconds']:g} s judged here: {r['judge_cpu_s']:.1f} s CPU, "
              f"peak {r['judge_peak_rss_mb']:.0f} MB; its summary {r['reply_bytes'] / 1e3:.0f} KB")
        print(f"{r['workers']} workers combined: unpickle {r['unpickle_s']:.2f} s, combine "
              f"{r['combine_s']:.3f} s, text {r['text_s']:.2f} s, JSON {r['json_s']:.2f} s "
              f"({r['json_bytes'] / 1e6:.1f} MB), page {r['page_s']:.2f} s; peak "
              f"{r['peak_rss_mb']:.0f} MB (baseline {r['baseline_rss_mb']:.0f} MB)")
        print(json.dumps(r))
        return 0
    if args.dask:
        kept = measure_on_workers(args.seconds, args.hosts, args.workers)
        print(f"one host, {kept['seconds']:g} s, 64 threads: {kept['host_file_mb']:.1f} MB; "
              f"judged on {kept['workers']} workers")
        print("hosts  client s  client peak MB (baseline)  back KB  workers CPU s  "
              "worker peak MB")
        for r in kept["runs"]:
            print(f"{r['hosts']:5d}  {r['s']:8.1f}  {r['peak_rss_mb']:8.0f} "
                  f"({r['baseline_rss_mb']:4.0f})         {r['reply_bytes'] / 1e3:7.0f}  "
                  f"{r['workers_cpu_s']:13.1f}  {r['worker_peak_rss_mb']:14.0f}")
        print(f"({time.perf_counter() - t0:.0f} s in all)")
        print(json.dumps(kept))
        return 0
    result = measure(args.seconds, args.hosts)
    print(f"one host, {result['seconds']:g} s, 64 threads: {result['host_file_mb']:.1f} MB")
    print("hosts  merge s  merge peak MB  merged MB  verdicts s  verdicts peak MB")
    for r in result["runs"]:
        print(f"{r['hosts']:5d}  {r['merge_s']:7.1f}  {r['merge_peak_rss_mb']:13.0f}  "
              f"{r['merged_mb']:9.1f}  {r['verdicts_s']:10.1f}  "
              f"{r['verdicts_peak_rss_mb']:16.0f}")
    print(f"({time.perf_counter() - t0:.0f} s in all)")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
