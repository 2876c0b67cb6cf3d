"""`inspector summary RECORDING [--json]`: the verdict and advice first, then the processes
and their threads, then where the busy threads spent their time (text/summary.py words it;
a merged recording's, text/cluster.py)."""

from __future__ import annotations

import argparse
import sys

from inspector.commands.options import add_io_concurrency


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summary", help="print the verdict, processes and threads of a recording",
                       description="Summarise a recording: what bounds the program, whether "
                                   "the GIL capped it, and which concurrency model fits.")
    p.add_argument("recording", help="a recording made by `inspector record`")
    p.add_argument("--json", action="store_true",
                   help="print the diagnosis as JSON (a stable contract for scripts and CI)")
    add_io_concurrency(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import inspector
    from inspector.recording.merge import is_merged

    rec = inspector.load(args.recording)
    source = str(args.recording)
    if is_merged(rec):  # many hosts or workers: a verdict for each, and the cluster's
        from inspector.analyze.cluster import diagnose_cluster
        from inspector.text.cluster import ClusterText
        from inspector.text.json import CLUSTER_JSON

        cd = diagnose_cluster(rec)
        sys.stdout.write(CLUSTER_JSON.render(cd) if args.json else ClusterText(source).render(cd))
        return 0
    from inspector.analyze import diagnose
    from inspector.text.json import DIAGNOSIS_JSON
    from inspector.text.summary import SummaryText

    diag = diagnose(rec, io_concurrency=args.io_concurrency)
    sys.stdout.write(DIAGNOSIS_JSON.render(diag) if args.json
                     else SummaryText(source).render(diag))
    return 0
