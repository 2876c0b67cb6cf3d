"""`inspector compare REC_A REC_B [...] [-o FILE.html] [--json]`: recordings side by side;
recordings of the same command make one row, with the median and the spread of its runs."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from inspector.commands.options import (
    add_dask_source,
    add_io_concurrency,
    analyse_on_workers,
    check_dask_source,
)
from inspector.errors import UsageError
from inspector.report.build import CompareError, write_page

__all__ = ["CompareError", "add_parser", "run"]  # CompareError: the CLI catches it from here


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="put recordings side by side: wall time, speed-up, CPU, threads",
        description="Print a table of the recordings (wall time, speed-up against the first, "
                    "CPU used, processes, peak threads, verdict and advice) and write the "
                    "same comparison as one self-contained HTML page. Recordings of the same "
                    "command are one row: the median of their wall times with its min-max, "
                    "and a speed-up whose range overlaps 1.0 is called no measurable "
                    "difference.")
    p.add_argument("recordings", nargs="+", metavar="RECORDING", help="recordings to compare")
    p.add_argument("-o", "--output", metavar="FILE.html",
                   help="the page to write (default: comparison-TIME.html beside the first "
                        "recording)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead")
    add_io_concurrency(p)
    add_dask_source(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inspector.analyze.comparison import compare, facts, group_runs, machines
    from inspector.recording import load
    from inspector.text.comparison import ComparisonTable, noise_sentences
    from inspector.text.json import compared_data
    from inspector.text.terminal import clean

    if len(args.recordings) < 2:
        raise UsageError("compare: give at least two recordings")
    check_dask_source(args)
    if args.dask is not None:
        return _on_workers(args)
    recordings = [load(path) for path in args.recordings]
    machine = machines(recordings)
    rows = compare(group_runs([facts(rec, io_concurrency=args.io_concurrency,
                                     machine=machine[rec.path]) for rec in recordings]))
    noise = noise_sentences(rows)
    output = Path(args.output) if args.output else _default_output(recordings[0].path)
    write_page(output, "inspector: recordings compared", rows, recordings, lead=tuple(noise))
    if args.json:
        print(json.dumps({"rows": [compared_data(r) for r in rows], "page": str(output),
                          "notes": noise}, indent=2))
    else:
        sys.stdout.write(ComparisonTable().render(rows))
    print(f"inspector: comparison page written to {clean(str(output))}", file=sys.stderr)
    return 0


def _on_workers(args: argparse.Namespace) -> int:
    """`compare --dask SCHEDULER NAME NAME...`: recordings kept on the workers, each judged
    there; the table or JSON only (no page: the samples it draws stayed on the hosts)."""
    from inspector.analyze.comparison import cluster_facts, compare, group_runs
    from inspector.text.comparison import ComparisonTable, noise_sentences
    from inspector.text.json import compared_data
    from inspector.text.terminal import clean

    if args.output:
        raise UsageError("compare: --dask writes no page (the samples stayed on the workers' "
                         "hosts): leave out -o")
    analyses = analyse_on_workers(args, list(args.recordings))
    runs = []
    for a in analyses:
        for error in a.errors:
            print(f"inspector: not judged: {clean(error)}", file=sys.stderr)
        # the run the workers served, else the recorder's command: a row per recording
        command = a.cluster.command or ("inspector", "record", "--dask", args.dask,
                                        "--keep-on-workers", "-o", a.name)
        runs.append(cluster_facts(a.name, a.cluster, a.summaries, command))
    rows = compare(group_runs(runs))
    noise = noise_sentences(rows)
    if args.json:
        print(json.dumps({"rows": [compared_data(r) for r in rows], "page": None,
                          "notes": noise}, indent=2))
    else:
        sys.stdout.write(ComparisonTable().render(rows))
    for a in analyses:
        print(f"inspector: {a.name}: {a.cost_sentence()}", file=sys.stderr)
    return 0


def _default_output(first: Path) -> Path:
    return first.parent / f"comparison-{time.strftime('%Y%m%d-%H%M%S')}.html"
