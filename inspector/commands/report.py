"""`inspector report RECORDING [-o FILE.html] [--open]`: the HTML report of a recording."""

from __future__ import annotations

import argparse
import sys
import webbrowser

from inspector.commands.options import add_io_concurrency
from inspector.report.build import ReportError, build_report

__all__ = ["ReportError", "add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="write the HTML report of a recording",
        description="Write one self-contained HTML page (works offline) showing the verdict, "
                    "processes and threads, a timeline of thread states, CPU, memory and the "
                    "hottest functions of a recording.")
    p.add_argument("recording", metavar="RECORDING", help="a recording made by inspector record")
    p.add_argument("-o", "--output", metavar="FILE.html",
                   help="where to write it (default: beside the recording, ending in .html)")
    p.add_argument("--open", action="store_true", help="open it in a web browser when written")
    add_io_concurrency(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inspector.progress import Progress
    from inspector.text.terminal import clean

    with Progress("report") as progress:
        progress.step(f"reading and drawing {args.recording}")
        output = build_report(args.recording, args.output, args.io_concurrency)
    print(f"inspector: report written to {clean(str(output))}", file=sys.stderr)
    if args.open:
        webbrowser.open(output.resolve().as_uri())
    return 0
