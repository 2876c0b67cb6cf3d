"""`inspector demo [-o DIR] [--quick] [--json]`: record the bundled reference jobs (CPU-bound and
I/O-bound, each sequential, threading, multiprocessing and asyncio) on this machine and put
them side by side: a terminal table and one comparison page, with every run's recording and
report beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inspector.errors import DemoError
from inspector.jobs import JOBS, VARIANTS

if TYPE_CHECKING:
    from inspector.analyze.comparison import ComparedRun

DEFAULT_DIR = Path("recordings")

# How long each job's sequential variant should run, in seconds. The CPU job's threading and
# asyncio variants take as long again and multiprocessing about half, the I/O job's concurrent
# variants a fraction of a second; with the recorder's ~0.6 s per run and the reports, the
# default demo takes about two minutes on 2 cores and --quick about half a minute.
SEQUENTIAL_S = {"default": 18.0, "quick": 3.0}
# The I/O server's delay: a slow service (100-200 ms), long enough that waiting dominates
# every request (a loopback round trip costs well under a millisecond).
IO_DELAY_S = {"default": 0.2, "quick": 0.1}
# Python-level cost of one request (urllib, a thread switch), added to the delay when sizing.
IO_REQUEST_OVERHEAD_S = 0.003
# A run still going after this long is stuck (the longest planned one takes ~20 s).
RUN_TIMEOUT_S = 600
CALIBRATION_S = 0.2  # time spent timing the CPU job's unit of work before sizing it
# Busy machine: other programs keep at least half a core runnable on average (1-minute load
# average above cpus - 0.5), so the jobs would share the cores and the speed-ups shrink.
BUSY_SPARE_CORES = 0.5


@dataclass(frozen=True)
class DemoPlan:
    """How big each job is on this machine, and why."""

    mode: str                    # 'default' or 'quick'
    cpu_count: int
    cpu_size: int                # numbers in the CPU job's list
    cpu_chunk: int               # terms summed per number
    cpu_workers: int             # threads or processes: one per CPU
    seconds_per_number: float    # measured here, before sizing
    io_size: int                 # URLs fetched
    io_delay_s: float
    io_workers: int


def make_plan(quick: bool) -> DemoPlan:
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
                    io_delay_s=delay, io_workers=workers)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="measure multiprocessing vs threading vs asyncio on this machine",
        description="Record a CPU-bound and an I/O-bound reference job, each sequential, with "
                    "threads, with processes and with asyncio; print how they compare and "
                    "write a comparison page, the recordings and their reports into DIR.")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="directory to write into (default: recordings/demo-TIME)")
    p.add_argument("--quick", action="store_true",
                   help="smaller jobs: about 30 s instead of about 2 minutes")
    p.add_argument("--json", action="store_true",
                   help="print the rows as JSON (progress still goes to stderr)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inspector.analyze.comparison import by_job_baselines, compare, facts, format_table
    from inspector.recording import load
    from inspector.report.build import write_page

    directory = Path(args.output) if args.output else _default_dir()
    _prepare(directory)
    say = _progress()
    plan = make_plan(args.quick)
    say(f"inspector demo: {plan.cpu_count} CPUs; CPU job {plan.cpu_size} numbers "
        f"({plan.seconds_per_number * 1000:.1f} ms each here), I/O job {plan.io_size} URLs "
        f"answered after {plan.io_delay_s} s; writing to {directory}")
    warnings = []
    busy = busy_warning(plan.cpu_count)
    if busy:
        warnings.append(busy)
        say(f"inspector demo: warning: {busy}")
    paths = record_jobs(plan, directory, say)
    recordings = [load(path) for path in paths]
    runs = [facts(rec) for rec in recordings]
    rows = compare(runs, by_job_baselines(runs))
    for path in paths:
        _report(path)
    lead = takeaways(rows, plan) + [f"Warning: {w}" for w in warnings]
    page = directory / "comparison.html"
    write_page(page, "multiprocessing vs threading vs asyncio, measured on this machine",
               rows, recordings, lead=tuple(lead))
    result = {"rows": [r.to_dict() for r in rows], "plan": asdict(plan),
              "python": platform.python_version(), "directory": str(directory),
              "page": str(page), "warnings": warnings}
    (directory / "demo.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_table(rows))
        print()
        for sentence in lead:
            print(sentence)
    say(f"inspector demo: comparison page {page}")
    return 0


def busy_warning(cpus: int) -> str | None:
    """A sentence when other programs are keeping the cores busy, else None. Asked before
    the jobs run: afterwards the load average would count the demo's own jobs."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return None
    if load <= cpus - BUSY_SPARE_CORES:
        return None
    return (f"the machine was busy (load average {load:.1f} on {cpus} CPUs): other programs "
            "competed for the cores, so the speed-ups understate what it can do.")


