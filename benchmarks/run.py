"""What recording costs the target, what the recorder costs, how accurate it is, how far the
report scales: `python benchmarks/run.py [--quick] [--only SECTION] [--targets KEYS]`.

Every figure is a median over several runs, the compared commands interleaved (ABAB...) so
that a noisy neighbour slows them alike. Markdown goes to stdout and (full runs) to
benchmarks/RESULTS.md; `--json PATH` keeps the raw numbers. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspector.machine_load import BUSY_SHARE, CpuMark
from inspector.record.pyspy import find_py_spy

HERE = Path(__file__).resolve().parent
TARGETS = HERE / "targets"
REPO = HERE.parent
DEFAULT_RESULTS = HERE / "RESULTS.md"
POLLER = HERE / "psutil_poller.py"
SECTIONS = ("slowdown", "cpu", "accuracy", "scale", "cost")

# Goals, from issue 6.
GOAL_SLOWDOWN = 1.05  # recorded / plain wall time of the target
GOAL_FLOOR_RATIO = 2.0  # recorder's /proc CPU over the cost of just reading the same files
GOAL_CPU_POINTS = 5.0  # recorded mean cpu_percent of a thread vs what it really used
# inspector's defaults, which every comparison uses too.
INTERVAL_S = 0.1
RATE_HZ = 100
# The flags inspector gives py-spy (inspector/record/runs.py), minus its runs' chunking.
PY_SPY_FLAGS = ("--subprocesses", "--threads", "--idle")
COMMAND_TIMEOUT_S = 300  # no single benchmark command runs anywhere near this long
# A run during which other processes used more than this share of the machine's CPU (/proc/stat
# busy time minus our commands' own) is set aside: on 2 shared cores one neighbour's test run
# doubles a 2-process target's time and says nothing about the recorder.
QUIET_LOAD = BUSY_SHARE


class BenchError(Exception):
    """A benchmark command failed; the message says which and why."""


@dataclass(frozen=True)
class CpuConfig:
    """An idle target for section 2: P processes x N threads, waiting or waking up often."""

    processes: int
    threads: int  # per process, main thread included
    wake_every_s: float = 0.0  # 0: threads just wait; else each wakes this often (so it ran)

    @property
    def label(self) -> str:
        wake = f", each waking every {self.wake_every_s * 1e3:.0f} ms" if self.wake_every_s else ""
        return f"{self.processes} x {self.threads}{wake}"

    def argv(self, seconds: float) -> list[str]:
        return target_argv("idle.py", "--processes", str(self.processes), "--threads",
                           str(self.threads), "--wake-every", str(self.wake_every_s),
                           "--seconds", str(seconds))


@dataclass(frozen=True)
class Sizes:
    """How big and how often: `full` for RESULTS.md, `quick` for the smoke test."""

    rounds: int  # runs per figure (its median)
    max_rounds: int  # slowdown: rounds run at most, while fewer than `rounds` were quiet
    slowdown_target_s: float  # plain wall time each slowdown target is calibrated to
    cpu_configs: tuple[CpuConfig, ...]
    cpu_window_s: float  # how long the recorder's CPU is read, mid-run
    cpu_settle_s: float  # recorder start-up (imports, first py-spy run) left out of the window
    cpu_align: bool  # line the window up with py-spy runs being reaped (costs up to 2 chunks)
    floor_rounds: int  # tight-loop rounds per floor measurement
    floor_paced_rounds: int  # rounds one interval apart per paced floor measurement
    duty_s: float  # how long each duty-cycle thread burns
    children_per_lifetime: int
    scale_durations_s: tuple[float, ...]
    cost_target_s: float = 4.0  # section 5: each target's plain wall time (issue 13: 4 s)
    cost_short_s: float = 1.0  # section 5: the short target the whole command is timed on
    cost_short_rounds: int = 5  # section 5: pairs the short target is timed in (at least)
    growth_factor: int = 8  # section 5: how many times longer the run measuring growth is
    empty_rounds: int = 3  # section 5: recordings of a program doing nothing (their median)


FULL = Sizes(rounds=5, max_rounds=12, slowdown_target_s=2.5,
             cpu_configs=(CpuConfig(1, 1), CpuConfig(1, 50), CpuConfig(1, 200), CpuConfig(8, 8),
                          CpuConfig(1, 50, wake_every_s=0.01)),
             cpu_window_s=3.0, cpu_settle_s=1.0, cpu_align=True,
             floor_rounds=300, floor_paced_rounds=20,
             duty_s=4.0, children_per_lifetime=20, scale_durations_s=(60.0, 600.0, 3600.0))
# Every section and every figure of it, at the least that still runs each code path once: a
# run's fixed costs (an interpreter, the recorder's start and stop, py-spy's) are most of it.
# Slowdown targets stay 0.2 s: calibrated to 0.1 s, some came out at 0.03 s, and py-spy
# (blocking) failed on one of them in 2 of 7 runs on a loaded machine.
QUICK = Sizes(rounds=1, max_rounds=1, slowdown_target_s=0.2,
              cpu_configs=(CpuConfig(1, 4), CpuConfig(2, 2, wake_every_s=0.01)),
              cpu_window_s=0.3, cpu_settle_s=0.5, cpu_align=False,
              floor_rounds=20, floor_paced_rounds=3,
              duty_s=1.0, children_per_lifetime=1, scale_durations_s=(5.0,),
              cost_target_s=0.2, cost_short_s=0.2, cost_short_rounds=2, growth_factor=2,
              empty_rounds=1)


# -- running commands ---------------------------------------------------------------------

@dataclass
class RunResult:
    command_wall_s: float
    report: dict[str, Any]
    foreign_load: float  # share of the machine's CPU that others used meanwhile (0..1)


def run_command(argv: Sequence[str], report_path: Path | None, label: str,
                timeout_s: float = COMMAND_TIMEOUT_S) -> RunResult:
    """Runs argv to completion, its output discarded; returns its wall time and the
    target's self-report (the JSON a target in benchmarks/targets writes)."""
    if report_path is not None:
        report_path.unlink(missing_ok=True)
    with tempfile.TemporaryFile() as err:
        mark = CpuMark.now()
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise BenchError(f"{label}: timed out after {timeout_s:.0f} s") from None
        wall = time.perf_counter() - t0
        foreign = mark.foreign_share(wall)
        if code != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-1:]
            raise BenchError(f"{label}: exit status {code}: {' '.join(tail)}")
    report: dict[str, Any] = {}
    if report_path is not None:
        try:
            report = json.loads(report_path.read_text())
        except (OSError, ValueError) as e:
            raise BenchError(f"{label}: the target wrote no report ({e})") from None
    return RunResult(wall, report, foreign)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def inspector_record(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "inspector", "record", "-q", "-o", str(out), *extra, "--"]


def target_argv(script: str, *args: str, report: Path | None = None) -> list[str]:
    argv = [sys.executable, str(TARGETS / script), *args]
    return argv + ["--report", str(report)] if report is not None else argv


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- 1. target slowdown -------------------------------------------------------------------

@dataclass(frozen=True)
class SlowdownTarget:
    key: str
    label: str
    script: str
    args: tuple[str, ...]
    calibration_work: int  # a first guess, scaled to Sizes.slowdown_target_s


