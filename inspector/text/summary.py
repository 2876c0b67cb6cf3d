"""`inspector summary` in the terminal: the verdict and advice first, then the processes and
their threads, then where the busy threads spent their time."""

from __future__ import annotations

from inspector.analyze import evidence as ev
from inspector.analyze.model import Diagnosis, ProcessFacts, ThreadFacts
from inspector.analyze.predict import Prediction
from inspector.analyze.vocabulary import FLAGS, THREAD_STATES, advice_of, bound_term
from inspector.text import evidence as words
from inspector.text.base import TextRenderer
from inspector.text.terminal import clean, command_text

MAX_THREADS_LISTED = 12  # per process; the rest are summed into one line
MAX_BUSY_THREADS = 10


def verdict_line(diag: Diagnosis) -> str:
    """'CPU-bound; the GIL held its threads to one core': the verdict in one line."""
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


def prediction_sentence(p: Prediction) -> str:
    return (f"{p.model} ({p.workers} worker{'s' if p.workers != 1 else ''}): about "
            f"{p.speedup:.1f}x "
            f"({p.low:.1f}-{p.high:.1f}x)")


def prediction_lines(diag: Diagnosis) -> list[str]:
    """One line per model: the predicted speed-up over this run, or why there is none."""
    lines = []
    for model, p in diag.predicted.items():
        if isinstance(p, Prediction):
            lines.append(f"  {prediction_sentence(p)}: {clean(words.basis_text(p.basis))}")
        else:
            lines.append(f"  {model}: no estimate ({clean(p)})")
    return lines


class SummaryText(TextRenderer[Diagnosis]):
    """The summary of one recording (`source` names it in the first line)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def lines(self, diag: Diagnosis) -> list[str]:
        exit_text = "running" if diag.exit_code is None else f"exit {diag.exit_code}"
        lines = [
            f"inspector summary of {clean(self.source)}",
            f"command: {command_text(diag.command)}",
            f"{diag.duration_s:.1f} s, {exit_text}, {words.cores_sentence(diag.cores)}",
            "",
            f"VERDICT: {verdict_line(diag)}",
            f"ADVICE:  {diag.verdict.advice}: {advice_of(diag.verdict.advice).title}",
        ]
        lines += [f"  - {clean(e)}" for e in words.said(diag.verdict.evidence)]
        for b in diag.event_loop_blocks:
            where = f" ({clean(b.frame)})" if b.frame else ""
            how = "blocked" if b.confidence == "confirmed" else "possibly blocked"
            call = f", in {clean(b.blocking_call)}" if b.blocking_call else ""
            lines.append(f"  - {how} loop: pid {b.pid} tid {b.tid} at {b.start_s:.2f} s for "
                         f"{b.duration_s:.2f} s in {clean(b.function)}{where}{call}")
        if diag.predicted:
            lines += ["", "PREDICTED SPEED-UP over this run (the same work, another model):"]
            lines += prediction_lines(diag)
            if diag.machine is not None:
                lines.append(f"  (machine: {clean(words.say(diag.machine))})")
        if diag.intervals == 0:
            lines += ["", "NO SAMPLES: nothing to judge; the program ended before the recorder "
                          "took two samples of any thread (or the recording was cut short)."]
        for note in diag.notes:
            if diag.intervals or not isinstance(note, ev.NoThreadSamples):
                lines.append(f"  note: {clean(words.say(note))}")
        lines += ["", f"PROCESSES: {diag.process_count} process(es); at most "
                      f"{diag.peak_threads} threads at once (htop, by default, shows "
                      f"{diag.htop_rows_peak} rows then: one per thread)"]
        threads_by_proc: dict[int, list[ThreadFacts]] = {}
        for t in diag.threads:
            threads_by_proc.setdefault(t.proc_id, []).append(t)
        for p in diag.processes:
            lines += process_lines(p, threads_by_proc.get(p.proc_id, []))
        busy = sorted((t for t in diag.threads if t.busy), key=lambda t: -_active_s(t))
        lines += ["", "WHERE BUSY THREADS SPENT THEIR TIME"]
        if not busy:
            lines.append("  no thread was busy (on a CPU, waiting for one, or waiting for I/O) "
                         "for most of its life")
        for t in busy[:MAX_BUSY_THREADS]:
            lines.append(f"  pid {t.pid} tid {t.tid} {clean(t.name or '?')}: {split_text(t)}")
            for frame, seconds in t.top_frames:
                lines.append(f"      {seconds:6.2f} s  {clean(frame)}")
        if len(busy) > MAX_BUSY_THREADS:
            lines.append(f"  ... and {len(busy) - MAX_BUSY_THREADS} more busy threads")
        return lines


def _active_s(t: ThreadFacts) -> float:
    return sum(t.state_s[k] for k in ("cpu", "gil", "runqueue", "io"))


def split_text(t: ThreadFacts) -> str:
    """'on CPU 60%, GIL wait 35% (of 4.0 s)': where a thread's time went."""
    total = sum(t.state_s.values())
    if total <= 0:
        return "not sampled"
    parts = [f"{THREAD_STATES[k].word} {v / total:.0%}"
             for k, v in sorted(t.state_s.items(), key=lambda kv: -kv[1]) if v / total >= 0.05]
    return ", ".join(parts) + f" (of {total:.1f} s)"


def process_lines(p: ProcessFacts, threads: list[ThreadFacts]) -> list[str]:
    """A process's two lines, then its threads, the busiest first."""
    if p.python:
        gil = {"disabled": "free-threaded, no GIL", "enabled": "GIL"}.get(p.python_gil or "",
                                                                         "GIL unknown")
        kind = f"Python {p.python_version or '?'} ({gil})"
    else:
        kind = "not Python"
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
                     f"  {split_text(t)}")
    if len(threads) > MAX_THREADS_LISTED:
        rest = threads[MAX_THREADS_LISTED:]
        lines.append(f"      ... {len(rest)} more threads, CPU "
                     f"{sum(t.cpu_s for t in rest):.2f} s together")
    return lines
