"""`inspector demo [-o DIR] [--quick] [--repeat N] [--json]`: run the bundled reference jobs
(CPU-bound and I/O-bound, each sequential, threading, multiprocessing and asyncio) on this
machine several times, interleaved and unrecorded (recording costs differ by model), record
each job's sequential run every round (the predictions stand on those) and every other
variant once (its verdict), and put them side by side: a terminal table and one comparison
page with each variant's median and spread, its recording and report beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from inspector.errors import DemoError, UsageError
from inspector.jobs import JOBS, VARIANTS

DEFAULT_DIR = Path("recordings")

# How long each job's sequential variant should run, in seconds. The CPU job's threading and
# asyncio variants take as long again and multiprocessing about half, the I/O job's concurrent
# variants a fraction of a second. Short jobs run several times beat one long run: a median
# and a spread instead of one draw, and a burst of load elsewhere spoils one round, not the
# figure. With the recorder's start and stop (most of a second per run) and the reports, the
# default demo takes about two minutes on 2 cores and --quick about half a minute.
SEQUENTIAL_S = {"default": 3.0, "quick": 0.6}
# Runs of every variant: enough for a median that one disturbed run cannot move, and a
# min-max that says how far the machine's noise reaches, within the time above.
REPEAT = {"default": 5, "quick": 3}
# The I/O server's delay: a slow service, long enough that waiting dominates every request
# (a loopback round trip costs well under a millisecond), short enough for several rounds.
# The concurrent variants live (rounds x delay) at least 0.12 s, more than one 0.1 s sampling
# interval, so every recording sees all their threads and processes at once.
IO_DELAY_S = {"default": 0.05, "quick": 0.06}
# Python-level cost of one request (urllib, a thread switch), added to the delay when sizing.
IO_REQUEST_OVERHEAD_S = 0.003
# A run still going after this long is stuck (the longest planned one takes a few seconds).
RUN_TIMEOUT_S = 600
CALIBRATION_S = 0.2  # time spent timing the CPU job's unit of work before sizing it
# Sampling rounds a recording's work should get: a verdict needs three of its own after the
# interpreter's start, and the rounds at either end are cut by the start and the exit.
RECORDED_ROUNDS = 20
DEFAULT_INTERVAL_S = 0.1   # inspector record's default
FINEST_INTERVAL_S = 0.02   # finer, and the recorder's own reads of 17 processes crowd the work


@dataclass(frozen=True)
class DemoPlan:
    """How big each job is on this machine, how often each runs, and why."""

    mode: str                    # 'default' or 'quick'
    cpu_count: int
    cpu_size: int                # numbers in the CPU job's list
    cpu_chunk: int               # terms summed per number
    cpu_workers: int             # threads or processes: one per CPU
    seconds_per_number: float    # measured here, before sizing
    io_size: int                 # URLs fetched
    io_delay_s: float
    io_workers: int
    repeat: int = 1              # runs of every variant, interleaved A B C D A B C D ...

    def interval_s(self, job: str, variant: str) -> float:
        """The sampling interval for a recording of `variant`: its work (as planned) in
        RECORDED_ROUNDS rounds or more, within the recorder's default and its finest. The
        concurrent I/O variants work for a fraction of a second: at the default 0.1 s their
        work would be two rounds after the interpreter's start, too few to judge."""
        if job == "io" and variant != "sequential":
            planned = self.io_size / self.io_workers * self.io_delay_s
        else:  # the CPU job's variants take the sequential's time over the cores at best
            planned = SEQUENTIAL_S[self.mode] / (1 if variant == "sequential" else
                                                 max(1, self.cpu_count))
        return min(DEFAULT_INTERVAL_S, max(FINEST_INTERVAL_S, planned / RECORDED_ROUNDS))