SLOWDOWN_TARGETS = (
    SlowdownTarget("1-thread", "1 CPU thread", "cpu_threads.py", ("--threads", "1"), 5000),
    SlowdownTarget("50-threads", "50 CPU threads (GIL-bound)", "cpu_threads.py",
                   ("--threads", "50"), 5000),
    SlowdownTarget("200-threads", "200 CPU threads (GIL-bound)", "cpu_threads.py",
                   ("--threads", "200"), 5000),
    SlowdownTarget("pool-2", "2-process pool on 2 cores", "pool.py", ("--processes", "2"), 5000),
    SlowdownTarget("io", "I/O-bound: 8 threads calling a 0.5 ms loopback TCP server", "io_bound.py",
                   ("--clients", "8"), 25000),
)


def slowdown_commands(py_spy: str | None, tmp: Path
                      ) -> dict[str, Callable[[list[str]], list[str]]]:
    """How each compared command wraps a target's argv."""
    rec = tmp / "rec.sqlite"
    raw = tmp / "py-spy.txt"
    commands: dict[str, Callable[[list[str]], list[str]]] = {
        "plain": lambda argv: argv,
        "inspector": lambda argv: inspector_record(rec) + argv,
    }
    if py_spy is not None:
        base = [py_spy, "record", "-r", str(RATE_HZ), *PY_SPY_FLAGS, "-f", "raw", "-o", str(raw)]
        commands["py-spy blocking"] = lambda argv: [*base, "--", *argv]
        commands["py-spy nonblocking"] = lambda argv: [*base, "--nonblocking", "--", *argv]
    commands["psutil poll"] = lambda argv: [sys.executable, str(POLLER), "--interval",
                                            str(INTERVAL_S), "--", *argv]
    return commands


def calibrate(t: SlowdownTarget, seconds: float, tmp: Path) -> int:
    """The work that makes the plain target run about `seconds` on this machine."""
    report = tmp / "calibrate.json"
    work = t.calibration_work
    for _ in range(3):
        r = run_command(target_argv(t.script, *t.args, "--work", str(work), report=report),
                        report, f"calibrating {t.key}")
        wall = r.report["wall_s"]
        scaled = max(1, int(work * seconds / max(wall, 1e-3)))
        if 0.8 <= wall / seconds <= 1.25:
            return scaled
        work = scaled
    return work


def bench_slowdown(sizes: Sizes, keys: Sequence[str] | None, log: Callable[[str], None]
                   ) -> dict[str, Any]:
    py_spy = find_py_spy()
    targets = [t for t in SLOWDOWN_TARGETS if keys is None or t.key in keys]
    rows = []
    with tempfile.TemporaryDirectory(prefix="inspector-bench-") as d:
        tmp = Path(d)
        commands = slowdown_commands(py_spy, tmp)
        names = list(commands)
        report = tmp / "report.json"
        for t in targets:
            work = calibrate(t, sizes.slowdown_target_s, tmp)
            argv = target_argv(t.script, *t.args, "--work", str(work), report=report)
            rounds: list[dict[str, RunResult]] = []
            # Runs during which others kept the machine busy are set aside (QUIET_LOAD); more
            # rounds are run, up to max_rounds, until every command has enough quiet runs.
            while (len(rounds) < sizes.rounds
                   or (min(len(_quiet(rounds, n)) for n in names) < sizes.rounds
                       and len(rounds) < sizes.max_rounds)):
                r = len(rounds)
                order = names[r % len(names):] + names[:r % len(names)]  # rotate: no fixed slot
                rounds.append({name: run_command(commands[name](argv), report,
                                                 f"{t.key} under {name}") for name in order})
            enough = min(sizes.rounds, 3)
            all_quiet = all(len(_quiet(rounds, n)) >= enough for n in names)
            used = {n: _quiet(rounds, n) if all_quiet else [rnd[n] for rnd in rounds]
                    for n in names}

            def series(name: str, get: Callable[[RunResult], float],
                       of: list[dict[str, RunResult]]) -> list[float]:
                return [get(rnd[name]) for rnd in of]

            def wall(x: RunResult) -> float:
                return float(x.report["wall_s"])

            def cpu(x: RunResult) -> float:
                return float(x.report["cpu_s"])

            def command(x: RunResult) -> float:
                return x.command_wall_s

            row: dict[str, Any] = {
                "key": t.key, "label": t.label, "work": work,
                "runs": min(len(v) for v in used.values()),
                "rounds_run": len(rounds), "used_quiet_rounds": all_quiet,
                "quiet_runs": {n: len(_quiet(rounds, n)) for n in names},
                "plain_target_s": median([wall(x) for x in used["plain"]]),
                "plain_command_s": median([command(x) for x in used["plain"]]), "ratios": {}}
            for name in names[1:]:
                row["ratios"][name] = {
                    kind: _ratio(rounds, used, name, get)
                    for kind, get in (("target", wall), ("command", command),
                                      ("target_cpu", cpu))}
            row["target_s"] = {n: series(n, wall, rounds) for n in names}
            row["cpu_s"] = {n: series(n, cpu, rounds) for n in names}
            row["command_s"] = {n: series(n, command, rounds) for n in names}
            row["foreign_load"] = {n: series(n, lambda x: x.foreign_load, rounds)
                                   for n in names}
            rows.append(row)
            log(f"slowdown {t.key}: " + ", ".join(
                f"{n} {row['ratios'][n]['target']['median']:.3f}x" for n in names[1:]))
    return {"py_spy": py_spy is not None, "commands": names[1:], "rows": rows}


def _quiet(rounds: list[dict[str, RunResult]], name: str) -> list[RunResult]:
    return [rnd[name] for rnd in rounds if rnd[name].foreign_load <= QUIET_LOAD]


def _ratio(rounds: list[dict[str, RunResult]], used: dict[str, list[RunResult]], name: str,
           get: Callable[[RunResult], float]) -> dict[str, float]:
    """`name` against plain: the ratio of the medians and of the fastest runs (of the runs
    used), and the range of the ratios within a round (rounds where both runs are used)."""
    values = [get(x) for x in used[name]]
    plain = [get(x) for x in used["plain"]]
    chosen = {id(x) for x in used[name]} | {id(x) for x in used["plain"]}
    paired = [get(rnd[name]) / get(rnd["plain"]) for rnd in rounds
              if id(rnd[name]) in chosen and id(rnd["plain"]) in chosen] or [float("nan")]
    return {"median": median(values) / median(plain), "min": min(paired), "max": max(paired),
            "best": min(values) / min(plain)}


# -- 2. the recorder's own CPU ------------------------------------------------------------

def _schedstat_ns(pid: int) -> dict[str, int]:
    """CPU time of each live thread of pid, in ns (schedstat is exact, stat is in ticks)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                out[tid] = int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def _cpu_between_ns(before: dict[str, int], after: dict[str, int]) -> int:
    """The threads' CPU between two readings: a thread that ended in between takes its whole
    time with it (a plain sum then went negative on a busy machine), so only threads alive at
    the end count, each from the first reading or, born in between, from its birth."""
    return sum(ns - before.get(tid, 0) for tid, ns in after.items())


def _reaped_children_s(pid: int) -> float:
    """CPU of the children pid has waited for (cutime + cstime): its finished py-spy runs."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[13]) + int(rest[14])) / os.sysconf("SC_CLK_TCK")


