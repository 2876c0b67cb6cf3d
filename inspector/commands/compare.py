"""`inspector compare REC_A REC_B [...] [-o FILE.html] [--json]`: recordings side by side;
recordings of the same command make one row, with the median and the spread of its runs."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from inspector.commands.options import add_io_concurrency
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inspector.analyze.comparison import compare, facts, group_runs
    from inspector.recording import load
    from inspector.text.comparison import ComparisonTable, noise_sentences
    from inspector.text.json import compared_data
    from inspector.text.terminal import clean

    if len(args.recordings) < 2:
        raise UsageError("compare: give at least two recordings")
    recordings = [load(path) for path in args.recordings]
    rows = compare(group_runs([facts(rec, io_concurrency=args.io_concurrency)
                               for rec in recordings]))
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


def _default_output(first: Path) -> Path:
    return first.parent / f"comparison-{time.strftime('%Y%m%d-%H%M%S')}.html"