def make_plan(quick: bool, repeat: int | None = None) -> DemoPlan:
    """Times the CPU job's unit of work here and sizes both jobs to the mode's budget."""
    from inspector.jobs import cpu_bound, io_bound

    mode = "quick" if quick else "default"
    cpus = os.cpu_count() or 1
    per_number = cpu_bound.seconds_per_number(cpu_bound.DEFAULT_CHUNK, CALIBRATION_S)
    target = SEQUENTIAL_S[mode]
    # At least a few numbers per worker, so the pool's start and its last, lone task are
    # small next to the work.
    cpu_size = max(4 * cpus, round(target / max(per_number, 1e-6)))
    delay = IO_DELAY_S[mode]
    # Requests in flight for every concurrent I/O variant (threads, processes, connections):
    # the same for all, so the comparison is between models, not limits.
    workers = io_bound.DEFAULT_WORKERS
    rounds = max(2, round(target / (delay + IO_REQUEST_OVERHEAD_S) / workers))
    return DemoPlan(mode=mode, cpu_count=cpus, cpu_size=cpu_size,
                    cpu_chunk=cpu_bound.DEFAULT_CHUNK, cpu_workers=cpus,
                    seconds_per_number=per_number, io_size=rounds * workers,
                    io_delay_s=delay, io_workers=workers,
                    repeat=repeat if repeat is not None else REPEAT[mode])


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="measure multiprocessing vs threading vs asyncio on this machine",
        description="Record a CPU-bound and an I/O-bound reference job, each sequential, with "
                    "threads, with processes and with asyncio; print how they compare and "
                    "write a comparison page, the recordings and their reports into DIR.")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="directory to write into (default: recordings/demo-TIME)")
    p.add_argument("--quick", action="store_true",
                   help="smaller jobs, 3 runs each: about 30 s instead of about 2 minutes")
    p.add_argument("--repeat", type=int, metavar="N",
                   help="runs of every variant, interleaved (default: 5; --quick: 3)")
    p.add_argument("--json", action="store_true",
                   help="print the rows as JSON (progress still goes to stderr)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inspector.analyze.capacity import machine_change
    from inspector.analyze.comparison import by_job_baselines, compare, facts, machines
    from inspector.recording import load
    from inspector.report.build import write_page
    from inspector.text.comparison import busy_sentence, format_table, noise_sentences
    from inspector.text.demo import capacity_sentence, takeaways
    from inspector.text.json import compared_data

    if args.repeat is not None and args.repeat < 1:
        raise UsageError("demo: --repeat must be at least 1")
    directory = Path(args.output) if args.output else _default_dir()
    _prepare(directory)
    say = _progress()
    plan = make_plan(args.quick, args.repeat)
    say(f"inspector demo: {plan.cpu_count} CPUs; CPU job {plan.cpu_size} numbers "
        f"({plan.seconds_per_number * 1000:.1f} ms each here), I/O job {plan.io_size} URLs "
        f"answered after {plan.io_delay_s} s; {plan.repeat} runs of each, interleaved; "
        f"writing to {directory}")
    done = run_jobs(plan, directory, say)
    recordings = {path: load(path) for runs in done for path in {r.path for r in runs}}
    machine = machines(list(recordings.values()))
    recorded = {path: facts(rec, io_concurrency=plan.io_workers, machine=machine[path])
                for path, rec in recordings.items()}
    groups = [[replace(recorded[r.path], wall_s=r.wall_s, cpu_s=r.cpu_s,
                       cpu_percent=100.0 * r.cpu_s / r.wall_s if r.wall_s > 0 else 0.0,
                       foreign_load=r.foreign_load, exit_code=0) for r in runs]
              for runs in done]
    rows = compare(groups, by_job_baselines(groups))
    for r in rows:
        _report(r.facts.path)
    busy = busy_sentence(rows)
    warnings = [busy] if busy else []
    capacity = machine_change(sorted(recordings.values(),
                                     key=lambda r: r.meta.start_time_unix or 0.0))
    if capacity is not None and capacity.changed:
        warnings.append(capacity_sentence(capacity))
    notes = noise_sentences(rows)
    said = takeaways(rows, plan)
    lead = said + notes + [f"Warning: {w}" for w in warnings]
    page = directory / "comparison.html"
    shown = [load(r.facts.path) for r in rows]
    write_page(page, "multiprocessing vs threading vs asyncio, measured on this machine",
               rows, shown, lead=tuple(lead))
    result = {"rows": [compared_data(r) for r in rows], "plan": asdict(plan),
              "python": platform.python_version(), "directory": str(directory),
              "page": str(page), "warnings": warnings, "notes": notes,
              "takeaways": said,
              "capacity_changed": capacity.changed if capacity is not None else None,
              "capacity_iterations_per_s": (list(capacity.capacities)
                                            if capacity is not None else []),
              "timed_runs": [{"job": job, "variant": variant, "started_unix": r.started_unix,
                              "wall_s": round(r.wall_s, 3), "stands_for": str(r.path),
                              "recorded": r.recorded}
                             for (job, variant), runs in zip(_order(), done) for r in runs]}
    from inspector.files import write_atomically

    write_atomically(directory / "demo.json", (json.dumps(result, indent=2) + "\n").encode(),
                     DemoError, "demo")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_table(rows))
        print()
        for sentence in lead:
            print(sentence)
    say(f"inspector demo: comparison page {page}")
    return 0


def _default_dir() -> Path:
    return DEFAULT_DIR / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"


def _prepare(directory: Path) -> None:
    from inspector.files import output_folder

    output_folder(directory, DemoError, "demo")


def _progress() -> Any:
    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)
    return say