def _wait_for_reap(pid: int, after: float, limit_s: float) -> float:
    """Waits until pid reaps a child (its children's CPU goes up) or limit_s passes, so a
    window begins and ends just after a py-spy run is folded in, not at a random point."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        now = _reaped_children_s(pid)
        if now != after:
            return now
        time.sleep(0.005)
    return _reaped_children_s(pid)


def measure_recorder_cpu(config: CpuConfig, stacks: bool, sizes: Sizes, tmp: Path
                         ) -> dict[str, float]:
    """Records an idle target and reads the recorder's CPU over a window mid-run."""
    settle_s, window_s = sizes.cpu_settle_s, sizes.cpu_window_s
    align_s = 1.1 if stacks and sizes.cpu_align else 0.0  # up to one py-spy chunk
    seconds = settle_s + 2 * align_s + window_s + 0.5
    rec = tmp / "cpu.sqlite"
    extra = () if stacks else ("--no-stacks",)
    argv = inspector_record(rec, *extra) + config.argv(seconds)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        time.sleep(settle_s)
        kids0 = _reaped_children_s(proc.pid)
        if align_s:
            kids0 = _wait_for_reap(proc.pid, kids0, align_s)
        t0, own0 = time.monotonic(), _schedstat_ns(proc.pid)
        time.sleep(window_s)
        kids1 = _reaped_children_s(proc.pid)
        if align_s:
            kids1 = _wait_for_reap(proc.pid, kids1, align_s)
        t1, own1 = time.monotonic(), _schedstat_ns(proc.pid)
        _, err = proc.communicate(timeout=COMMAND_TIMEOUT_S)
    except BaseException:
        _kill_group(proc)
        raise
    if proc.returncode != 0:
        raise BenchError(f"recorder CPU run ({config.label}): exit status {proc.returncode}: "
                         f"{err.decode(errors='replace').strip()[-200:]}")
    span = t1 - t0
    return {"own_ms_per_s": _cpu_between_ns(own0, own1) / 1e6 / span,
            "py_spy_ms_per_s": (kids1 - kids0) * 1e3 / span, "window_s": span}


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for tid in os.listdir(f"/proc/{p}/task"):
            with open(f"/proc/{p}/task/{tid}/children") as f:
                todo.extend(int(x) for x in f.read().split())
    return out


def measure_floor(config: CpuConfig, rounds: int, paced_rounds: int, repeats: int
                  ) -> dict[str, float]:
    """The least a /proc sampler can spend: pread of already-open stat, syscall, schedstat
    per thread and stat, status, io per process; nothing parsed or stored. Both in a tight
    loop and paced, one round per interval as a sampler runs (slower: after 0.1 s asleep,
    the caches are cold)."""
    proc = subprocess.Popen(config.argv(600), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, start_new_session=True)
    fds: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            pids = _tree(proc.pid)
            n = sum(len(os.listdir(f"/proc/{p}/task")) for p in pids)
            if len(pids) == config.processes and n == config.processes * config.threads:
                break
            if time.monotonic() > deadline:
                raise BenchError(f"floor: idle target never reached {config.label}")
            time.sleep(0.05)
        for p in pids:
            fds += [os.open(f"/proc/{p}/{name}", os.O_RDONLY) for name in ("stat", "status", "io")]
            for tid in os.listdir(f"/proc/{p}/task"):
                fds += [os.open(f"/proc/{p}/task/{tid}/{name}", os.O_RDONLY)
                        for name in ("stat", "syscall", "schedstat")]
        tight, paced = [], []
        pread = os.pread
        for _ in range(repeats):
            c0 = time.thread_time()
            for _ in range(rounds):
                for fd in fds:
                    pread(fd, 4096, 0)
            tight.append((time.thread_time() - c0) / rounds)
            cpu = 0.0
            for _ in range(paced_rounds):
                time.sleep(INTERVAL_S)
                c0 = time.thread_time()
                for fd in fds:
                    pread(fd, 4096, 0)
                cpu += time.thread_time() - c0
            paced.append(cpu / paced_rounds)
    finally:
        for fd in fds:
            os.close(fd)
        _kill_group(proc)
    return {"tight_ms_per_s": median(tight) * 1e3 / INTERVAL_S,
            "paced_ms_per_s": median(paced) * 1e3 / INTERVAL_S}


def bench_cpu(sizes: Sizes, log: Callable[[str], None]) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="inspector-bench-") as d:
        tmp = Path(d)
        for config in sizes.cpu_configs:
            runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
            for r in range(sizes.rounds):
                for stacks in ((False, True) if r % 2 == 0 else (True, False)):
                    runs[stacks].append(measure_recorder_cpu(config, stacks, sizes, tmp))
            floor = measure_floor(config, sizes.floor_rounds, sizes.floor_paced_rounds,
                                  max(sizes.rounds, 3))
            proc_only = median([x["own_ms_per_s"] for x in runs[False]])
            own = median([x["own_ms_per_s"] for x in runs[True]])
            py_spy = median([x["py_spy_ms_per_s"] for x in runs[True]])
            row: dict[str, Any] = {
                "label": config.label, "processes": config.processes,
                "threads_per_process": config.threads,
                "threads": config.processes * config.threads,
                "wake_every_s": config.wake_every_s, "runs": sizes.rounds,
                "no_stacks_ms_per_s": proc_only,
                "floor_ms_per_s": floor["tight_ms_per_s"],
                "floor_paced_ms_per_s": floor["paced_ms_per_s"],
                "floor_ratio": proc_only / floor["tight_ms_per_s"],
                "floor_paced_ratio": proc_only / floor["paced_ms_per_s"],
                "default_own_ms_per_s": own, "default_py_spy_ms_per_s": py_spy,
                "default_total_ms_per_s": own + py_spy,
                "raw": {"no_stacks": runs[False], "default": runs[True]},
            }
            rows.append(row)
            log(f"cpu {config.label}: no-stacks {proc_only:.2f} ms/s, floor "
                f"{floor['tight_ms_per_s']:.2f} (paced {floor['paced_ms_per_s']:.2f}) ms/s, "
                f"default own {own:.2f} + py-spy {py_spy:.2f} ms/s")
    return {"rows": rows, "fit": _fit_costs([r for r in rows if not r["wake_every_s"]])}


def _fit_costs(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]] | None:
    """Least squares: ms/s = fixed + per_process * P + per_thread * threads."""
    try:
        import numpy as np
    except ImportError:
        return None
    if len(rows) < 3:
        return None
    a = np.array([[1.0, r["processes"], r["threads"]] for r in rows])
    out = {}
    for key in ("no_stacks_ms_per_s", "floor_ms_per_s", "floor_paced_ms_per_s",
                "default_own_ms_per_s", "default_py_spy_ms_per_s"):
        coef = np.linalg.lstsq(a, np.array([r[key] for r in rows]), rcond=None)[0]
        out[key] = {"fixed": float(coef[0]), "per_process": float(coef[1]),
                    "per_thread": float(coef[2])}
    return out


# -- 3. accuracy ----------------------------------------------------------------------------

def _load(path: Path) -> Any:
    try:
        import inspector
    except ImportError:
        sys.path.insert(0, str(REPO))
        import inspector
    return inspector.load(path)


