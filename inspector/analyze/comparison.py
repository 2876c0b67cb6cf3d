"""Recordings side by side: wall time, speed-up, CPU used, processes, threads and the
diagnosis's verdict, one row per command. Several recordings of the same command are one row:
its median and the spread of its runs, and a difference inside the spread is said to be noise.
Recordings in, rows out (no files, no processes): text/comparison.py prints the rows for
`inspector compare` and `inspector demo`, report/comparison_page.py draws them. The rule is
in docs/diagnosis.md.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from inspector.analyze import Verdict, diagnose
from inspector.analyze.capacity import Machine, machine
from inspector.analyze.evidence import Fact, MachineBasis
from inspector.analyze.predict import MODELS, Prediction
from inspector.machine_load import BUSY_SHARE  # a constant: analyze/ still reads no /proc
from inspector.recording import Recording

if TYPE_CHECKING:
    from inspector.analyze.cluster import ClusterDiagnosis, WorkerSummary

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
    verdict: Verdict             # the diagnosis's
    # Share (0..1) of the machine's CPU other programs used during the run, when whoever ran
    # it measured that (the demo does); None for a recording made elsewhere.
    foreign_load: float | None = None
    # What the diagnosis predicts for the same work under each model, and what of the
    # machine the predictions stood on
    predicted: Mapping[str, Prediction | str] = field(default_factory=dict)
    machine: MachineBasis | None = None

    @property
    def busy(self) -> bool:
        return self.foreign_load is not None and self.foreign_load > BUSY_SHARE


@dataclass(frozen=True)
class ComparedRun:
    """One command's row: its runs, the median one's facts, and the speed-up against the
    baseline row with its range. `facts` is the run whose wall time is the median (the lower
    of the two middle ones for an even count): its recording, report and verdict stand for
    the row."""

    facts: RunFacts
    runs: tuple[RunFacts, ...]   # every run of the command, in the order given
    baseline: str                # label of the row the speed-up is against
    speedup: float               # baseline's median wall time / this row's median wall time
    speedup_low: float           # the baseline's fastest run / this row's slowest
    speedup_high: float          # the baseline's slowest run / this row's fastest
    is_baseline: bool = False
    # The speed-up the baseline's recordings predicted for this row's model (the baseline's
    # median wall over the median of the walls they predict, as `speedup` is measured; the
    # lowest low and highest high of their ranges); None when
    # the row is no model of the baseline's work (another job, or the baseline itself).
    predicted_speedup: float | None = None
    predicted_low: float | None = None
    predicted_high: float | None = None
    predicted_basis: tuple[Fact, ...] | None = None
    predicted_machine: MachineBasis | None = None

    @property
    def wall_s(self) -> float:
        return statistics.median(r.wall_s for r in self.runs)

    @property
    def wall_s_min(self) -> float:
        return min(r.wall_s for r in self.runs)

    @property
    def wall_s_max(self) -> float:
        return max(r.wall_s for r in self.runs)

    @property
    def cpu_percent(self) -> float:
        return statistics.median(r.cpu_percent for r in self.runs)

    @property
    def cpu_s(self) -> float:
        return statistics.median(r.cpu_s for r in self.runs)

    @property
    def busy_runs(self) -> int:
        return sum(r.busy for r in self.runs)

    @property
    def within_noise(self) -> bool:
        """No measurable difference from the baseline: the two rows' ranges of wall times
        overlap (equivalently, the speed-up's range holds 1.0). One run each: no spread
        measured, so never said to be noise."""
        if self.is_baseline:
            return False
        return self.speedup_low <= 1.0 <= self.speedup_high and self.speedup_low < self.speedup_high


def _target_wall_s(rec: Recording) -> float | None:
    """The launched command's own lifetime, as the recorder timed it (start to its wait()
    returning, to the millisecond) when no process of the tree outlived it by a sampling
    interval; None otherwise (attach mode, daemons, older recordings)."""
    start, exit_ = rec.meta.target_start_s, rec.meta.target_exit_s
    if start is None or exit_ is None:
        return None
    ends = rec.processes["end_s"]
    if ends.isna().any() or float(ends.max()) > exit_ + rec.interval_s:
        return None
    return max(0.0, float(exit_) - float(start))


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
    exact = _target_wall_s(rec)
    if exact is not None:
        return exact
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


def facts(rec: Recording, label: str | None = None,
          io_concurrency: int | None = None, machine: Machine | None = None) -> RunFacts:
    """The row of one recording: measured here (wall, CPU, memory) and diagnosed by
    inspector.analyze (process and thread counts, verdict, predicted speed-ups with waits
    overlapped `io_concurrency` at a time, on `machine` where given: machines())."""
    diagnosis = diagnose(rec, io_concurrency=io_concurrency, machine=machine)
    command = list(rec.meta.command)
    job, variant = job_of(command)
    if label is None:
        label = f"{job} {variant}" if job else rec.path.stem
    wall = wall_s(rec)
    cpu = cpu_seconds(rec)
    exit_code = rec.meta.exit_code
    diagnosis = replace(diagnosis, verdict=_verdict(rec, diagnosis.verdict))
    return RunFacts(
        label=label, path=rec.path, command=command, job=job, variant=variant,
        wall_s=wall, cpu_s=cpu, cpu_percent=100.0 * cpu / wall if wall > 0 else 0.0,
        processes=diagnosis.process_count, threads=diagnosis.peak_threads,
        rss_peak_bytes=rss_peak_bytes(rec),
        exit_code=int(exit_code) if exit_code is not None else None,
        verdict=diagnosis.verdict, predicted=dict(diagnosis.predicted),
        machine=diagnosis.machine)


def machines(recordings: Sequence[Recording]) -> dict[Path, Machine | None]:
    """For each recording, the machine as every calibration of the compared recordings
    made on its host measured it (each one's start and, where made, end: capacity.machine()),
    or None where that is its own calibration alone. The measured column is a median over
    runs made across the same minutes; a prediction from each recording's own 150-ms
    snapshot of a host whose pace flips read one moment instead: over the fifteen kept
    `inspector demo` runs, 73 of 90 predicted medians came within 20% of the measured ones
    from the snapshots, 79 from the calibrations together (docs/diagnosis.md)."""
    hosts: dict[tuple[str | None, int], list[Recording]] = {}
    for rec in recordings:
        hosts.setdefault((rec.meta.hostname, rec.cpu_count), []).append(rec)
    out: dict[Path, Machine | None] = {}
    for recs in hosts.values():
        found = machine([c for rec in recs
                         for c in (rec.meta.calibration, rec.meta.calibration_end)
                         if c is not None])
        for rec in recs:
            out[rec.path] = found if found is not None and found.count > 1 else None
    return out


def cluster_facts(label: str, cd: ClusterDiagnosis, summaries: Sequence[WorkerSummary],
                  command: Sequence[str]) -> RunFacts:
    """The row of a cluster judged on its workers (`compare --dask`): its recordings' span
    on one clock as the wall time, its workers' CPU, processes, peak threads and peak memory
    added up (each worker's peak: they need not have coincided), the cluster's verdict."""
    wall = cd.duration_s
    cpu = sum(s.process_cpu_s for s in summaries)
    return RunFacts(
        label=label, path=Path(label), command=list(command), job=None, variant=None,
        wall_s=wall, cpu_s=cpu, cpu_percent=100.0 * cpu / wall if wall > 0 else 0.0,
        processes=sum(w.diagnosis.process_count for w in cd.workers),
        threads=sum(w.diagnosis.peak_threads for w in cd.workers),
        rss_peak_bytes=sum(s.rss_peak_bytes for s in summaries), exit_code=cd.exit_code,
        verdict=cd.verdict)


def _verdict(rec: Recording, single: Verdict) -> Verdict:
    """A merged recording's row (many hosts or workers) carries the cluster's verdict."""
    from inspector.analyze.cluster import diagnose_cluster
    from inspector.recording.merge import is_merged

    return diagnose_cluster(rec).verdict if is_merged(rec) else single


def group_runs(runs: Sequence[RunFacts]) -> list[list[RunFacts]]:
    """Recordings of the same command together, in the order each command first appears."""
    groups: dict[tuple[str, ...], list[RunFacts]] = {}
    for run in runs:
        groups.setdefault(tuple(run.command), []).append(run)
    return list(groups.values())


def median_run(runs: Sequence[RunFacts]) -> RunFacts:
    """The run whose wall time is the median (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda r: r.wall_s)
    return ordered[(len(ordered) - 1) // 2]


def compare(groups: Sequence[Sequence[RunFacts]], baselines: Sequence[int] | None = None
            ) -> list[ComparedRun]:
    """One row per group of runs of one command: the speed-up of its median wall time against
    that of `groups[baselines[i]]` (default: the first group), with the range the runs allow.
    Labels that repeat get the recording's file name added, so every row can be told apart."""
    groups = [list(g) for g in groups if g]
    if baselines is None:
        baselines = [0] * len(groups)
    # The median run stands for its group, under the label of the group's first run.
    reps = [replace(median_run(g), label=g[0].label) for g in groups]
    labels = [r.label for r in reps]
    reps = [replace(r, label=f"{r.label} ({r.path.name})") if labels.count(r.label) > 1 else r
            for r in reps]
    out = []
    for i, (group, rep, b) in enumerate(zip(groups, reps, baselines)):
        base = [r.wall_s for r in groups[b]]
        mine = [r.wall_s for r in group]
        if b == i:
            low = mid = high = 1.0
        else:
            mid = _ratio(statistics.median(base), statistics.median(mine))
            low = _ratio(min(base), max(mine))
            high = _ratio(max(base), min(mine))
        row = ComparedRun(rep, tuple(group), reps[b].label, mid, low, high, is_baseline=b == i)
        out.append(_with_prediction(row, groups[b]) if b != i else row)
    return out


def _with_prediction(row: ComparedRun, baseline: Sequence[RunFacts]) -> ComparedRun:
    """The row with the speed-up its baseline's recordings predicted for its model."""
    model = row.facts.variant
    if model not in MODELS or row.facts.job is None \
            or any(b.job != row.facts.job for b in baseline):
        return row
    pairs = [(b, p) for b in baseline
             if isinstance(p := b.predicted.get(model), Prediction) and p.speedup > 0]
    if not pairs:
        return row
    found = [p for _, p in pairs]
    # Said as the measured one is: the baseline's median wall over the row's, here the
    # median of the walls each recording predicts for the model. On a host whose pace flips
    # run to run, the median of the ratios and the ratio of the medians part: the demo's
    # CPU threads on a quiet host, 0.91x as a median ratio, 0.70x so, 0.74x measured.
    low, high = min(p.low for p in found), max(p.high for p in found)
    mid = min(high, max(low, _ratio(statistics.median(b.wall_s for b, _ in pairs),
                                    statistics.median(b.wall_s / p.speedup
                                                      for b, p in pairs))))
    closest, prediction = min(pairs, key=lambda bp: abs(bp[1].speedup - mid))
    return replace(row, predicted_speedup=mid, predicted_low=low, predicted_high=high,
                   predicted_basis=prediction.basis, predicted_machine=closest.machine)


def _ratio(base_s: float, this_s: float) -> float:
    return base_s / this_s if this_s > 0 else 0.0


def by_job_baselines(groups: Sequence[Sequence[RunFacts]]) -> list[int]:
    """Each group against the sequential group of its own job (the demo's reading); groups of
    no known job, or of a job without a sequential group, against the first."""
    sequential: dict[str | None, int] = {
        g[0].job: i for i, g in reversed(list(enumerate(groups)))
        if g and g[0].job and g[0].variant == "sequential"}
    return [sequential.get(g[0].job, 0) if g else 0 for g in groups]
