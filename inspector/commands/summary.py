"""`inspector summary RECORDING [--json]`: the verdict and advice first, then the processes
and their threads, then where the busy threads spent their time."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inspector.analyze import Diagnosis, ProcessFacts, ThreadFacts

MAX_THREADS_LISTED = 12  # per process; the rest are summed into one line
MAX_BUSY_THREADS = 10


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summary", help="print the verdict, processes and threads of a recording",
                       description="Summarise a recording: what bounds the program, whether "
                                   "the GIL capped it, and which concurrency model fits.")
    p.add_argument("recording", help="a recording made by `inspector record`")
    p.add_argument("--json", action="store_true",
                   help="print the diagnosis as JSON (a stable contract for scripts and CI)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import inspector
    from inspector.analyze import diagnose
    from inspector.recording.merge import is_merged

    rec = inspector.load(args.recording)
    if is_merged(rec):  # many hosts or workers: a verdict for each, and the cluster's
        from inspector.commands.merge import summary
        return summary(rec, str(args.recording), args.json)
    diag = diagnose(rec)
    if args.json:
        json.dump(diag.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write("\n".join(summary_lines(diag, str(args.recording))) + "\n")
    return 0


def clean(text: object) -> str:
    """A target-derived string made safe for a terminal (no escape sequences, no newlines)."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(text))


def command_text(argv: Iterable[str], limit: int = 80) -> str:
    text = clean(shlex.join(list(argv))) if argv else "?"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def verdict_line(diag: Diagnosis) -> str:
    # imported here: the vocabulary's package pulls in pandas, which `--help` does not need
    from inspector.analyze.vocabulary import FLAGS, bound_term

    v = diag.verdict
    parts = [bound_term(v.bound).phrase]
    parts += [term.phrase for flag, term in FLAGS.items() if getattr(v, flag)]
    confirmed = [b for b in diag.event_loop_blocks if b.confidence == "confirmed"]
    possible = len(diag.event_loop_blocks) - len(confirmed)
    if confirmed:
        parts.append(f"asyncio loop blocked {len(confirmed)} time(s)")
    if possible:
        parts.append(f"asyncio loop possibly blocked {possible} time(s)")
    if diag.lock_contention is not None:
        parts.append(f"{diag.lock_contention.threads} threads queued on a lock")
    return "; ".join(parts)


def prediction_lines(diag: Diagnosis) -> list[str]:
    """One line per model: the predicted speed-up over this run, or why there is none."""
    from inspector.analyze.predict import Prediction

    lines = []
    for model, p in diag.predicted.items():
        if isinstance(p, Prediction):
            lines.append(f"  {p.sentence()}: {clean(p.basis)}")
        else:
            lines.append(f"  {model}: no estimate ({clean(p)})")
    return lines


