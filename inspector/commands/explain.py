"""`inspector explain --pid PID` / `inspector explain RECORDING`: what htop's rows are.

htop, by default, lists every thread as its own row with its own id, so one threaded Python
program looks like many programs; top groups the threads under their process. This command
looks at a running program for a few seconds (or at the peak of a recording) and says which
rows are threads of one process, which are real child processes, and whether the threads
really ran at once.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from inspector.errors import UsageError

DEFAULT_LOOK_S = 3.0  # long enough for ~30 /proc samples and 3 py-spy runs, short to wait for


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain", help="say what htop shows: which rows are threads, which are processes",
        description="Look at a running program for a few seconds (--pid), or at the peak of a "
                    "recording, and say which of htop's rows are threads of one process and "
                    "which are real child processes, and whether its threads ran at once.",
        usage="inspector explain --pid PID [--duration S]\n       inspector explain RECORDING")
    p.add_argument("recording", nargs="?", help="a recording made by `inspector record`")
    p.add_argument("--pid", type=int, help="a running program to look at")
    p.add_argument("-d", "--duration", type=float, default=DEFAULT_LOOK_S, metavar="S",
                   help=f"with --pid: seconds to look ({DEFAULT_LOOK_S:g})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import inspector
    from inspector.analyze import diagnose
    from inspector.text.explain import ExplainText
    from inspector.text.terminal import clean

    if (args.pid is None) == (args.recording is None):
        raise UsageError("explain: give either --pid PID or a RECORDING")
    if args.duration <= 0 or args.duration > 600:
        raise UsageError("explain: --duration must be between 0 and 600 seconds")
    if args.pid is not None:
        from inspector.record import RecordOptions, attach

        with tempfile.TemporaryDirectory(prefix="inspector-explain-") as tmp:
            path = Path(tmp) / "look.sqlite"
            result = attach(args.pid, RecordOptions(output=path, duration_s=args.duration,
                                                    quiet=True))
            for warning in result.warnings:  # they name the target's processes
                print(clean(warning), file=sys.stderr)
            diag = diagnose(inspector.load(result.path))
        header = f"Looked at pid {args.pid} and its children for {diag.duration_s:.1f} s."
        why = f"`inspector record --pid {args.pid}` then `inspector summary` say why"
    else:
        diag = diagnose(inspector.load(args.recording))
        at = f" at {diag.peak_t_s:.1f} s" if diag.peak_t_s is not None else ""
        header = f"The peak of {clean(args.recording)}{at}, {diag.duration_s:.1f} s long."
        why = f"`inspector summary {clean(args.recording)}` says why"
    sys.stdout.write(ExplainText(header, why).render(diag))
    return 0
