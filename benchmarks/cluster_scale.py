"""What recording a cluster costs as it grows: the size of one host's recording (64 threads in
8 processes, /proc every 0.1 s, stacks at 100 Hz: benchmarks/report_scale.py's synthetic
program), and the time and peak memory of `inspector merge` and of the cluster's verdicts
(`inspector summary` of the merged file) for H such hosts; docs/scale.md scales them to 100
hosts for an hour.

    python benchmarks/cluster_scale.py                    # 60 s per host; 2, 4 and 8 hosts
    python benchmarks/cluster_scale.py --seconds 30 --hosts 2 4
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

# Run in a fresh interpreter, so that its peak RSS is the step's alone.
_MERGE = r"""
import json, resource, sys, time
from pathlib import Path
from inspector.recording.merge import Source, merge
t0 = time.perf_counter()
merge([Source(Path(p)) for p in sys.argv[2:]], Path(sys.argv[1]))
print(json.dumps({"s": time.perf_counter() - t0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
_VERDICTS = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import inspector
from inspector.analyze.cluster import diagnose_cluster
cd = diagnose_cluster(inspector.load(sys.argv[1]))
print(json.dumps({"s": time.perf_counter() - t0, "workers": len(cd.workers),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


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
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
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