def bench_accuracy(sizes: Sizes, log: Callable[[str], None]) -> dict[str, Any]:
    duty_rows: dict[int, dict[str, list[float]]] = {}
    children: dict[float, list[int]] = {}  # lifetime -> [captured, born]
    missed: list[dict[str, float]] = []  # children of 2+ intervals the recording lacks
    with tempfile.TemporaryDirectory(prefix="inspector-bench-") as d:
        tmp = Path(d)
        rec, report = tmp / "acc.sqlite", tmp / "acc.json"
        for r in range(sizes.rounds):
            res = run_command(inspector_record(rec) + target_argv(
                "duty.py", "--seconds", str(sizes.duty_s), report=report), report,
                "duty-cycle threads under inspector")
            recording = _load(rec)
            ts = recording.thread_samples
            for t in res.report["threads"]:
                mine = ts[(ts.pid == res.report["pid"]) & (ts.tid == t["tid"])]
                recorded = float(mine["cpu_percent"].dropna().mean())
                row = duty_rows.setdefault(t["duty_percent"],
                                           {"recorded": [], "actual": [], "samples": []})
                row["recorded"].append(recorded)
                row["actual"].append(t["cpu_percent"])
                row["samples"].append(float(mine["cpu_percent"].notna().sum()))
            res = run_command(inspector_record(rec) + target_argv(
                "children.py", "--count", str(sizes.children_per_lifetime), "--seed", str(r),
                report=report), report, "short-lived children under inspector")
            recording = _load(rec)
            seen = set(recording.processes["pid"].astype(int))
            ticks = sorted(set(recording.process_samples["t_s"]))
            t0_unix = recording.meta.start_time_unix or 0.0
            for c in res.report["children"]:
                tally = children.setdefault(c["lifetime_s"], [0, 0])
                tally[0] += int(c["pid"] in seen)
                tally[1] += 1
                if c["pid"] not in seen and c["lifetime_s"] >= 2 * INTERVAL_S:
                    born = c["born_unix"] - t0_unix
                    missed.append({"lifetime_s": c["lifetime_s"], "born_s": born,
                                   "tick_gap_s": _largest_gap(ticks, born,
                                                              born + c["lifetime_s"])})
    duty = []
    for pct in sorted(duty_rows):
        row = duty_rows[pct]
        errors = [a - b for a, b in zip(row["recorded"], row["actual"])]
        duty.append({"duty_percent": pct, "recorded_percent": median(row["recorded"]),
                     "actual_percent": median(row["actual"]),
                     "error_points": median(errors),
                     "worst_error_points": max(errors, key=abs),
                     "samples_per_run": median(row["samples"]), "runs": len(errors),
                     "seconds": sizes.duty_s, "raw": row})
        log(f"accuracy duty {pct}%: recorded {duty[-1]['recorded_percent']:.1f}, actual "
            f"{duty[-1]['actual_percent']:.1f}")
    kids = [{"lifetime_s": life, "captured": c, "born": n,
             "intervals": life / INTERVAL_S} for life, (c, n) in sorted(children.items())]
    log("accuracy children: " + ", ".join(f"{k['lifetime_s']} s {k['captured']}/{k['born']}"
                                          for k in kids))
    return {"duty": duty, "children": kids, "missed": missed, "runs": sizes.rounds}


def _largest_gap(ticks: list[float], start: float, end: float) -> float:
    """The longest time between the recorder's ticks across [start, end]: a child that
    lived 2 intervals can only be missed if the sampler fell that far behind."""
    before = [t for t in ticks if t <= start][-1:]
    inside = [t for t in ticks if start < t < end]
    after = [t for t in ticks if t >= end][:1]
    points = before + inside + after
    return max((b - a for a, b in zip(points, points[1:])), default=float("inf"))


# -- 4. report scale ------------------------------------------------------------------------

def bench_scale(sizes: Sizes, log: Callable[[str], None]) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    try:
        import report_scale  # benchmarks/report_scale.py, owned by the report's author
    except ImportError as e:
        return {"available": False, "reason": f"benchmarks/report_scale.py not importable: {e}"}
    finally:
        sys.path.remove(str(HERE))
    rows = []
    for duration in sizes.scale_durations_s:
        result = report_scale.measure(duration)
        rows.append({"duration_s": duration, **result})
        log(f"scale {duration:.0f} s: {result}")
    return {"available": True, "rows": rows}


# -- the machine ------------------------------------------------------------------------------

# -- 5. what recording costs, side by side (issue 13) -------------------------------------------

@dataclass(frozen=True)
class CostTarget:
    key: str
    label: str
    script: str
    args: tuple[str, ...]
    calibration_work: int  # 0: the target runs for --seconds instead of a calibrated --work
    busy_threads: tuple[str, ...] = ()  # names of the threads that compute (hot functions)


COST_TARGETS = (
    CostTarget("1-thread", "1 pure-Python thread", "cpu_threads.py", ("--threads", "1"), 5000,
               ("worker-0",)),
    CostTarget("50-threads", "50 GIL-bound threads", "cpu_threads.py", ("--threads", "50"),
               5000, tuple(f"worker-{i}" for i in range(50))),
    CostTarget("1+50-waiting", "1 computing + 50 threads in Event.wait()", "cpu_threads.py",
               ("--threads", "1", "--waiters", "50"), 5000, ("worker-0",)),
    CostTarget("pool-2", "2-process pool on 2 cores", "pool.py", ("--processes", "2"), 5000),
    CostTarget("200-threads", "200 GIL-bound threads", "cpu_threads.py", ("--threads", "200"),
               5000, tuple(f"worker-{i}" for i in range(200))),
    CostTarget("8x8", "8 processes x 8 waiting threads", "idle.py",
               ("--processes", "8", "--threads", "8"), 0),
)
GOAL_COST_WALL = 1.03  # issue 13: target wall under inspector / plain
GOAL_COST_CORES = 0.05  # issue 13: recorder + everything it launches, mean, in cores
GOAL_COST_COMMAND_S = 0.15  # issue 13: whole command over plain on a 1-s target
GOAL_COST_BYTES = 200  # issue 13: recording bytes per thread per second
# Issue 25: the 200 bytes hold "as a recording grows": each target is also recorded once
# Sizes.growth_factor times as long, and the growth between the two lengths is over the
# thread-seconds it added (a 4-s file is mostly SQLite's pages, each table's rounded up to 4
# KiB, and the stack texts of whatever py-spy caught of the start-up: 1-20 KB, a run's luck;
# 8x: 28 s more).
HOT_FUNCTION = "burn"  # the function every computing thread of the targets spends its time in


