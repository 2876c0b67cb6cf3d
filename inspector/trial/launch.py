"""Running the program once for `inspector try`: as it is, or with the swap's hook in its
environment; timed as a whole process, or recorded by `inspector record`. Keeps what the
checks need: the exit status, the standard output, the last line of its errors and what the
hook reported (swaps, pools left alone, a refusal).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from inspector.errors import TrialError
from inspector.machine_load import CpuMark
from inspector.trial.outcome import Swap

HOOK_DIR = Path(__file__).resolve().with_name("hook")
# The model tried -> what the hook swaps in (its INSPECTOR_TRY_TO).
SWAPS = {"multiprocessing": "processes", "threading": "threads"}
TO_ENV = "INSPECTOR_TRY_TO"          # the names _inspector_try_hook reads
REPORT_ENV = "INSPECTOR_TRY_REPORT"
# Python's options that keep the hook from loading: -I and -E ignore PYTHONPATH, -S skips
# the site module (and so every sitecustomize).
HOOK_BLOCKING_FLAGS = {"I": "isolated mode", "E": "PYTHON* variables ignored",
                       "S": "no site module"}
_PYTHON = re.compile(r"^(python|pypy)[0-9.]*$")
_RECORDER_LINE = "recording written to"


@dataclass(frozen=True)
class HookEvents:
    loaded: bool                  # the hook ran in at least one Python process of the run
    swaps: tuple[Swap, ...]
    left: tuple[str, ...]         # pools left alone: "Kind at file:line (made by a library)"
    refusal: str | None           # "site: why the swap cannot work"


@dataclass(frozen=True)
class ChildRun:
    wall_s: float                 # the whole process, start to exit, unrecorded or recorded
    exit_status: int              # negative: killed by that signal
    stdout: bytes
    stderr_tail: str              # its last non-empty line of errors
    foreign_load: float           # share of the machine's CPU other programs used meanwhile
    events: HookEvents | None     # for a swapped run


def python_flag_refusal(command: Sequence[str]) -> str | None:
    """Why the hook cannot load into this command (python -I, -E or -S, directly or on a
    script's #! line), or None. A Python started later by a shell is not seen here: the
    missing `loaded` event tells then."""
    argv = list(command)
    exe = shutil.which(argv[0]) or argv[0]
    if not _PYTHON.match(os.path.basename(exe)):
        argv = _shebang(exe) + argv[1:]
        if not argv or not _PYTHON.match(os.path.basename(argv[0])):
            return None
    for flag in _python_flags(argv[1:]):
        if flag in HOOK_BLOCKING_FLAGS:
            return (f"the command runs Python with -{flag} ({HOOK_BLOCKING_FLAGS[flag]}), so the "
                    "hook that swaps the pools cannot load; run it without -I, -E and -S")
    return None


def _shebang(path: str) -> list[str]:
    """A script's interpreter and its options, `env` (and `env -S`) taken off."""
    try:
        with open(path, "rb") as f:
            line = f.readline(512)
    except OSError:
        return []
    if not line.startswith(b"#!"):
        return []
    parts = line[2:].decode(errors="replace").split()
    if parts and os.path.basename(parts[0]) == "env":
        parts = [p for p in parts[1:] if p not in ("-S", "--split-string")]
    return parts


def _python_flags(args: Sequence[str]) -> list[str]:
    """The one-letter options before the script, -c or -m (clusters like -IS included)."""
    flags: list[str] = []
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
            continue
        if arg == "-" or not arg.startswith("-") or arg == "--":
            break
        if arg.startswith("--"):
            continue
        for i, c in enumerate(arg[1:]):
            if c in "cm":
                return flags
            if c in "WX":  # their value follows, attached or as the next argument
                skip_next = i == len(arg) - 2
                break
            flags.append(c)
    return flags


def hook_env(to: str, report: Path) -> dict[str, str]:
    """The variables a swapped run gets: the hook first on PYTHONPATH (the user's after it)."""
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(HOOK_DIR) + (os.pathsep + path if path else ""),
            TO_ENV: SWAPS[to], REPORT_ENV: str(report)}


def run_child(command: Sequence[str], workdir: Path, *, to: str | None = None,
              record: Path | None = None) -> ChildRun:
    """Runs the command once, its standard input empty, its output kept in `workdir`; with
    the pool swapped to the model `to`; under `inspector record -o RECORD`. The recorder
    itself never gets the hook: an `env` in front of the command gives it to the program."""
    fd, name = tempfile.mkstemp(prefix="hook-", suffix=".jsonl", dir=workdir)
    os.close(fd)
    report = Path(name)
    argv = list(command)
    env = dict(os.environ)
    if to is not None:
        extra = hook_env(to, report)
        if record is not None:
            argv = ["env", *(f"{k}={v}" for k, v in extra.items()), *argv]
        else:
            env.update(extra)
    if record is not None:
        argv = [sys.executable, "-m", "inspector", "record", "-q", "--calibrate", "-o",
                str(record), "--",
                *argv]
    out, err = workdir / "stdout", workdir / "stderr"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        mark = CpuMark.now()
        started = time.perf_counter()
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                  env=env)
        except OSError as e:  # the recorder or `env` could not start (the command: 127)
            raise TrialError(f"try: cannot run {argv[0]}: {e.strerror or e}") from None
        wall = time.perf_counter() - started
        foreign = mark.foreign_share(wall)
    lines = [ln for ln in err.read_text(errors="replace").splitlines()
             if ln.strip() and _RECORDER_LINE not in ln]
    events = read_events(report) if to is not None else None
    report.unlink(missing_ok=True)
    return ChildRun(wall_s=wall, exit_status=proc.returncode, stdout=out.read_bytes(),
                    stderr_tail=lines[-1].strip() if lines else "", foreign_load=foreign,
                    events=events)


def read_events(report: Path) -> HookEvents:
    loaded = False
    swaps: list[Swap] = []
    left: list[str] = []
    refusal = None
    try:
        text = report.read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:  # a line cut short by a process killed while writing it
            continue
        kind = event.get("event")
        if kind == "loaded":
            loaded = True
        elif kind == "swap":
            swap = Swap(str(event.get("site")), str(event.get("from")), str(event.get("to")),
                        event.get("workers"))
            if swap not in swaps:
                swaps.append(swap)
        elif kind == "left":
            said = f"{event.get('pool')} at {event.get('site')} ({event.get('why')})"
            if said not in left:
                left.append(said)
        elif kind == "refused" and refusal is None:
            refusal = f"{event.get('site')}: {event.get('reason')}"
    return HookEvents(loaded, tuple(swaps), tuple(left), refusal)
