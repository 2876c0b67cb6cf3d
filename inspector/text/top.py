"""`inspector top` as text: one frame of a live look (a header, the verdict so far, the column
heads, a row per process with its threads under it), for the curses screen and `--once`."""

from __future__ import annotations

from inspector.analyze.model import Diagnosis
from inspector.analyze.vocabulary import THREAD_STATES, advice_of
from inspector.live.frame import SORT_KEYS, STATE_WIDTH, Frame, ordered
from inspector.text.summary import verdict_line
from inspector.text.terminal import clean, command_text, size_text


def verdict_so_far(diag: Diagnosis) -> str:
    """'CPU-bound; ... -> multiprocessing': the verdict line top shows."""
    return f"{verdict_line(diag)} -> {advice_of(diag.verdict.advice).word}"


def render(frame: Frame, verdict: str | None, sort: str = "cpu", tree: bool = False,
           threads: bool = True, title: str = "", width: int = 120) -> list[str]:
    """The frame as text lines at most `width` wide: a header, the verdict so far, the
    column heads, and a row per process with its threads under it."""
    n = len(frame.processes)
    head = (f"{title}  {frame.t_s:.1f} s  {n} process{'es' if n != 1 else ''}  "
            f"{frame.thread_count} threads  CPU {frame.cpu_percent:.0f}% of "
            f"{frame.cpu_count} cores  sort: {SORT_KEYS[sort]}"
            + ("  tree" if tree else "") + ("  (ended)" if frame.ended else ""))
    lines = [head.strip(),
             f"Verdict so far: {verdict}" if verdict else "Verdict so far: (measuring)",
             "",
             f"{'PID':>7} {'TID':>7} {'CPU%':>6} {'RSS':>6}  {'STATE':<{STATE_WIDTH}}  "
             f"{'IN':<13} COMMAND / THREAD"]
    for p in ordered(frame, sort, tree):
        indent = "  " * p.depth
        gil = f"[{p.gil_waiters} waiting for the GIL now] " if p.gil_waiters else ""
        count = f"{len(p.threads)} thread{'s' if len(p.threads) != 1 else ''}"
        lines.append(f"{p.pid:>7} {'':>7} {p.cpu_percent:>6.1f} {size_text(p.rss_bytes):>6}  "
                     f"{count:<{STATE_WIDTH}}  {'':<13} {indent}{gil}"
                     f"{command_text(p.command, 200)}")
        if not threads:
            continue
        for i, t in enumerate(p.threads):
            branch = "`-" if i == len(p.threads) - 1 else "|-"
            mark = "  holds the GIL" if t.holds_gil else ""
            leaf = f"  in {clean(t.leaf)}" if t.leaf else ""
            lines.append(f"{'':>7} {t.tid:>7} {t.cpu_percent:>6.1f} {'':>6}  "
                         f"{THREAD_STATES[t.state].word:<{STATE_WIDTH}}  "
                         f"{clean(t.syscall or '?'):<13} {indent}{branch} {clean(t.name)}"
                         f"{mark}{leaf}")
    return [clean(line)[:width] for line in lines]
