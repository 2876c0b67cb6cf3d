"""What tests need from a shared, busy machine: a known number of cores, a fair share of them,
a measure of what other programs took meanwhile, skips that become failures on CI, and the
Python interpreters installed on it.

These machines run other programs alongside the suite (2 cores, several people's tests). A
test whose property needs CPU (threads that really run in parallel, a sampler that keeps its
pace) runs its recording with `preexec_fn=for_the_recording(...)`: pinned to a known set of
cores and, where the user may (root), at the highest scheduling priority, so a busy neighbour
cannot starve it. Where a property needs free cores, the test judges it against the cores its
recording had (`cores_left`, from the recording's own machine samples, as the verdicts read
them), and asserts what holds under any load where other programs took them.
"""

from __future__ import annotations

import glob
import os
import resource
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import turns

from inspector.analyze import Diagnosis
from inspector.machine_load import CpuMark

T = TypeVar("T")

# The priority recordings run at where the user may raise it (root may: CI runs as root).
# The kernel's weight for nice -20 is ~87 times that of nice 0: a CPU hog next to us then
# takes about 1% of a core from the program under test instead of half. With autogroup
# scheduling (/proc/sys/kernel/sched_autogroup_enabled, on here) nice only orders processes of
# one session; sessions share the CPU by their autogroup's nice, so the recording gets a
# session of its own and raises that too.
RAISED_NICE = -20
# A try during which other programs used more than this share of the machine's CPU did not
# have free cores (benchmarks/run.py sets a quiet run's bar at 10%; a test needs less calm).
FREE_CORES_MAX_FOREIGN_LOAD = 0.25
# A recording that left its program this much less than the cores a claim needs, on
# average, still had them most of the time: the scheduler gives a raised-priority program
# the cores first, and the mean spreads a neighbour's bursts over the run.
FREE_CORES_SLACK = 0.5


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def skip_or_fail(reason: str) -> None:
    """Skip where the machine cannot do what the test needs; on CI (root, CI=true) it can,
    so not being able to is a failure, never a skip that hides one."""
    if on_ci():
        pytest.fail(f"{reason} (CI=true: CI runs as root and must be able to)")
    pytest.skip(reason)


def cores_for(n: int) -> set[int]:
    """n of the cores this process may run on; fails if there are fewer."""
    mine = sorted(os.sched_getaffinity(0))
    if len(mine) < n:
        pytest.fail(f"this test needs {n} cores; this process may use {len(mine)}: {mine}")
    return set(mine[:n])


def may_raise_priority() -> bool:
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NICE)
    except (AttributeError, OSError):
        soft = 0
    # RLIMIT_NICE's ceiling is 20 - soft; root (CAP_SYS_NICE) is not bound by it
    return os.geteuid() == 0 or soft >= 20 - RAISED_NICE


def for_the_recording(cores: int | None = None) -> Callable[[], None]:
    """A preexec_fn: the recorder and all it starts (the target, py-spy) inherit it. Under
    xdist, only for a test's turn alone (tests/turns.py)."""
    turns.check_alone("a program at raised priority")
    pinned = cores_for(cores) if cores is not None else None
    raise_priority = may_raise_priority()

    def setup() -> None:
        if pinned is not None:
            os.sched_setaffinity(0, pinned)
        if raise_priority:
            if os.getsid(0) != os.getpid():
                os.setsid()  # a session, so an autogroup, of its own
            os.setpriority(os.PRIO_PROCESS, 0, RAISED_NICE)
            try:
                with open("/proc/self/autogroup", "w") as f:
                    f.write(str(RAISED_NICE))
            except OSError:  # a kernel without autogroups: nice alone orders the processes
                pass

    return setup


def measure_foreign_load(run: Callable[[], T]) -> tuple[T, float]:
    """Runs `run` (which must wait for the processes it starts) and returns its result and
    the share of the machine's CPU that other programs used meanwhile (0..1)."""
    mark = CpuMark.now()
    value = run()
    return value, mark.foreign_share()


def cores_left(diag: Diagnosis) -> float:
    """The cores a recording's program had to itself on average: the cores it may use less
    what other programs and the recorder kept busy meanwhile, as its own machine samples
    measured them (diagnose's other_cores and recorder_cores). A claim that needs n free
    cores is judged where this is near n; on a busy machine, the test judges what holds
    whatever the load, and says which it did. A recording without machine samples (an old
    format) counts as having had them all."""
    taken = (diag.other_cores or 0.0) + (diag.recorder_cores or 0.0)
    return max(0.0, diag.usable_cores - taken)


def judged_on(what: str, had: float, needs: float) -> bool:
    """Whether the recording left the cores a claim needs (within FREE_CORES_SLACK), said
    in the test's output either way."""
    enough = had >= needs - FREE_CORES_SLACK
    print(f"{what}: {had:.2f} cores left by other programs, {needs:g} needed: "
          + ("judged in full" if enough else "judged on what holds under load"))
    return enough


# -- the interpreters installed here ---------------------------------------------------------

# Where pyenv keeps its versions: $PYENV_ROOT, as pyenv itself reads it, else its default.
PYENV_ROOT = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
MIN_VERSION = (3, 9)


def version_of_name(path: str) -> tuple[int, int] | None:
    """(3, minor) from a python3.X (or 3.Xt) file name; None for anything else."""
    name = Path(path).name
    if not name.startswith("python3.") or name.endswith("-config"):
        return None
    minor = name[len("python3."):].rstrip("t")
    return (3, int(minor)) if minor.isdigit() else None


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"  # not a pyenv shim (a shell script)
    except OSError:
        return False


def find_interpreters() -> list[str]:
    """Each installed CPython >= 3.9 once (by real path): pyenv's versions, /usr/bin's,
    any python3.X on PATH."""
    candidates = sorted(glob.glob(str(PYENV_ROOT / "versions" / "*" / "bin" / "python3.*")))
    candidates += sorted(glob.glob("/usr/bin/python3.*"))
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidates += sorted(glob.glob(os.path.join(folder, "python3.*")))
    seen: dict[str, str] = {}
    for path in candidates:
        version = version_of_name(path)
        real = os.path.realpath(path)
        if (version is None or version < MIN_VERSION or not os.access(real, os.X_OK)
                or not _is_elf(real) or real in seen.values()):
            continue
        seen.setdefault(real, path)
    return list(seen.values())


def pyenv_python(minor: int) -> str:
    """pyenv's newest 3.minor; fails, saying how to install it, where there is none."""
    found = sorted(glob.glob(str(PYENV_ROOT / "versions" / f"3.{minor}.*" / "bin" /
                                 f"python3.{minor}")))
    assert found, f"pyenv's 3.{minor} is missing: `pyenv install 3.{minor}` under {PYENV_ROOT}"
    return found[-1]
