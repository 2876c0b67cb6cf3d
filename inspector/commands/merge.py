"""`inspector merge A.sqlite B.sqlite ... -o cluster.sqlite [--offset FILE=SECONDS]`:
recordings from many hosts (or workers) in one, on one clock (`summary` of the merged file
gives a verdict per worker and the cluster's)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from inspector.errors import UsageError


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
    from inspector.text.terminal import clean

    if len(args.recordings) < 2:
        raise UsageError("merge: give at least two recordings")
    offsets = parse_offsets(args.offset, args.recordings)
    sources = [Source(Path(r), clock_offset_s=offsets.get(r, 0.0),
                      clock_uncertainty_s=None) for r in args.recordings]
    with Progress("merge") as progress:
        def taking(index: int, path: Path) -> None:
            progress.step(f"recording {index + 1} of {len(sources)}: {path.name}")

        result = merge(sources, Path(args.output), on_source=taking)
    print(clean(f"inspector: merged {result.sources} recordings from {len(result.hosts)} host(s)"
                f" ({', '.join(result.hosts)}) into {result.path} ({result.processes}"
                " processes)"), file=sys.stderr)
    return 0
