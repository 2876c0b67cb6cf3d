"""Recordings side by side: wall time, speed-up, CPU used, processes, threads and the
diagnosis's verdict, one row per recording. Recordings in, rows out (no files, no processes):
`inspector compare` and `inspector demo` print the rows, report/comparison_page.py draws them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from inspector.analyze import diagnose
from inspector.analyze.vocabulary import FLAGS, advice_of, bound_term
from inspector.recording import Recording

JOBS_MODULE = "inspector.jobs"  # recordings of `python -m inspector.jobs JOB VARIANT` are labelled


@dataclass(frozen=True)
class RunFacts:
    """What one recording measured, straight from its samples."""

    label: str
    path: Path
    command: list[str]
    job: str | None              # 'cpu' or 'io' for a bundled reference job, else None
    variant: str | None
    wall_s: float
    cpu_s: float                 # CPU time of every process of the run together
    cpu_percent: float           # cpu_s / wall_s, in percent of one core (as top shows it)
    processes: int               # distinct OS processes seen (the diagnosis's count)
    threads: int                 # most OS threads alive at once, all processes together (idem)
    rss_peak_bytes: int          # highest sum of the processes' RSS at one sample
    exit_code: int | None
    verdict: dict[str, Any] = field(default_factory=dict)   # the diagnosis's


@dataclass(frozen=True)
class ComparedRun:
    facts: RunFacts
    baseline: str                # label of the run the speed-up is against
    speedup: float               # baseline wall time / this wall time

    def to_dict(self) -> dict[str, Any]:
        f = self.facts
        return {
            "label": f.label, "job": f.job, "variant": f.variant, "recording": str(f.path),
            "command": f.command, "wall_s": round(f.wall_s, 3), "speedup": round(self.speedup, 3),
            "baseline": self.baseline, "cpu_percent": round(f.cpu_percent, 1),
            "cpu_s": round(f.cpu_s, 3), "processes": f.processes, "threads": f.threads,
            "rss_peak_bytes": f.rss_peak_bytes, "exit_code": f.exit_code,
            "verdict": f.verdict,
        }


def wall_s(rec: Recording) -> float:
    """How long the target's process tree lived: from the first process's start (the kernel's
    clock, to 10 ms) to the last one's exit. A process is last *seen* alive up to one sampling
    interval before it exits, so half an interval is added: the middle of that gap. Not the
    recording's duration, which adds the recorder's own start and stop. A process that started
    before the recording (attach mode) counts from the recording's start; one still alive at
    its end, to its end."""
    procs = rec.processes
    if procs.empty:
        return rec.duration_s
    interval_s = rec.interval_s
    start = max(float(procs["start_s"].min()), 0.0)
    if procs["end_s"].isna().any():
        end = rec.duration_s
    else:
        end = float(procs["end_s"].max()) + interval_s / 2
    span = max(end - start, 0.0)
    return min(span, rec.duration_s) if rec.duration_s > 0 else span


def cpu_seconds(rec: Recording) -> float:
    """CPU time (user + system) of all the run's processes: each one's last cumulative value."""
    ps = rec.process_samples
    if ps.empty:
        return 0.0
    cpu = ps["cpu_user_s"].astype("float64") + ps["cpu_system_s"].astype("float64")
    return float(cpu.groupby(ps["proc_id"]).max().sum())


def rss_peak_bytes(rec: Recording) -> int:
    ps = rec.process_samples
    if ps.empty:
        return 0
    # Every process sampled in one round shares that round's t_s.
    peak = ps.groupby("t_s")["rss_bytes"].sum(min_count=1).max()
    return 0 if pd.isna(peak) else int(peak)


def job_of(command: Sequence[str]) -> tuple[str | None, str | None]:
    """('cpu', 'threading') for `... -m inspector.jobs cpu threading ...`, else (None, None)."""
    parts = list(command)
    for i, part in enumerate(parts[:-1]):
        if part == "-m" and parts[i + 1] == JOBS_MODULE:
            rest = [p for p in parts[i + 2:i + 4] if not p.startswith("-")]
            job = rest[0] if rest else None
            variant = rest[1] if len(rest) > 1 else "sequential"
            return job, variant
    return None, None


def facts(rec: Recording, label: str | None = None) -> RunFacts:
    """The row of one recording: measured here (wall, CPU, memory) and diagnosed by
    inspector.analyze (process and thread counts, verdict)."""
    diagnosis = diagnose(rec).to_dict()
    command = [str(c) for c in rec.meta.get("command") or []]
    job, variant = job_of(command)
    if label is None:
        label = f"{job} {variant}" if job else rec.path.stem
    wall = wall_s(rec)
    cpu = cpu_seconds(rec)
    exit_code = rec.meta.get("exit_code")
    return RunFacts(
        label=label, path=rec.path, command=command, job=job, variant=variant,
        wall_s=wall, cpu_s=cpu, cpu_percent=100.0 * cpu / wall if wall > 0 else 0.0,
        processes=int(diagnosis["process_count"]), threads=int(diagnosis["peak_threads"]),
        rss_peak_bytes=rss_peak_bytes(rec),
        exit_code=int(exit_code) if exit_code is not None else None,
        verdict=dict(diagnosis["verdict"]),
    )


def compare(runs: Sequence[RunFacts], baselines: Sequence[int] | None = None
            ) -> list[ComparedRun]:
    """Speed-up of each run against `runs[baselines[i]]` (default: against the first).
    Labels that repeat get the recording's file name added, so every row can be told apart."""
    if baselines is None:
        baselines = [0] * len(runs)
    labels = [r.label for r in runs]
    runs = [replace(r, label=f"{r.label} ({r.path.name})") if labels.count(r.label) > 1 else r
            for r in runs]
    out = []
    for run, b in zip(runs, baselines):
        base = runs[b]
        speedup = base.wall_s / run.wall_s if run.wall_s > 0 else 0.0
        out.append(ComparedRun(run, base.label, speedup))
    return out


