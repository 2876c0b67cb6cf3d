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
from typing import TYPE_CHECKING

from inspector.commands.summary import clean, command_text
from inspector.errors import UsageError

if TYPE_CHECKING:
    from inspector.analyze import Diagnosis, ProcessFacts

DEFAULT_LOOK_S = 3.0  # long enough for ~30 /proc samples and 3 py-spy runs, short to wait for
MAX_NAMES = 12  # thread names listed per process; the rest are counted


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
            for warning in result.warnings:
                print(warning, file=sys.stderr)
            diag = diagnose(inspector.load(result.path))
        header = f"Looked at pid {args.pid} and its children for {diag.duration_s:.1f} s."
        why = f"`inspector record --pid {args.pid}` then `inspector summary` say why"
    else:
        diag = diagnose(inspector.load(args.recording))
        at = f" at {diag.peak_t_s:.1f} s" if diag.peak_t_s is not None else ""
        header = f"The peak of {clean(args.recording)}{at}, {diag.duration_s:.1f} s long."
        why = f"`inspector summary {clean(args.recording)}` says why"
    sys.stdout.write("\n".join([header, *explain_lines(diag, why)]) + "\n")
    return 0


def explain_lines(diag: Diagnosis, why: str = "`inspector summary` says why") -> list[str]:
    from inspector.analyze.vocabulary import bound_term

    peak = list(diag.peak_processes)
    if not peak:
        return ["No process was sampled: it ended before the first sample."]
    facts = {p.pid: p for p in diag.processes}
    pids = {p.pid for p in peak}
    roots = [p for p in peak if p.ppid not in pids]
    rows = sum(p.threads for p in peak)
    lines = [
        f"htop (default settings) shows {rows} row{'s' if rows != 1 else ''} for it: one per "
        f"thread; top shows {len(peak)}: one per process.",
    ]
    for p in peak:
        rows_text = f"{p.threads} `{clean(p.name)}` row{'s' if p.threads != 1 else ''}"
        if p in roots:
            role = "the program you started or attached to"
        else:
            role = f"a real child process of pid {p.ppid} (its own process, not a thread)"
        if p.threads > 1:
            lines.append(f"- these {rows_text} in htop are 1 process (pid {p.pid}) with "
                         f"{p.threads} threads; process {p.pid} is {role}:")
        else:
            lines.append(f"- {rows_text} in htop: process {p.pid} is {role}, with 1 thread:")
        lines.append(f"    {command_text(p.cmdline, 76)}")
        if p.thread_names and p.threads > 1:
            shown = ", ".join(clean(n) for n in p.thread_names[:MAX_NAMES])
            more = f" and {len(p.thread_names) - MAX_NAMES} more" \
                if len(p.thread_names) > MAX_NAMES else ""
            lines.append(f"    threads: {shown}{more}")
        f = facts.get(p.pid)
        if f is not None:
            lines.append(f"    {_concurrency_text(f, diag)}")
    if any(p.python for p in peak):
        lines.append("Threads share their process's memory and, in CPython with a GIL, take "
                     "turns running Python code; processes have their own memory and "
                     "interpreter and run at once.")
    lines += [
        "In htop, press H to hide threads (then it shows processes, like top), or F5 for the "
        "tree of processes.",
        f"Verdict: {bound_term(diag.verdict.bound).word}, advice {diag.verdict.advice} "
        f"({why}).",
    ]
    return lines


def _concurrency_text(p: ProcessFacts, diag: Diagnosis) -> str:
    """What was measured about this process's threads running at once."""
    cpu = f"CPU {p.cpu_percent_mean:.0f}% of one core on average"
    if p.gil_limited:
        return (f"only 1 thread at a time runs Python code: several wanted the CPU, the "
                f"process stayed near one core ({cpu}) and they waited for the GIL")
    if p.parallel_threads:
        return (f"its threads really ran at once ({cpu}, peak {p.cpu_percent_peak:.0f}%): "
                "native code releasing the GIL, or no GIL")
    if p.python and p.python_gil == "disabled":
        return f"free-threaded Python (no GIL): its threads can run at once ({cpu})"
    from inspector.analyze.vocabulary import THREAD_STATES, bound_term

    busy = [t for t in diag.threads if t.pid == p.pid and t.busy]
    waits = {k: sum(t.state_s[k] for t in diag.threads if t.pid == p.pid)
             for k in ("io", "lock", "sleep")}
    if not busy and not any(waits.values()):  # waits not told apart (the psutil backend)
        return f"its waits could not be told apart ({cpu})"
    if not busy:
        most = max(waits, key=lambda k: waits[k])
        label = THREAD_STATES[most].phrase
        who = "its threads were" if p.threads_peak > 1 else "it was"
        return f"{who} mostly {label} ({cpu})"
    return (f"{len(busy)} busy thread{'s' if len(busy) != 1 else ''} "
            f"({cpu}; {bound_term(p.bound).word})")
