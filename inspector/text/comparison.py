"""Recordings side by side, in words: the terminal table of `inspector compare` and
`inspector demo`, and the cells and sentences the comparison page shares with it.
"""

from __future__ import annotations

from collections.abc import Sequence

from inspector.analyze.comparison import ComparedRun
from inspector.analyze.model import Verdict
from inspector.analyze.vocabulary import FLAGS, advice_of, bound_term
from inspector.machine_load import BUSY_SHARE
from inspector.text.base import TextRenderer
from inspector.text.terminal import clean

NO_DIFFERENCE = "no measurable difference"


def verdict_text(verdict: Verdict | None) -> str:
    """'CPU-bound, GIL-limited -> multiprocessing': the verdict in a table cell."""
    if verdict is None:
        return "-"
    words = [bound_term(verdict.bound).word]
    words += [term.word for flag, term in FLAGS.items() if getattr(verdict, flag)]
    text = ", ".join(words)
    return f"{text} -> {advice_of(verdict.advice).word}" if verdict.advice else text


def wall_text(r: ComparedRun, dash: str = "-") -> str:
    """'3.02 s (2.98-3.10)': the median wall time and the runs' range."""
    if len(r.runs) == 1:
        return f"{r.wall_s:.2f} s"
    return f"{r.wall_s:.2f} s ({r.wall_s_min:.2f}{dash}{r.wall_s_max:.2f})"


def speedup_text(r: ComparedRun, dash: str = "-") -> str:
    """'1.63x (1.52-1.71)'; '~1x (0.95-1.04)' when the difference is within the noise, so no
    reader takes 0.97x for a finding."""
    if r.is_baseline or r.speedup_low == r.speedup_high:
        return f"{r.speedup:.2f}x"
    spread = f"({r.speedup_low:.2f}{dash}{r.speedup_high:.2f})"
    return f"~1x {spread}" if r.within_noise else f"{r.speedup:.2f}x {spread}"


def predicted_text(r: ComparedRun, dash: str = "-") -> str:
    """'1.70x (1.50-1.90)': what the baseline's recording predicted for this row; '-'."""
    if r.predicted_speedup is None:
        return "-"
    return (f"{r.predicted_speedup:.2f}x ({r.predicted_low or 0:.2f}{dash}"
            f"{r.predicted_high or 0:.2f})")


def runs_text(r: ComparedRun) -> str:
    """'5' runs, or '5, 2 busy' when others kept the machine busy during some."""
    busy = r.busy_runs
    return f"{len(r.runs)}, {busy} busy" if busy else str(len(r.runs))


def noise_sentences(rows: Sequence[ComparedRun]) -> list[str]:
    """'cpu asyncio vs cpu sequential: no measurable difference (0.95-1.04x, 5 and 5 runs)'
    for every row whose difference from its baseline is within the runs' spread."""
    by_label = {r.facts.label: r for r in rows}
    out = []
    for r in rows:
        if r.within_noise:
            base = by_label.get(r.baseline)
            counts = f"{len(base.runs)} and {len(r.runs)} runs" if base else f"{len(r.runs)} runs"
            out.append(f"{clean(r.facts.label)} vs {clean(r.baseline)}: {NO_DIFFERENCE} "
                       f"({r.speedup_low:.2f}-{r.speedup_high:.2f}x, {counts}).")
    return out


def busy_sentence(rows: Sequence[ComparedRun]) -> str | None:
    """Says how many runs were busy, or None when none was (or none was measured)."""
    runs = [run for r in rows for run in r.runs]
    busy = sum(run.busy for run in runs)
    if not busy:
        return None
    return (f"{busy} of {len(runs)} runs were busy: other programs used more than "
            f"{BUSY_SHARE:.0%} of the machine's CPU during them. They are kept and flagged "
            "(the runs column); their slowness widens the ranges, so a difference still "
            "called measurable held despite them.")


def shows_jobs(rows: Sequence[ComparedRun]) -> bool:
    """Job and variant columns (instead of labels) when every row is a distinct reference job."""
    keys = [(r.facts.job, r.facts.variant) for r in rows]
    return all(job for job, _ in keys) and len(set(keys)) == len(keys)


def format_table(rows: Sequence[ComparedRun]) -> str:
    """The terminal table. Job and variant columns for reference jobs, else the label."""
    jobs = shows_jobs(rows)
    head = (["job", "variant"] if jobs else ["recording"]) + [
        "wall (median, min-max)", "speed-up (range)", "predicted", "CPU%", "procs", "threads",
        "runs", "verdict -> advice"]
    body = []
    for r in rows:
        f = r.facts
        name = [clean(f.job or ""), clean(f.variant or "")] if jobs else [clean(f.label)]
        body.append(name + [wall_text(r), speedup_text(r), predicted_text(r),
                            f"{r.cpu_percent:.0f}%",
                            str(f.processes), str(f.threads), runs_text(r),
                            verdict_text(f.verdict)])
    right = {"wall (median, min-max)", "speed-up (range)", "predicted", "CPU%", "procs",
             "threads"}
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h)
              for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        out = []
        for cell, width, h in zip(cells, widths, head):
            out.append(cell.rjust(width) if h in right else cell.ljust(width))
        return "  ".join(out).rstrip()

    return "\n".join([line(head), *(line(row) for row in body)])


class ComparisonTable(TextRenderer[Sequence[ComparedRun]]):
    """The table, then a sentence for each row within the noise."""

    def lines(self, rows: Sequence[ComparedRun]) -> list[str]:
        return [*format_table(rows).split("\n"), *noise_sentences(rows)]