def summary_lines(diag: Diagnosis, source: str) -> list[str]:
    from inspector.analyze.vocabulary import advice_of

    exit_text = "running" if diag.exit_code is None else f"exit {diag.exit_code}"
    lines = [
        f"inspector summary of {clean(source)}",
        f"command: {command_text(diag.command)}",
        f"{diag.duration_s:.1f} s, {exit_text}, {diag.cores_sentence}",
        "",
        f"VERDICT: {verdict_line(diag)}",
        f"ADVICE:  {diag.verdict.advice}: {advice_of(diag.verdict.advice).title}",
    ]
    lines += [f"  - {clean(e)}" for e in diag.verdict.evidence]
    for b in diag.event_loop_blocks:
        where = f" ({clean(b.frame)})" if b.frame else ""
        how = "blocked" if b.confidence == "confirmed" else "possibly blocked"
        call = f", in {clean(b.blocking_call)}" if b.blocking_call else ""
        lines.append(f"  - {how} loop: pid {b.pid} tid {b.tid} at {b.start_s:.2f} s for "
                     f"{b.duration_s:.2f} s in {clean(b.function)}{where}{call}")
    if diag.predicted:
        lines += ["", "PREDICTED SPEED-UP over this run (the same work, another model):"]
        lines += prediction_lines(diag)
    if diag.intervals == 0:
        lines += ["", "NO SAMPLES: nothing to judge; the program ended before the recorder "
                      "took two samples of any thread (or the recording was cut short)."]
    for note in diag.notes:
        if diag.intervals or not note.startswith("no thread samples"):
            lines.append(f"  note: {clean(note)}")
    lines += ["", f"PROCESSES: {diag.process_count} process(es); at most {diag.peak_threads} "
                  f"threads at once (htop, by default, shows {diag.htop_rows_peak} rows then: "
                  "one per thread)"]
    threads_by_proc: dict[int, list[ThreadFacts]] = {}
    for t in diag.threads:
        threads_by_proc.setdefault(t.proc_id, []).append(t)
    for p in diag.processes:
        lines += _process_lines(p, threads_by_proc.get(p.proc_id, []))
    busy = sorted((t for t in diag.threads if t.busy), key=lambda t: -_active_s(t))
    lines += ["", "WHERE BUSY THREADS SPENT THEIR TIME"]
    if not busy:
        lines.append("  no thread was busy (on a CPU, waiting for one, or waiting for I/O) "
                     "for most of its life")
    for t in busy[:MAX_BUSY_THREADS]:
        lines.append(f"  pid {t.pid} tid {t.tid} {clean(t.name or '?')}: {_split_text(t)}")
        for frame, seconds in t.top_frames:
            lines.append(f"      {seconds:6.2f} s  {clean(frame)}")
    if len(busy) > MAX_BUSY_THREADS:
        lines.append(f"  ... and {len(busy) - MAX_BUSY_THREADS} more busy threads")
    return lines


def _active_s(t: ThreadFacts) -> float:
    return sum(t.state_s[k] for k in ("cpu", "gil", "runqueue", "io"))


def _split_text(t: ThreadFacts) -> str:
    total = sum(t.state_s.values())
    if total <= 0:
        return "not sampled"
    from inspector.analyze.vocabulary import THREAD_STATES

    parts = [f"{THREAD_STATES[k].word} {v / total:.0%}"
             for k, v in sorted(t.state_s.items(), key=lambda kv: -kv[1]) if v / total >= 0.05]
    return ", ".join(parts) + f" (of {total:.1f} s)"


def _process_lines(p: ProcessFacts, threads: list[ThreadFacts]) -> list[str]:
    if p.python:
        gil = {"disabled": "free-threaded, no GIL", "enabled": "GIL"}.get(p.python_gil or "",
                                                                         "GIL unknown")
        kind = f"Python {p.python_version or '?'} ({gil})"
    else:
        kind = "not Python"
    from inspector.analyze.vocabulary import FLAGS, bound_term

    flags = [bound_term(p.bound).word]
    flags += [FLAGS[flag].word for flag in ("gil_limited", "parallel_threads")
              if getattr(p, flag)]
    exit_text = "" if p.exit_code is None else f", exit {p.exit_code}"
    lines = [
        f"  pid {p.pid} (parent {p.ppid}) {command_text(p.cmdline, 60)}",
        f"      {kind}; {p.threads_peak} threads at most; CPU {p.cpu_percent_mean:.0f}% mean, "
        f"{p.cpu_percent_peak:.0f}% peak (100% = one core); RSS "
        f"{p.rss_peak_bytes / 2**20:.1f} MiB; {p.start_s:.1f}-{p.end_s:.1f} s{exit_text}; "
        f"{', '.join(flags)}",
    ]
    # the threads that did the most first; the rest (idle helpers, short lives) summed up
    threads = sorted(threads, key=lambda t: (-_active_s(t), -t.sampled_s, t.tid))
    for t in threads[:MAX_THREADS_LISTED]:
        lines.append(f"      tid {t.tid:<8} {clean(t.name or '?')[:28]:<28} CPU {t.cpu_s:6.2f} s"
                     f"  {_split_text(t)}")
    if len(threads) > MAX_THREADS_LISTED:
        rest = threads[MAX_THREADS_LISTED:]
        lines.append(f"      ... {len(rest)} more threads, CPU "
                     f"{sum(t.cpu_s for t in rest):.2f} s together")
    return lines
