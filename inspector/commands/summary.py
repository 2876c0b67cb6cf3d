"""`inspector summary RECORDING [--json]`: the verdict and advice first, then the processes
and their threads, then where the busy threads spent their time (text/summary.py words it;
a merged recording's, text/cluster.py)."""

from __future__ import annotations

import argparse
import json
import sys

from inspector.commands.options import (
    add_dask_source,
    add_io_concurrency,
    add_memory_budget,
    analyse_on_workers,
    check_dask_source,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summary", help="print the verdict, processes and threads of a recording",
                       description="Summarise a recording: what bounds the program, whether "
                                   "the GIL capped it, and which concurrency model fits.")
    p.add_argument("recording", help="a recording made by `inspector record` (with --dask: "
                                     "the name of one kept on the workers)")
    p.add_argument("--json", action="store_true",
                   help="print the diagnosis as JSON (a stable contract for scripts and CI)")
    add_io_concurrency(p)
    add_memory_budget(p)
    add_dask_source(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inspector.recording.merge import is_merged

    check_dask_source(args)
    if args.dask is not None:
        return _on_workers(args)
    from inspector.bounded import analysis_input

    given = analysis_input(args.recording, args.memory_budget, args.stream)
    rec = given.recording
    source = str(args.recording)
    if is_merged(rec):  # many hosts or workers: a verdict for each, and the cluster's
        from inspector.analyze.cluster import diagnose_cluster
        from inspector.text.cluster import ClusterText
        from inspector.text.json import CLUSTER_JSON

        cd = diagnose_cluster(rec)
        sys.stdout.write(CLUSTER_JSON.render(cd) if args.json else ClusterText(source).render(cd))
        return 0
    from inspector.analyze import diagnose
    from inspector.text.json import DIAGNOSIS_JSON, diagnosis_data
    from inspector.text.summary import SummaryText

    diag = diagnose(rec, given.states, io_concurrency=args.io_concurrency, loops=given.loops)
    if not given.plan.streamed:
        sys.stdout.write(DIAGNOSIS_JSON.render(diag) if args.json
                         else SummaryText(source).render(diag))
        return 0
    print(f"inspector: {given.plan.sentence()}", file=sys.stderr)
    if args.json:  # what a streamed run kept, beside the diagnosis's own keys
        sys.stdout.write(json.dumps({**diagnosis_data(diag), "streamed": given.plan.to_dict()},
                                    indent=2) + "\n")
    else:
        sys.stdout.write(SummaryText(source).render(diag))
    return 0


def _on_workers(args: argparse.Namespace) -> int:
    """`summary --dask SCHEDULER NAME`: judged on the workers, combined here."""
    from inspector.text.cluster import ClusterText
    from inspector.text.json import CLUSTER_JSON
    from inspector.text.terminal import clean

    (analysis,) = analyse_on_workers(args, [args.recording])
    for error in analysis.errors:
        print(f"inspector: not judged: {clean(error)}", file=sys.stderr)
    if args.json:
        sys.stdout.write(CLUSTER_JSON.render(analysis.cluster))
        print(f"inspector: {analysis.cost_sentence()}", file=sys.stderr)
    else:
        source = f"{analysis.name} on the workers of {args.dask}"
        sys.stdout.write(ClusterText(source, analysis.cost_sentence()).render(analysis.cluster))
    return 0