def job_command(job: str, variant: str, plan: DemoPlan, url: str | None) -> list[str]:
    """The recorded command: the job alone, in a fresh interpreter."""
    command = [sys.executable, "-m", "inspector.jobs", job, variant]
    if job == "cpu":
        return command + ["--size", str(plan.cpu_size), "--chunk", str(plan.cpu_chunk),
                          "--workers", str(plan.cpu_workers)]
    return command + ["--size", str(plan.io_size), "--workers", str(plan.io_workers),
                      "--url", str(url)]


@dataclass(frozen=True)
class TimedRun:
    """One unrecorded run: its wall and CPU time (its whole process tree), the share of the
    machine others used meanwhile, and the recording that stands for it (its verdict)."""

    path: Path
    started_unix: float
    wall_s: float
    cpu_s: float
    foreign_load: float
    recorded: bool               # `path` was recorded in the same round, just before


def run_jobs(plan: DemoPlan, directory: Path, say: Any) -> list[list[TimedRun]]:
    """Runs every job and variant `plan.repeat` times unrecorded, interleaved (all eight,
    then all eight again) so that a change in the machine's load falls on every variant
    alike; in each round first records each job's sequential variant (the baseline whose
    recordings predict the others), and records every other variant once, in the first
    round. A recorded run is never timed: recording costs differ by model (py-spy runs one
    sampler per Python process: seventeen for the I/O job's processes). Returns per variant
    its timed runs. The I/O job's server runs here, in the demo's process, outside every
    recorded process tree."""
    from inspector.jobs.server import DelayServer

    order = _order()
    done: dict[tuple[str, str], list[TimedRun]] = {key: [] for key in order}
    warned: set[str] = set()
    with DelayServer(plan.io_delay_s) as server:
        for n in range(1, plan.repeat + 1):
            for job, variant in order:
                command = job_command(job, variant, plan, server.url if job == "io" else None)
                name = f"{job} {variant} ({n}/{plan.repeat})"
                stands_for = directory / f"{job}-{variant}-1.sqlite"
                recorded = variant == "sequential" or n == 1
                if recorded:
                    stands_for = directory / f"{job}-{variant}-{n}.sqlite"
                    _record(command, stands_for, name, say, warned,
                            plan.interval_s(job, variant))
                done[(job, variant)].append(_timed(command, stands_for, recorded, name, say))
    return [done[key] for key in order]


def _order() -> list[tuple[str, str]]:
    return [(job, variant) for job in JOBS for variant in VARIANTS]


def _timed(command: list[str], stands_for: Path, recorded: bool, name: str, say: Any
           ) -> TimedRun:
    """Runs `command` unrecorded and times it: wall by the clock around the whole process,
    CPU by what its tree used (the children's rusage), others' load from /proc/stat."""
    import resource

    from inspector.machine_load import CpuMark

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    mark = CpuMark.now()
    started_unix, started = time.time(), time.perf_counter()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise DemoError(f"demo: {name} did not finish in {RUN_TIMEOUT_S} s") from None
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode in (130, -2):
        raise KeyboardInterrupt
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or "").splitlines() if ln.strip()]
        raise DemoError(f"demo: {name} failed (exit status {proc.returncode}): "
                        f"{lines[-1] if lines else 'no message'}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    say(f"  {name:<26} ran in {wall:5.2f} s")
    return TimedRun(stands_for, started_unix, wall, cpu, mark.foreign_share(wall), recorded)


def _record(command: list[str], path: Path, name: str, say: Any, warned: set[str],
            interval_s: float = DEFAULT_INTERVAL_S) -> None:
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "inspector", "record", "-q", "--calibrate", "--calibrate-end",
             "--interval", f"{interval_s:g}", "-o", str(path), "--", *command],
            capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise DemoError(f"demo: {name} did not finish in {RUN_TIMEOUT_S} s") from None
    if proc.returncode in (130, -2):  # Ctrl-C reached the job (the recorder gave it the tty)
        raise KeyboardInterrupt
    # Without the line that says where the recording went: the job's or the recorder's words.
    lines = [ln for ln in (proc.stderr or "").splitlines()
             if ln.strip() and "recording written to" not in ln]
    if proc.returncode != 0:
        why = lines[-1] if lines else "no message"
        raise DemoError(f"demo: {name} failed (exit status {proc.returncode}): {why}")
    say(f"  {name:<26} recorded in {time.monotonic() - started:5.1f} s")
    # The recorder's warnings (no py-spy, ptrace not permitted...) hold for every run: once.
    for line in lines:
        if line not in warned:
            warned.add(line)
            say(line)


def _report(path: Path) -> None:
    from inspector.report.build import build_report

    build_report(path, path.with_suffix(".html"))