def _default_dir() -> Path:
    return DEFAULT_DIR / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"


def _prepare(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise DemoError(f"demo: {directory} exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DemoError(f"demo: cannot create {directory}: {e.strerror or e}") from None


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


def record_jobs(plan: DemoPlan, directory: Path, say: Any) -> list[Path]:
    """Records every job and variant, one clean `inspector record` run each; the I/O job's
    server runs here, in the demo's process, outside every recorded process tree."""
    from inspector.jobs.server import DelayServer

    paths = []
    warned: set[str] = set()
    for job in JOBS:
        server = DelayServer(plan.io_delay_s).start() if job == "io" else None
        try:
            for variant in VARIANTS:
                path = directory / f"{job}-{variant}.sqlite"
                command = job_command(job, variant, plan, server.url if server else None)
                _record(command, path, f"{job} {variant}", say, warned)
                paths.append(path)
        finally:
            if server is not None:
                server.stop()
    return paths


def _record(command: list[str], path: Path, name: str, say: Any, warned: set[str]) -> None:
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "inspector", "record", "-q", "-o", str(path), "--", *command],
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
    say(f"  {name:<20} recorded in {time.monotonic() - started:5.1f} s")
    # The recorder's warnings (no py-spy, ptrace not permitted...) hold for every run: once.
    for line in lines:
        if line not in warned:
            warned.add(line)
            say(line)


def _report(path: Path) -> None:
    from inspector.report.build import build_report

    build_report(path, path.with_suffix(".html"))


def takeaways(rows: list[ComparedRun], plan: DemoPlan) -> list[str]:
    """What the numbers say, one sentence per job; the explanations only where the diagnosis
    of that very run supports them."""
    by = {(r.facts.job, r.facts.variant): r for r in rows}
    out = []
    cpu = [by.get(("cpu", v)) for v in ("multiprocessing", "threading", "asyncio")]
    if all(cpu):
        mp, th, aio = (r for r in cpu if r is not None)
        gil = " (the diagnosis: GIL-limited)" if th.facts.verdict.get("gil_limited") else ""
        out.append(
            f"CPU-bound job: {plan.cpu_workers} processes ran {mp.speedup:.1f}x as fast as "
            f"sequential, using {mp.facts.cpu_percent:.0f}% CPU (100% is one core); "
            f"{plan.cpu_workers} threads {th.speedup:.1f}x at {th.facts.cpu_percent:.0f}%{gil}; "
            f"asyncio {aio.speedup:.1f}x: its coroutines never await, so they ran one after "
            f"another on one thread.")
    io = [by.get(("io", v)) for v in ("multiprocessing", "threading", "asyncio")]
    if all(io):
        mp, th, aio = (r for r in io if r is not None)
        out.append(
            f"I/O-bound job ({plan.io_size} requests answered after {plan.io_delay_s} s each, "
            f"{plan.io_workers} at a time): threads ran {th.speedup:.1f}x and asyncio "
            f"{aio.speedup:.1f}x as fast as sequential, at {th.facts.cpu_percent:.0f}% and "
            f"{aio.facts.cpu_percent:.0f}% CPU, asyncio with {aio.facts.threads} thread; "
            f"processes {mp.speedup:.1f}x, after starting {mp.facts.processes} processes "
            f"({mp.facts.rss_peak_bytes / 2**20:.0f} MiB RSS in all, threads "
            f"{th.facts.rss_peak_bytes / 2**20:.0f} MiB).")
    return out