def _recording_cost(path: Path, busy: Sequence[str]) -> dict[str, Any]:
    """What one inspector run's recording says it cost, and what its stacks hold."""
    import sqlite3
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        meta = {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta")}
        duration = float(meta.get("duration_s") or 0.0)
        thread_s = db.execute(
            "SELECT SUM(MIN(COALESCE(end_s, ?), ?) - MAX(start_s, 0)) FROM threads",
            (duration, duration)).fetchone()[0] or 0.0
        per_thread: dict[str, tuple[int, str | None]] = {}
        # stack spans and machine samples are blocks since format 3: load() reads them
        rec = _load(path) if busy or not meta.get("recorder_cpu") else None
        if busy and rec is not None and not rec.stacks.empty:
            # named as the threads table names them (a span's own thread_name is left out
            # where py-spy's name could be stale)
            spans = rec.stacks[["proc_id", "tid", "samples", "stack"]].merge(
                rec.threads[["proc_id", "tid", "name"]].dropna(), on=["proc_id", "tid"])
            sums = spans.groupby(["proc_id", "tid", "name", "stack"], observed=True
                                 )["samples"].sum()
            by_thread: dict[str, dict[str, int]] = {}
            for (_proc, _tid, name, text), samples in sums.items():
                leaf = str(text).rsplit(";", 1)[-1].split(" (", 1)[0]
                funcs = by_thread.setdefault(str(name), {})
                funcs[leaf] = funcs.get(leaf, 0) + int(samples)
            for name in busy:
                funcs = by_thread.get(name, {})
                top = max(funcs, key=lambda f: funcs[f]) if funcs else None
                per_thread[name] = (sum(funcs.values()), top)
        cpu = meta.get("recorder_cpu") or {}
        if not cpu and rec is not None:  # a recorder from before meta recorder_cpu: its
            # per-tick rows, over time
            ms = rec.machine_samples
            ticks = list(zip(ms["t_s"].tolist(), ms["recorder_cores"].tolist()))
            spans_s = [(t1 - t0, c) for (t0, _), (t1, c) in zip(ticks, ticks[1:]) if t1 > t0]
            if spans_s:
                cpu = {"mean_cores": sum(dt * c for dt, c in spans_s)
                       / sum(dt for dt, _ in spans_s)}
    finally:
        db.close()
    stacks = meta.get("stacks") or {}
    return {
        "recorder_cores": cpu.get("mean_cores"), "own_cores": cpu.get("own_cores"),
        "py_spy_cores": cpu.get("py_spy_cores"), "bytes": path.stat().st_size,
        "thread_s": thread_s, "rate_hz_used": stacks.get("rate_hz_used"),
        "busy_samples": [n for n, _ in per_thread.values()],
        "busy_named": sum(1 for _, top in per_thread.values() if top == HOT_FUNCTION),
        "busy_threads": len(per_thread),
    }


BASELINE = "inspector before"  # section 5's name for --baseline's inspector


def _recording_size(path: Path, record: Callable[[list[str]], list[str]]) -> int:
    """The size of a recording of a Python program that does nothing."""
    run_command(record([sys.executable, "-c", "pass"]), None, "an empty recording")
    return path.stat().st_size


def bench_cost(sizes: Sizes, log: Callable[[str], None], baseline: Path | None = None
               ) -> dict[str, Any]:
    """Each target plain, under inspector at its defaults and under py-spy --nonblocking
    alone, interleaved; the recorder's CPU from each recording's meta; the file's size per
    thread-second; and the whole command on a short target."""
    py_spy = find_py_spy()
    rows = []
    with tempfile.TemporaryDirectory(prefix="inspector-cost-") as d:
        tmp = Path(d)
        rec, raw, report = tmp / "rec.sqlite", tmp / "py-spy.txt", tmp / "report.json"
        commands: dict[str, Callable[[list[str]], list[str]]] = {
            "plain": lambda argv: argv,
            "inspector": lambda argv: inspector_record(rec) + argv}
        if py_spy is not None:
            commands["py-spy nonblocking"] = lambda argv: [
                py_spy, "record", "-r", str(RATE_HZ), *PY_SPY_FLAGS, "--nonblocking", "-f",
                "raw", "-o", str(raw), "--", *argv]
        if baseline is not None:  # an older inspector package, ahead on the path; `-m`
            # would put the working directory first (this repository's inspector, when run
            # from it), which -P (3.11+) leaves out
            no_cwd = ["-P"] if sys.version_info >= (3, 11) else []
            commands[BASELINE] = lambda argv: [
                "env", f"PYTHONPATH={baseline}", sys.executable, *no_cwd,
                *inspector_record(rec)[1:], *argv]
        names = list(commands)
        # What any recording holds whatever its length (SQLite's pages for each table and
        # index, the schema, meta): a recording of a program that does nothing. The bytes per
        # thread-second are counted over it: a 4-s target's file is mostly this. Files grow
        # by whole 4-KiB pages, so a tiny target's can come out a page smaller than the empty
        # one (seen in a --quick run): that is no growth, not a negative one.
        fixed_bytes = median([_recording_size(rec, commands["inspector"])
                              for _ in range(sizes.empty_rounds)])
        before_fixed_bytes = (median([_recording_size(rec, commands[BASELINE])
                                      for _ in range(sizes.empty_rounds)])
                              if BASELINE in commands else 0)
        for t in COST_TARGETS:
            if t.calibration_work:
                work = calibrate(SlowdownTarget(t.key, t.label, t.script, t.args,
                                                t.calibration_work),
                                 sizes.cost_target_s, tmp)
                argv = target_argv(t.script, *t.args, "--work", str(work), report=report)
                longer = target_argv(t.script, *t.args, "--work",
                                     str(work * sizes.growth_factor), report=report)
            else:
                argv = target_argv(t.script, *t.args, "--seconds", str(sizes.cost_target_s),
                                   report=report)
                longer = target_argv(t.script, *t.args, "--seconds",
                                     str(sizes.cost_target_s * sizes.growth_factor),
                                     report=report)
            rounds: list[dict[str, RunResult]] = []
            costs: list[dict[str, Any]] = []
            before: list[dict[str, Any]] = []
            long_costs: dict[str, dict[str, Any]] = {}
            for r in range(sizes.rounds):
                order = names[r % len(names):] + names[:r % len(names)]
                rnd = {}
                for name in order:
                    rnd[name] = run_command(commands[name](argv), report,
                                            f"{t.key} under {name}")
                    if name == "inspector":
                        costs.append(_recording_cost(rec, t.busy_threads))
                    elif name == BASELINE:
                        before.append(_recording_cost(rec, t.busy_threads))
                rounds.append(rnd)
            for name in ("inspector", BASELINE):
                if name in commands:
                    run_command(commands[name](longer), report,
                                f"{t.key} under {name}, {sizes.growth_factor}x as long")
                    long_costs[name] = _recording_cost(rec, ())
            used = {n: [rnd[n] for rnd in rounds] for n in names}

            def wall(x: RunResult) -> float:
                return float(x.report["wall_s"])

            def command(x: RunResult) -> float:
                return x.command_wall_s

            def grown(c: dict[str, Any], fixed: float = fixed_bytes) -> float:
                """Bytes per thread-second over the empty recording's file."""
                return max(c["bytes"] - fixed, 0) / c["thread_s"]

            def growth(name: str, short: list[dict[str, Any]],
                       long_costs: dict[str, dict[str, Any]] = long_costs) -> float | None:
                """Bytes per thread-second from the short runs (medians) to the long one."""
                c = long_costs.get(name)
                if c is None or not short:
                    return None
                d_t = c["thread_s"] - median([x["thread_s"] for x in short])
                return (c["bytes"] - median([x["bytes"] for x in short])) / d_t \
                    if d_t > 0 else None

            def med(key: str, costs: list[dict[str, Any]] = costs) -> float:
                return median([c[key] for c in costs if c[key] is not None])

            row: dict[str, Any] = {
                "key": t.key, "label": t.label, "runs": len(rounds),
                "plain_target_s": median([wall(x) for x in used["plain"]]),
                "ratios": {n: {"target": _ratio(rounds, used, n, wall),
                               "command": _ratio(rounds, used, n, command)}
                           for n in names[1:]},
                "recorder_cores": med("recorder_cores"), "own_cores": med("own_cores"),
                "py_spy_cores": med("py_spy_cores"),
                "bytes_per_thread_s": median([grown(c) for c in costs if c["thread_s"] > 0]),
                "rate_hz_used": median([c["rate_hz_used"] for c in costs
                                        if c["rate_hz_used"] is not None]),
                "busy_threads": max((c["busy_threads"] for c in costs), default=0),
                "busy_named": min((c["busy_named"] for c in costs), default=0),
                "busy_samples_min": min((min(c["busy_samples"], default=0) for c in costs),
                                        default=0),
                "foreign_load": {n: [rnd[n].foreign_load for rnd in rounds] for n in names},
                "costs": costs, "before": before,
                "before_cores": median([c["recorder_cores"] for c in before
                                        if c["recorder_cores"] is not None]),
                "before_bytes_per_thread_s": median([grown(c, before_fixed_bytes)
                                                     for c in before if c["thread_s"] > 0]),
                "growth_bytes_per_thread_s": growth("inspector", costs),
                "before_growth_bytes_per_thread_s": growth(BASELINE, before),
                "long_costs": long_costs,
            }
            rows.append(row)
            log(f"cost {t.key}: inspector {row['ratios']['inspector']['target']['median']:.3f}x"
                f", recorder {row['recorder_cores']:.3f} cores, "
                f"{row['bytes_per_thread_s']:.0f} B/thread/s,"
                f" growing {_bytes(row['growth_bytes_per_thread_s'])}")
        # the whole command on a short target: plain, then inspector, interleaved
        work = calibrate(SlowdownTarget("short", "short", "cpu_threads.py", ("--threads", "1"),
                                        5000), sizes.cost_short_s, tmp)
        argv = target_argv("cpu_threads.py", "--threads", "1", "--work", str(work))
        short_names = ["plain", "inspector"] + ([BASELINE] if baseline is not None else [])
        short: dict[str, list[float]] = {n: [] for n in short_names}
        for r in range(max(sizes.rounds, sizes.cost_short_rounds)):
            for name in short_names[r % len(short_names):] + short_names[:r % len(short_names)]:
                short[name].append(run_command(commands[name](argv), None,
                                               f"short target under {name}").command_wall_s)
        extra = [i - p for i, p in zip(short["inspector"], short["plain"])]
        before_extra = [i - p for i, p in zip(short.get(BASELINE, []), short["plain"])]
    return {"py_spy": py_spy is not None, "commands": names[1:], "rows": rows,
            "fixed_bytes": fixed_bytes, "before_fixed_bytes": before_fixed_bytes,
            "baseline": str(baseline) if baseline else None,
            "growth_factor": sizes.growth_factor,
            "short": {"plain_s": median(short["plain"]),
                      "inspector_s": median(short["inspector"]),
                      "extra_s": median(extra), "extra_min_s": min(extra),
                      "extra_max_s": max(extra), "runs": len(extra),
                      "before_extra_s": median(before_extra) if before_extra else None}}


def machine() -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem_gib = round(kib / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    versions = {}
    for mod in ("psutil", "pandas", "plotly"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = None
    py_spy = find_py_spy()
    if py_spy:
        out = subprocess.run([py_spy, "--version"], capture_output=True, text=True)
        versions["py-spy"] = out.stdout.strip().replace("py-spy ", "")
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    return {"date": datetime.datetime.now().astimezone().isoformat(timespec="minutes"),
            "cpu": cpu_model, "cores": os.cpu_count(), "memory_gib": mem_gib,
            "kernel": platform.release(), "python": platform.python_version(),
            "python_exe": sys.executable, "versions": versions, "commit": commit,
            "loadavg": os.getloadavg()}


# -- markdown ---------------------------------------------------------------------------------

def _x(r: dict[str, float]) -> str:
    return f"{r['median']:.3f}x ({r['min']:.2f}-{r['max']:.2f})"


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def render_machine(m: dict[str, Any], quick: bool) -> str:
    v = m["versions"]
    load = ", ".join(f"{x:.2f}" for x in m["loadavg"])
    lines = [
        f"Measured {m['date']} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"Linux {m['kernel']}; CPython {m['python']} ({m['python_exe']}); "
        f"py-spy {v.get('py-spy')}, psutil {v.get('psutil')}, pandas {v.get('pandas')}, "
        f"plotly {v.get('plotly')}; inspector commit {m['commit']}; load average at start "
        f"{load}.",
    ]
    if quick:
        lines.append("**--quick run: tiny sizes, one run each; these numbers mean nothing.**")
    return "\n".join(lines)


def render_slowdown(s: dict[str, Any]) -> str:
    names = s["commands"]
    out = [
        "## 1. Target slowdown",
        "",
        "The target's own wall time (it times its work, first line to last) under each command "
        "over its plain wall time: the ratio of the medians of interleaved runs, in brackets "
        "the range of the same-round ratios. All at "
        f"{RATE_HZ} Hz stacks / {INTERVAL_S} s interval: `inspector record -q -o F -- python T` "
        f"(its defaults), `py-spy record -r {RATE_HZ} {' '.join(PY_SPY_FLAGS)} -f raw` "
        "(blocking, and `--nonblocking`), and `psutil_poller.py` (children(recursive=True), "
        "cpu_times, memory_info, threads() per process every "
        f"{INTERVAL_S} s). A run during which other processes used more than "
        f"{QUIET_LOAD:.0%} of the machine (from /proc/stat, less our own commands' CPU) is set "
        "aside and more rounds are run, up to a limit; `runs` says from how many quiet runs "
        "per command (the fewest) the figures come, of how many rounds (* all runs: too few "
        f"were quiet). Goal for inspector: {GOAL_SLOWDOWN}x or less.",
        "",
        "| target | plain (s) | runs | " + " | ".join(names) + " | inspector within goal |",
        "|---|---|---|" + "---|" * len(names) + "---|",
    ]
    for row in s["rows"]:
        cells = [_x(row["ratios"][n]["target"]) for n in names]
        ok = row["ratios"]["inspector"]["target"]["median"] <= GOAL_SLOWDOWN
        star = "" if row.get("used_quiet_rounds", True) else "*"
        rounds = f"{row['runs']}{star}/{row.get('rounds_run', row['runs'])}"
        out.append(f"| {row['label']} | {row['plain_target_s']:.2f} | {rounds} | "
                   + " | ".join(cells) + f" | {_yes(ok)} |")
    tables = (
        ("The same runs, ratio of the fastest run under each command to the fastest plain run "
         "(the least disturbed of each):", "target", "best"),
        ("The target's own CPU time (its process and its waited-for children), ratio of the "
         "medians: what the recorder's work took from the target on shared cores, as opposed "
         "to making it wait:", "target_cpu", "median"),
        ("The whole command's wall time, start-up and shut-down included (inspector imports "
         "its modules, starts py-spy, and waits one more interval after the tree exits; "
         "py-spy writes its file at the end), ratio of the medians:", "command", "median"),
    )
    for text, kind, stat in tables:
        out += ["", text, "", "| target | " + " | ".join(names) + " |",
                "|---|" + "---|" * len(names)]
        for row in s["rows"]:
            out.append(f"| {row['label']} | " + " | ".join(
                f"{row['ratios'][n][kind][stat]:.3f}x" for n in names) + " |")
    if not s["py_spy"]:
        out += ["", "py-spy was not found: its columns are missing."]
    return "\n".join(out)


def render_cpu(s: dict[str, Any]) -> str:
    out = [
        "## 2. The recorder's own CPU",
        "",
        "An idle target (P processes x N threads each, waiting, or each waking every 10 ms so "
        "that every thread has run by every tick) recorded at the defaults; the recorder's CPU "
        "read over a window mid-run: its own threads from /proc/PID/task/*/schedstat (ns), its "
        "finished py-spy runs from cutime+cstime (the window starts and ends just after one is "
        "reaped). In milliseconds of CPU per second recorded (10 ms/s = 1% of a core). "
        "`--no-stacks` is the /proc part alone. The floor is `os.pread` of already-open stat, "
        "syscall, schedstat per thread and stat, status, io per process, nothing parsed or "
        f"stored, once per {INTERVAL_S} s: measured in a tight loop (as issue 6 defines it) "
        "and paced, one round per interval after a sleep, as a sampler really runs (cold "
        f"caches make each round several times dearer). Goal: the /proc part within "
        f"{GOAL_FLOOR_RATIO:.0f}x of the floor.",
        "",
        "| processes x threads | threads | /proc part (--no-stacks) | floor, tight loop | "
        "ratio | floor, paced | ratio | within goal (tight / paced) | default: recorder | "
        "default: py-spy | default: total |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in s["rows"]:
        ok = (f"{_yes(r['floor_ratio'] <= GOAL_FLOOR_RATIO)} / "
              f"{_yes(r['floor_paced_ratio'] <= GOAL_FLOOR_RATIO)}")
        out.append(
            f"| {r['label']} | {r['threads']} | {r['no_stacks_ms_per_s']:.2f} | "
            f"{r['floor_ms_per_s']:.2f} | {r['floor_ratio']:.1f}x | "
            f"{r['floor_paced_ms_per_s']:.2f} | {r['floor_paced_ratio']:.1f}x | {ok} | "
            f"{r['default_own_ms_per_s']:.2f} | {r['default_py_spy_ms_per_s']:.2f} | "
            f"{r['default_total_ms_per_s']:.2f} |")
    fit = s.get("fit")
    if fit:
        out += ["", "Fitted over the waiting-thread rows (least squares): ms/s = fixed + per "
                "process x P + per thread x threads; per-process and per-thread costs in "
                "microseconds of CPU per second recorded:", "",
                "| part | fixed (ms/s) | per process (us/s) | per thread (us/s) |",
                "|---|---|---|---|"]
        labels = {"no_stacks_ms_per_s": "/proc part (--no-stacks)",
                  "floor_ms_per_s": "floor, tight loop",
                  "floor_paced_ms_per_s": "floor, paced",
                  "default_own_ms_per_s": "default: recorder",
                  "default_py_spy_ms_per_s": "default: py-spy"}
        for key, label in labels.items():
            f = fit[key]
            out.append(f"| {label} | {f['fixed']:.2f} | {f['per_process'] * 1e3:.0f} | "
                       f"{f['per_thread'] * 1e3:.0f} |")
    return "\n".join(out)


def render_accuracy(s: dict[str, Any]) -> str:
    out = [
        "## 3. Accuracy",
        "",
        "Threads that burn a share of a core (busy hashing, GIL released, for duty x 10 ms, "
        "asleep for the rest), recorded at the defaults: the recording's mean `cpu_percent` "
        "per thread against what the thread really used (its own `time.thread_time()` over its "
        "life; on a busy machine it falls short of the nominal duty, which is why it, not the "
        f"nominal duty, is the reference). Medians of {s['runs']} runs. Goal: within "
        f"{GOAL_CPU_POINTS:.0f} points.",
        "",
        "| nominal duty | actual (thread_time) | recorded | error (points) | worst run | "
        "samples per run | within goal |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in s["duty"]:
        ok = abs(d["worst_error_points"]) <= GOAL_CPU_POINTS
        out.append(f"| {d['duty_percent']}% | {d['actual_percent']:.1f}% | "
                   f"{d['recorded_percent']:.1f}% | {d['error_points']:+.1f} | "
                   f"{d['worst_error_points']:+.1f} | {d['samples_per_run']:.0f} | {_yes(ok)} |")
    out += [
        "",
        f"Child processes forked one every 23 ms (every phase of the {INTERVAL_S} s tick), each "
        "living a set time and reaped at once (no zombie lingers), over "
        f"{s['runs']} runs: how many the recording holds. Goal: all of those living 2 intervals "
        "or more.",
        "",
        "| lifetime | intervals | captured | share | goal |",
        "|---|---|---|---|---|",
    ]
    for k in s["children"]:
        share = k["captured"] / k["born"] if k["born"] else float("nan")
        goal = _yes(k["captured"] == k["born"]) if k["intervals"] >= 2 - 1e-9 else "(stated)"
        out.append(f"| {k['lifetime_s'] * 1e3:.0f} ms | {k['intervals']:.1f} | "
                   f"{k['captured']}/{k['born']} | {share:.0%} | {goal} |")
    for m in s.get("missed", []):
        out.append(f"\nMissed: a child living {m['lifetime_s'] * 1e3:.0f} ms, born at "
                   f"{m['born_s']:.2f} s; the longest gap between the recorder's ticks during "
                   f"its life was {m['tick_gap_s'] * 1e3:.0f} ms.")
    return "\n".join(out)


SCALE_COLUMNS = {  # report_scale.measure() keys shown first, with their headers
    "duration_s": "recording length (s)", "threads": "threads", "processes": "processes",
    "rows_thread_samples": "thread samples", "rows_stacks": "stack spans",
    "recording_mb": "recording (MB)", "build_s": "report build (s)",
    "peak_rss_mb": "peak memory (MB)", "html_mb": "HTML (MB)",
    "html_beyond_plotlyjs_mb": "HTML beyond plotly.js (MB)",
    "browser_load_s": "load in headless Chromium (s)",
}
GOAL_SCALE_BUILD_S = 10.0  # issue 6: the hour's report built in 10 s...
GOAL_SCALE_EXTRA_MB = 10.0  # ...and at most 10 MB beyond plotly.js


def render_scale(s: dict[str, Any]) -> str:
    out = ["## 4. Report scale", ""]
    if not s.get("available"):
        return "\n".join(out + [f"Not measured: {s.get('reason')}."])
    rows = s["rows"]
    keys = [k for k in SCALE_COLUMNS if any(k in r for r in rows)]
    for r in rows:
        keys += [k for k in r if k not in keys and not isinstance(r[k], (dict, list))]
    out += ["Synthetic recordings (written through the recorder's RecordingWriter) and the "
            "report built from each, by benchmarks/report_scale.py `measure(duration_s)`. Goal "
            f"for the hour: built in {GOAL_SCALE_BUILD_S:.0f} s, at most "
            f"{GOAL_SCALE_EXTRA_MB:.0f} MB beyond plotly.js.", "",
            "| " + " | ".join(SCALE_COLUMNS.get(k, k) for k in keys) + " | within goal |",
            "|" + "---|" * (len(keys) + 1)]
    for r in rows:
        ok = (r.get("build_s", float("inf")) <= GOAL_SCALE_BUILD_S
              and r.get("html_beyond_plotlyjs_mb", float("inf")) <= GOAL_SCALE_EXTRA_MB)
        out.append("| " + " | ".join(_cell(r.get(k)) for k in keys) + f" | {_yes(ok)} |")
    return "\n".join(out)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return "" if v is None else str(v)


def _bytes(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def render_cost(s: dict[str, Any]) -> str:
    out = [
        "## 5. What recording costs, side by side",
        "",
        f"Each target (calibrated to run about the same time plain) run plain, under `inspector "
        f"record` at its defaults and under `py-spy record -r {RATE_HZ} --subprocesses --threads "
        "--idle --nonblocking` alone, interleaved (the order rotated each round), medians of the "
        "runs. Target wall: the target's own time (it times itself), recorded / plain, ratio of "
        "the medians (range of the same-round ratios). Recorder CPU: the recording's "
        "meta `recorder_cpu` (the recorder's process and its py-spy runs, first tick to last: "
        "start-up left out), in cores. Bytes: the recording's size less that of a recording of "
        f"a program doing nothing ({s.get('fixed_bytes', 0) / 1024:,.0f} KiB: SQLite's pages for "
        "each table and index, the schema, meta), over the sum of its threads' lifetimes; and, "
        f"as it grows, the growth from those runs (medians) to one {s['growth_factor']} times "
        "as long, over the thread-seconds it added (the goal is judged on it: a short file is "
        "mostly SQLite's pages, each table's rounded up to 4 KiB). "
        "Busy threads named: of the threads that compute, how many have `burn` as "
        "their top function in the stacks, in the worst run, and the fewest stack samples any "
        f"had. Goals (issue 13): wall {GOAL_COST_WALL}x and never worse than py-spy alone; "
        f"recorder {GOAL_COST_CORES:g} cores; {GOAL_COST_BYTES} bytes per thread per second.",
        "",
        "| target | plain (s) | runs | inspector wall | py-spy alone wall | inspector command "
        "| recorder CPU (cores): all / own / py-spy | stack rate (Hz) "
        "| bytes per thread-s: over empty / as it grows "
        "| busy threads named (fewest samples) | within goals (wall / CPU / bytes) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    if s.get("baseline"):
        out[-2:-2] = [
            f"`inspector before` is the inspector package in `{s['baseline']}` (its commit is "
            "named in the notes), run in the same rounds; its recorder CPU is the time-weighted "
            "mean of its `machine_samples.recorder_cores`.",
            "",
        ]
        out[-2] = out[-2].replace("| within goals", "| before: wall / recorder CPU / bytes "
                                  "| within goals")
        out[-1] += "---|"
    for row in s["rows"]:
        ins = row["ratios"]["inspector"]
        spy = row["ratios"].get("py-spy nonblocking")
        old = row["ratios"].get(BASELINE)
        growing = row.get("growth_bytes_per_thread_s")
        before_growing = row.get("before_growth_bytes_per_thread_s")
        before = (f"| {_x(old['target'])} / {row['before_cores']:.3f} / "
                  f"{row['before_bytes_per_thread_s']:,.0f}, {_bytes(before_growing)} "
                  if old else "")
        busy = (f"{row['busy_named']}/{row['busy_threads']} ({row['busy_samples_min']})"
                if row["busy_threads"] else "-")
        wall_ok = ins["target"]["median"] <= max(GOAL_COST_WALL,
                                                  spy["target"]["median"] if spy else 0)
        out.append(
            f"| {row['label']} | {row['plain_target_s']:.2f} | {row['runs']} "
            f"| {_x(ins['target'])} | {_x(spy['target']) if spy else '-'} "
            f"| {_x(ins['command'])} "
            f"| {row['recorder_cores']:.3f} / {row['own_cores']:.3f} / {row['py_spy_cores']:.3f} "
            f"| {row['rate_hz_used']:g} | {row['bytes_per_thread_s']:,.0f} / {_bytes(growing)} "
            f"| {busy} "
            f"{before}| {_yes(wall_ok)} / {_yes(row['recorder_cores'] <= GOAL_COST_CORES)} "
            f"/ {_yes(growing is not None and growing <= GOAL_COST_BYTES)} |")
    sh = s["short"]
    out += [
        "",
        f"The whole command on a short target ({sh['plain_s']:.2f} s plain, 1 thread), "
        f"interleaved, {sh['runs']} pairs: `inspector record` took {sh['inspector_s']:.2f} s, "
        f"**{sh['extra_s']:+.2f} s** over plain (median of the pairs; "
        f"{sh['extra_min_s']:+.2f} to {sh['extra_max_s']:+.2f}). Goal: "
        f"+{GOAL_COST_COMMAND_S} s or less: {_yes(sh['extra_s'] <= GOAL_COST_COMMAND_S)}."
        + (f" `inspector before`: {sh['before_extra_s']:+.2f} s over plain."
           if sh.get("before_extra_s") is not None else ""),
    ]
    return "\n".join(out)


RENDER = {"slowdown": render_slowdown, "cpu": render_cpu, "accuracy": render_accuracy,
          "scale": render_scale, "cost": render_cost}

HEADER = """# inspector benchmarks

Produced by `python benchmarks/run.py` (see README.md here). The machine is small and shared:
2 cores, with other jobs (test suites of other sessions) running at the same time, so each figure
is a median of interleaved runs and should be read as a ratio or an order of magnitude; a ratio
a few percent either side of 1.00 is within the noise. Each section says when and where it ran.
"""


NOTES = "notes"  # a hand-written section of RESULTS.md (what the figures mean), kept as is


def merge_results(path: Path, rendered: dict[str, str]) -> str:
    """RESULTS.md with the given sections replaced and the others (and the notes) kept."""
    old: dict[str, str] = {}
    if path.exists():
        text = path.read_text()
        for name in (NOTES, *SECTIONS):
            begin, end = f"<!-- begin:{name} -->", f"<!-- end:{name} -->"
            if begin in text and end in text:
                old[name] = text.split(begin, 1)[1].split(end, 1)[0].strip("\n")
    old.update(rendered)
    parts = [HEADER]
    for name in (NOTES, *SECTIONS):
        if name in old:
            parts.append(f"<!-- begin:{name} -->\n{old[name]}\n<!-- end:{name} -->\n")
    return "\n".join(parts)


# -- main -------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes, one run each: checks the script works, measures nothing")
    ap.add_argument("--only", choices=SECTIONS, action="append",
                    help="run only this section (repeatable)")
    ap.add_argument("--targets", help="slowdown targets to run, comma-separated: "
                    + ",".join(t.key for t in SLOWDOWN_TARGETS))
    ap.add_argument("--output", type=Path,
                    help="markdown file to update (default: benchmarks/RESULTS.md, not with "
                         "--quick)")
    ap.add_argument("--json", type=Path, help="also write the raw numbers here")
    ap.add_argument("--rounds", type=int, help="runs per figure (default 5; --quick 1)")
    ap.add_argument("--baseline", type=Path, metavar="DIR",
                    help="section cost: also run the inspector package found in DIR (e.g. "
                         "`git archive COMMIT inspector | tar -x -C DIR`), interleaved")
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.rounds is not None:
        if args.rounds < 1:
            print("run.py: --rounds must be at least 1", file=sys.stderr)
            return 2
        sizes = dataclasses.replace(sizes, rounds=args.rounds,
                                    max_rounds=max(args.rounds, sizes.max_rounds))
    sections = args.only or list(SECTIONS)
    keys = None
    if args.targets:
        keys = [k.strip() for k in args.targets.split(",") if k.strip()]
        unknown = set(keys) - {t.key for t in SLOWDOWN_TARGETS}
        if unknown:
            print(f"run.py: unknown target(s): {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
    output = args.output if args.output else (None if args.quick else DEFAULT_RESULTS)

    def log(msg: str) -> None:
        print(f"# {msg}", file=sys.stderr, flush=True)

    m = machine()
    header = render_machine(m, args.quick)
    results: dict[str, Any] = {"machine": m, "quick": args.quick, "sections": {}}
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "slowdown": lambda: bench_slowdown(sizes, keys, log),
        "cpu": lambda: bench_cpu(sizes, log),
        "accuracy": lambda: bench_accuracy(sizes, log),
        "scale": lambda: bench_scale(sizes, log),
        "cost": lambda: bench_cost(sizes, log, args.baseline),
    }
    rendered: dict[str, str] = {}
    try:
        for name in SECTIONS:
            if name not in sections:
                continue
            t0 = time.monotonic()
            results["sections"][name] = runners[name]()
            results["sections"][name]["elapsed_s"] = time.monotonic() - t0
            rendered[name] = RENDER[name](results["sections"][name]) + "\n\n" + header
            print(rendered[name] + "\n", flush=True)
    except BenchError as e:
        print(f"run.py: {e}", file=sys.stderr)
        return 1
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    if output is not None:
        output.write_text(merge_results(output, rendered))
        log(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
