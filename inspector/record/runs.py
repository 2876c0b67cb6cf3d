"""py-spy runs: one `py-spy record` process each, and the chain of them kept going on a process.

py-spy writes its output only when it stops (its issue #604), so each Python process is
sampled by `py-spy record --pid P -d N --nonblocking --threads --idle -f chrometrace`
(no --subprocesses: the recorder knows the tree and starts one per process), one run after
another, N growing 1, 2, 4, ... 30 s: the first stacks land at once and a long recording
pays py-spy's start-up rarely. Every graceful finish ends the runs with SIGINT (py-spy
writes what it has); a SIGKILLed recorder loses the current runs' stacks, up to
RUN_LENGTHS_S[-1] of them. A run that fails is a problem of its process, in py-spy's words,
and is retried.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

# py-spy's -d takes whole seconds. Each run of a process is longer than the one before: the
# first stacks land after 1 s, and the launches (a process start, py-spy reading the target's
# maps and symbols, 20-50 ms before its first sample) that runs of 1 s paid twice a second
# (two chains) become rare. The last length bounds what a SIGKILLed recorder loses.
RUN_LENGTHS_S = (1, 2, 4, 8, 16, 30)
CHUNK_S = RUN_LENGTHS_S[0]  # the first run's length
OVERLAP_S = 0.1  # next run starts this early: py-spy takes 10-50 ms to take its first sample
# A process caught before its interpreter is loaded (just exec'd, libpython not mapped or
# not initialised) makes py-spy fail with "No python processes found" or "Failed to find
# python version" (after ~1 s of looking): runs are retried after these pauses, then given up.
RETRY_PAUSES_S = (0.05, 0.2, 0.5)
MAX_ATTACH_TRIES = len(RETRY_PAUSES_S) + 1


class PySpyRun:
    """One py-spy run on one Python process tree."""

    def __init__(self, exe: str, root_pid: int, rate: int, out_dir: str, t_launch_s: float,
                 seq: int, gil: bool = False, duration_s: int = CHUNK_S) -> None:
        self.root_pid = root_pid
        self.gil = gil
        self.rate = rate
        self.duration_s = duration_s
        self.cpu_s: float | None = None  # py-spy's own CPU, once reaped
        self.out = os.path.join(out_dir, f"{root_pid}-{seq}.{'txt' if gil else 'json'}")
        self.log = os.path.join(out_dir, f"{root_pid}-{seq}.log")
        self.t_launch_s = t_launch_s
        self.t_end_s: float | None = None
        self.stopping = False
        self.cost_checked_s = t_launch_s
        # A GIL run keeps only the samples of the thread holding the GIL (--gil); chrometrace
        # would merge those into spans that never close, so it counts them (raw format).
        # Stack runs sample one process each: --subprocesses makes py-spy walk every pid of
        # the machine for children, 1-2% of a core however slow its rate, and its
        # chrometrace diffs stacks by pthread id, which forked processes share (so whole
        # stacks are written at every sample). The recorder already knows the tree.
        mode = (["--gil", "--subprocesses", "--format", "raw"] if gil
                else ["--idle", "--format", "chrometrace"])
        argv = [exe, "record", "--pid", str(root_pid), "--duration", str(duration_s),
                "--rate", str(rate), "--nonblocking", "--threads", *mode,
                "--output", self.out]
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ]
        # Its own process group, so a Ctrl-C at the terminal does not cut a run short, and
        # an empty signal mask: the recorder blocks the signals it forwards.
        self.pid = os.posix_spawn(exe, argv, os.environ, file_actions=actions,
                                  setpgroup=0, setsigmask=())

    def poll(self, now_s: float | None = None) -> int | None:
        pid, status, usage = os.wait4(self.pid, os.WNOHANG)
        if pid == 0:
            return None
        self.t_end_s = now_s
        self.cpu_s = usage.ru_utime + usage.ru_stime
        return os.waitstatus_to_exitcode(status)

    def wait(self, timeout_s: float) -> int | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            code = self.poll()
            if code is not None:
                return code
            time.sleep(0.01)
        return None

    def stop(self) -> None:
        """SIGINT makes py-spy write what it has (SIGTERM would lose it)."""
        self.stopping = True
        try:
            os.kill(self.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.wait4(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass

    def remove_files(self) -> None:
        for path in (self.out, self.log):
            try:
                os.unlink(path)
            except OSError:
                pass

    def first_line(self) -> str:
        """py-spy's own first line on stderr: the reason a run failed."""
        return next(iter(self._said()), "")

    def message(self) -> str:
        """py-spy's error and its causes on one line (without a RUST_BACKTRACE dump)."""
        return " ".join(self._said(until="Stack backtrace:"))

    def _said(self, until: str | None = None) -> list[str]:
        """py-spy's non-blank lines on stderr (not its `py-spy> ` progress lines), up to
        `until`; none if the log cannot be read."""
        try:
            text = Path(self.log).read_text(errors="replace")
        except OSError:
            return []
        if until is not None:
            text = text.split(until, 1)[0]
        return [ln.strip() for ln in text.splitlines()
                if ln.strip() and not ln.startswith("py-spy> ")]


@dataclass
class RunChain:
    """One kind of py-spy run (stacks, or --gil counts) kept going on each process tree. Its
    failures are counted, retried after a pause and given up apart from the other chain's,
    so a failing --gil run never costs the stacks."""

    name: str  # as the problems say it
    failures: dict[int, int] = field(default_factory=dict)  # by root proc_id, in a row
    next_try_s: dict[int, float] = field(default_factory=dict)
    gave_up: set[int] = field(default_factory=set)

    def ready(self, proc_id: int, now_s: float) -> bool:
        return proc_id not in self.gave_up and now_s >= self.next_try_s.get(proc_id, 0.0)

    def succeeded(self, proc_id: int) -> None:
        self.failures.pop(proc_id, None)
        self.next_try_s.pop(proc_id, None)

    def failed(self, proc_id: int, now_s: float) -> bool:
        """Counts a failed run; whether the chain now gives up on this process."""
        n = self.failures[proc_id] = self.failures.get(proc_id, 0) + 1
        if n >= MAX_ATTACH_TRIES:
            self.gave_up.add(proc_id)
            return True
        self.next_try_s[proc_id] = now_s + RETRY_PAUSES_S[min(n, len(RETRY_PAUSES_S)) - 1]
        return False

