"""`inspector explain` in the terminal: which of htop's rows are threads of one process and
which are real child processes, at the peak of a recording, and whether the threads ran at
once."""

from __future__ import annotations

from inspector.analyze.model import Diagnosis, ProcessFacts
from inspector.analyze.vocabulary import THREAD_STATES, bound_term
from inspector.text.base import TextRenderer
from inspector.text.terminal import clean, command_text

MAX_NAMES = 12  # thread names listed per process; the rest are counted


class ExplainText(TextRenderer[Diagnosis]):
    """`header` leads; `why` says which command explains the verdict."""

    def __init__(self, header: str, why: str = "`inspector summary` says why") -> None:
        self.header = header
        self.why = why

    def lines(self, diag: Diagnosis) -> list[str]:
        return [self.header, *explain_lines(diag, self.why)]


def explain_lines(diag: Diagnosis, why: str = "`inspector summary` says why") -> list[str]:
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
