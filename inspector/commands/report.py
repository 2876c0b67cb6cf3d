"""`inspector report RECORDING [-o FILE.html] [--open]`: the HTML report of a recording."""

from __future__ import annotations

import argparse
import sys
import webbrowser

from inspector.commands.options import (
    add_dask_source,
    add_io_concurrency,
    add_memory_budget,
    analyse_on_workers,
    check_dask_source,
)
from inspector.report.build import ReportError, build_cluster_report, build_report

__all__ = ["ReportError", "add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="write the HTML report of a recording",
        description="Write one self-contained HTML page (works offline) showing the verdict, "
                    "processes and threads, a timeline of thread states, CPU, memory and the "
                    "hottest functions of a recording.")
    p.add_argument("recording", metavar="RECORDING",
                   help="a recording made by inspector record (with --dask: the name of one "
                        "kept on the workers)")
    p.add_argument("-o", "--output", metavar="FILE.html",
                   help="where to write it (default: beside the recording, ending in .html; "
                        "with --dask, NAME.html here)")
    p.add_argument("--open", action="store_true", help="open it in a web browser when written")
    add_io_concurrency(p)
    add_memory_budget(p)
    add_dask_source(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inspector.progress import Progress
    from inspector.text.terminal import clean

    check_dask_source(args)
    with Progress("report") as progress:
        if args.dask is not None:
            progress.step(f"judging {args.recording} on the workers of {args.dask}")
            (analysis,) = analyse_on_workers(args, [args.recording])
            for error in analysis.errors:
                print(f"inspector: not judged: {clean(error)}", file=sys.stderr)
            output = build_cluster_report(analysis.cluster, args.output or
                                          f"{analysis.name}.html",
                                          f"{analysis.name} on the workers of {args.dask}",
                                          analysis.cost_sentence())
        else:
            progress.step(f"reading and drawing {args.recording}")
            output = build_report(args.recording, args.output, args.io_concurrency,
                                  args.memory_budget, args.stream)
    print(f"inspector: report written to {clean(str(output))}", file=sys.stderr)
    if args.open:
        webbrowser.open(output.resolve().as_uri())
    return 0