def by_job_baselines(runs: Sequence[RunFacts]) -> list[int]:
    """Each run against the sequential run of its own job (the demo's reading); runs of no
    known job, or of a job without a sequential run, against the first run."""
    sequential: dict[str | None, int] = {
        r.job: i for i, r in reversed(list(enumerate(runs))) if r.job and r.variant == "sequential"}
    return [sequential.get(r.job, 0) for r in runs]


# -- words ----------------------------------------------------------------------------------

def verdict_text(verdict: dict[str, Any]) -> str:
    """'CPU-bound, GIL-limited -> multiprocessing': the verdict in a table cell."""
    if not verdict:
        return "-"
    words = [bound_term(str(verdict.get("bound", "?"))).word]
    words += [term.word for flag, term in FLAGS.items() if verdict.get(flag)]
    advice = verdict.get("advice")
    text = ", ".join(words)
    return f"{text} -> {advice_of(str(advice)).word}" if advice else text


def shows_jobs(rows: Sequence[ComparedRun]) -> bool:
    """Job and variant columns (instead of labels) when every row is a distinct reference job."""
    keys = [(r.facts.job, r.facts.variant) for r in rows]
    return all(job for job, _ in keys) and len(set(keys)) == len(keys)


def format_table(rows: Sequence[ComparedRun]) -> str:
    """The terminal table. Job and variant columns for reference jobs, else the label."""
    jobs = shows_jobs(rows)
    head = (["job", "variant"] if jobs else ["recording"]) + [
        "wall", "speed-up", "CPU%", "procs", "threads", "verdict -> advice"]
    body = []
    for r in rows:
        f = r.facts
        name = [f.job or "", f.variant or ""] if jobs else [f.label]
        body.append(name + [f"{f.wall_s:.2f} s", f"{r.speedup:.2f}x", f"{f.cpu_percent:.0f}%",
                            str(f.processes), str(f.threads), verdict_text(f.verdict)])
    right = {"wall", "speed-up", "CPU%", "procs", "threads"}
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h)
              for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        out = []
        for cell, width, h in zip(cells, widths, head):
            out.append(cell.rjust(width) if h in right else cell.ljust(width))
        return "  ".join(out).rstrip()

    return "\n".join([line(head), *(line(row) for row in body)])
