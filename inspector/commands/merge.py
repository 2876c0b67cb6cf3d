"""`inspector merge A.sqlite B.sqlite ... -o cluster.sqlite [--offset FILE=SECONDS]`:
recordings from many hosts (or workers) in one, on one clock; and the cluster's summary
(hosts -> workers -> processes -> threads, a verdict per worker) that `summary` prints for
a merged recording."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from inspector.errors import UsageError

if TYPE_CHECKING:
    from inspector.analyze.cluster import ClusterDiagnosis
    from inspector.recording import Recording


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "merge", help="merge recordings from many hosts or workers into one timeline",
        description="Merge recordings made on several hosts (or of several workers) into "
                    "one: each process keeps its host, proc_ids are renumbered, and all "
                    "times are put on one clock: each recording's wall clock (its start "
                    "time) corrected by --offset, the amount its host's clock was ahead of "
                    "the reference clock (`inspector record --dask` measures it itself).")
    p.add_argument("recordings", nargs="+", metavar="RECORDING", help="recordings to merge")
    p.add_argument("-o", "--output", metavar="PATH", required=True,
                   help="the merged recording to write")
    p.add_argument("--offset", action="append", default=[], metavar="FILE=SECONDS",
                   help="FILE's clock was SECONDS ahead of the reference (negative: behind); "
                        "repeat for each file; default 0 (wall clocks trusted)")
    p.set_defaults(func=run)


def parse_offsets(items: list[str], recordings: list[str]) -> dict[str, float]:
    offsets: dict[str, float] = {}
    for item in items:
        name, sep, value = item.rpartition("=")
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not sep or not math.isfinite(seconds):
            raise UsageError(f"merge: --offset {item!r}: give FILE=SECONDS")
        if name not in recordings:
            raise UsageError(f"merge: --offset {item!r}: {name} is not one of the recordings")
        offsets[name] = seconds
    return offsets


def run(args: argparse.Namespace) -> int:
    from inspector.progress import Progress
    from inspector.recording.merge import Source, merge

    if len(args.recordings) < 2:
        raise UsageError("merge: give at least two recordings")
    offsets = parse_offsets(args.offset, args.recordings)
    sources = [Source(Path(r), clock_offset_s=offsets.get(r, 0.0),
                      clock_uncertainty_s=None) for r in args.recordings]
    with Progress("merge") as progress:
        def taking(index: int, path: Path) -> None:
            progress.step(f"recording {index + 1} of {len(sources)}: {path.name}")

        result = merge(sources, Path(args.output), on_source=taking)
    print(f"inspector: merged {result.sources} recordings from {len(result.hosts)} host(s) "
          f"({', '.join(result.hosts)}) into {result.path} ({result.processes} processes)",
          file=sys.stderr)
    return 0


def summary(rec: Recording, source: str, as_json: bool) -> int:
    """`inspector summary` of a merged recording."""
    from inspector.analyze.cluster import diagnose_cluster

    cd = diagnose_cluster(rec)
    if as_json:
        json.dump(cd.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write("\n".join(cluster_lines(cd, source)) + "\n")
    return 0


def cluster_lines(cd: ClusterDiagnosis, source: str) -> list[str]:
    """Hosts -> workers (each with its verdict) -> processes -> threads."""
    from inspector.commands.summary import _process_lines, clean, verdict_line

    workers = len(cd.workers)
    lines = [f"inspector summary of {clean(source)}",
             f"cluster: {workers} worker(s) on {len(cd.hosts)} host(s), {cd.duration_s:.1f} s",
             f"clocks: {cd.clock_note}", "",
             f"VERDICT: {clean(cd.sentence)}"]
    lines += [f"  - {clean(e)}" for e in cd.evidence]
    for host in cd.hosts:
        lines += ["", f"HOST {clean(host.host)} ({host.cpu_count} cores, "
                      f"{len(host.workers)} worker(s))"]
        for w in host.workers:
            diag = w.diagnosis
            clock = ("" if w.clock_uncertainty_s is None else
                     f"; clock {w.clock_offset_s * 1e3:+.1f} ms +-"
                     f"{w.clock_uncertainty_s * 1e3:.1f}")
            lines += [f"  WORKER {clean(w.label)}: {clean(w.sentence())}",
                      f"    {verdict_line(diag)}; advice {diag.verdict.advice}{clock}"]
            threads: dict[int, list] = {}
            for t in diag.threads:
                threads.setdefault(t.proc_id, []).append(t)
            for p in diag.processes:
                lines += ["  " + line for line in _process_lines(p, threads.get(p.proc_id, []))]
    return lines
