"""Whose turn it is when pytest-xdist runs the suite in several workers. Every test holds a
shared turn from its setup to its teardown. What must have the machine to itself runs
`alone()`, or the whole test does (marked `alone`): no other test runs beside it. That is
whatever judges CPU (a calibration, speed-ups, the demo's ratios, verdicts of what a program
got of the cores) and every program run at raised priority (tests/machine.py
for_the_recording, which checks it): another test's raised program would take half the cores
from one judged, and one of them computing leaves the nice-0 programs beside it ~1% of a core.
Without xdist one test runs at a time and nothing here locks.

The lock is a readers-writer pair of flock(2)s on files in a folder the controller makes for
the run: `rw` (shared by tests, exclusive for one alone) and `turnstile`, which every test
passes through before taking `rw` and which one waiting to be alone keeps until it has `rw`,
so new tests queue behind it instead of starving it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Optional

import pytest

# Set by the controller before it starts the workers, which inherit it: the folder of the
# run's locks and of what the workers make once for all of them (made_once).
FOLDER_ENV = "INSPECTOR_TESTS_SHARED"


class Turns:
    """This worker's hold on the run's lock: none, shared or alone."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._rw: IO[bytes] = open(folder / "rw", "ab")  # noqa: SIM115 (open for the session)
        self._turnstile: IO[bytes] = open(folder / "turnstile", "ab")  # noqa: SIM115
        self.held: Optional[str] = None

    def share(self) -> None:
        fcntl.flock(self._turnstile, fcntl.LOCK_EX)
        fcntl.flock(self._rw, fcntl.LOCK_SH)
        fcntl.flock(self._turnstile, fcntl.LOCK_UN)
        self.held = "shared"

    def release(self) -> None:
        fcntl.flock(self._rw, fcntl.LOCK_UN)
        self.held = None

    @contextmanager
    def alone(self) -> Iterator[None]:
        """No other test runs until this ends; a shared hold is given up meanwhile (kept, a
        worker waiting at the turnstile would wait for it: deadlock) and taken again after."""
        if self.held == "alone":
            yield
            return
        before = self.held
        if before == "shared":
            self.release()
        fcntl.flock(self._turnstile, fcntl.LOCK_EX)
        fcntl.flock(self._rw, fcntl.LOCK_EX)
        fcntl.flock(self._turnstile, fcntl.LOCK_UN)
        self.held = "alone"
        try:
            yield
        finally:
            self.release()
            if before == "shared":
                self.share()


_turns: Optional[Turns] = None


def start_run() -> None:
    """In the controller of an xdist run, before the workers start: the run's folder."""
    os.environ[FOLDER_ENV] = tempfile.mkdtemp(prefix="inspector-tests-")


def end_run() -> None:
    folder = os.environ.pop(FOLDER_ENV, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def turns() -> Optional[Turns]:
    """This worker's Turns; None outside an xdist worker (nothing to share)."""
    global _turns
    if _turns is None and "PYTEST_XDIST_WORKER" in os.environ and FOLDER_ENV in os.environ:
        _turns = Turns(Path(os.environ[FOLDER_ENV]))
    return _turns


@contextmanager
def alone() -> Iterator[None]:
    """No other test beside what runs inside (under xdist; a no-op without it)."""
    mine = turns()
    if mine is None:
        yield
        return
    with mine.alone():
        yield


@contextmanager
def set_aside() -> Iterator[None]:
    """This test's shared turn given up while it waits for what runs in the background at
    nice 0 (the benchmarks): the tests alone meanwhile run at raised priority, which leaves
    it ~1% of a core, and nothing it runs is judged."""
    mine = turns()
    if mine is None or mine.held != "shared":
        yield
        return
    mine.release()
    try:
        yield
    finally:
        mine.share()


def check_alone(what: str) -> None:
    """Fails a test that runs `what` beside others under xdist."""
    mine = turns()
    if mine is not None and mine.held != "alone":
        pytest.fail(f"{what} outside turns.alone() (tests/turns.py): it would run beside "
                    "other tests")


def made_once(name: str, make: Callable[[Path], Path],
              tmp_path_factory: pytest.TempPathFactory) -> Path:
    """make(folder)'s result, made by the first worker that needs it in a folder all the
    workers share, and the same path for every other (a session fixture runs once a worker);
    made alone, since what several tests share is a recording they judge. Without xdist,
    make(a folder of the session's)."""
    mine = turns()
    if mine is None:
        return make(tmp_path_factory.mktemp(name))
    folder = mine.folder / name
    done = mine.folder / f"{name}.done"
    if not done.exists():
        with alone():  # one maker at a time, so the check and the making are one step
            if not done.exists():
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                done.write_text(str(make(folder)))
    return Path(done.read_text())
