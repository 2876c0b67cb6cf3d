"""Records every worker of a Dask cluster: a WorkerPlugin starts `inspector record --pid` on
each worker process (on every host, and on workers that join later), and the recordings come
back to the client through Dask itself (`Client.run`), to be merged on one clock.

    from inspector.record.dask import record_cluster
    with record_cluster(client, "run.sqlite"):
        client.gather(client.map(work, items))

or `inspector record --dask tcp://SCHEDULER:8786 --duration 30 -o run.sqlite`. Needs the `dask`
extra (`pip install 'inspector[dask]'`) here and inspector installed on every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed import Client, WorkerPlugin

from inspector.errors import InspectorError
from inspector.files import REGULAR, what_is_at, write_atomically
from inspector.record.secrets import SecretMask
from inspector.recording import DEFAULT_INTERVAL_S, DEFAULT_RATE_HZ
from inspector.recording.partial import partial_path
from inspector.recording.schema import DEFAULT_LINGER_S

PLUGIN_NAME = "inspector-record"
# How long a worker waits for its recorder to have started (written its file) before the
# plugin gives up on it: the recorder imports and starts in ~0.5 s on an idle machine.
RECORDER_START_TIMEOUT_S = 20.0
# How long a stopped recorder may take to finish its file (py-spy writes its last stacks).
RECORDER_STOP_TIMEOUT_S = 60.0
# Clock reads per worker for the offset: the one with the shortest round trip is kept, as
# NTP does (a short round trip leaves the least room for error).
CLOCK_READS = 7
# How long `inspector record --dask` tries to reach the scheduler before saying it cannot.
CONNECT_TIMEOUT_S = 10.0
_PR_SET_PTRACER = 0x59616D61  # Yama: let this process (and its children) ptrace us


class DaskRecordError(InspectorError):
    """A worker's recording could not be started or brought back."""


@dataclass(frozen=True)
class ClockOffset:
    """A worker's wall clock minus the client's, and the most it can be off by."""

    offset_s: float
    uncertainty_s: float


@dataclass(frozen=True)
class WorkerRecording:
    address: str
    name: str
    host: str
    pid: int
    path: Path
    clock: ClockOffset
    error: str | None = None


@dataclass(frozen=True)
class WorkerOptions:
    """What every worker's recorder (`inspector record --pid`) is given: the options of
    `record --dask` that mean something for one worker."""

    interval_s: float = DEFAULT_INTERVAL_S
    rate_hz: int = DEFAULT_RATE_HZ
    stacks: bool = True
    duration_s: float | None = None
    redact: str | None = None
    linger_s: float = DEFAULT_LINGER_S  # after the worker exits, its children still alive
    gil_check: bool = False
    calibrate: bool | None = None  # None: as the worker's environment says
    calibrate_end: bool = False

    def argv(self, pid: int, output: Path) -> list[str]:
        """The recorder's command line for worker `pid`."""
        command = [sys.executable, "-m", "inspector", "record", "-q", "--pid", str(pid),
                   "-i", str(self.interval_s), "-r", str(self.rate_hz), "-o", str(output),
                   "--linger", str(self.linger_s)]
        if not self.stacks:
            command.append("--no-stacks")
        if self.duration_s:
            command += ["--duration", str(self.duration_s)]
        if self.redact is not None:
            command += ["--redact", self.redact]
        if self.gil_check:
            command.append("--gil-check")
        if self.calibrate is not None:
            command.append("--calibrate" if self.calibrate else "--no-calibrate")
        if self.calibrate_end:
            command.append("--calibrate-end")
        return command


class RecordWorkers(WorkerPlugin):
    """Starts a recorder attached to each worker process it is set up on; `stop()` (run on
    the worker through Client.run) ends it and returns the recording's bytes."""

    name = PLUGIN_NAME

    def __init__(self, options: WorkerOptions | None = None) -> None:
        self.options = options or WorkerOptions()
        self._pid: int | None = None          # the recorder's
        self._path: Path | None = None
        self._log: Path | None = None
        self._error: str | None = None

    async def setup(self, worker: Any) -> None:
        # A coroutine: waiting for the recorder must not block the worker's event loop
        # (the recording would show it as a blocked loop).
        folder = Path(tempfile.mkdtemp(prefix="inspector-dask-"))
        path = self._path = folder / f"worker-{os.getpid()}.sqlite"
        log = self._log = folder / "recorder.log"
        command = self.options.argv(os.getpid(), path)
        # Started by a shell that exits at once, so the recorder is not the worker's child:
        # py-spy follows the worker's children (--subprocesses) and would record the
        # recorder's own threads as the worker's. In the worker's session still: a session
        # of its own is an autogroup of its own, scheduled apart from the worker's (a worker
        # at raised priority starved it).
        launched = subprocess.run(
            ["/bin/sh", "-c", '"$@" </dev/null >/dev/null 2>"$INSPECTOR_LOG" & echo $!', "sh",
             *command], env={**os.environ, "INSPECTOR_LOG": str(log)},
            stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        try:
            pid = self._pid = int(launched.stdout.strip())
        except ValueError:
            self._error = f"the recorder could not be started: {launched.stderr.strip()}"
            return
        _allow_ptrace_by(pid)
        deadline = time.monotonic() + RECORDER_START_TIMEOUT_S
        started = partial_path(path)  # the recorder writes PATH.partial until it ends
        while not started.exists() and _alive(pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if not _alive(pid) or not started.exists():
            self._error = "the recorder did not start: " + self._log_text()
        else:
            await asyncio.sleep(2 * self.options.interval_s)  # its first samples taken

    def _log_text(self) -> str:
        try:
            text = self._log.read_text(errors="replace") if self._log else ""
        except OSError:
            return ""
        return " ".join(text.split())[-300:]

    async def stop(self) -> tuple[int, str, bytes | None, str | None]:
        """Ends the recording (SIGINT: the recorder finishes its file) and returns (pid,
        host, the file's bytes, an error) and removes the file."""
        pid, path = self._pid, self._path
        if path is None:
            return os.getpid(), socket.gethostname(), None, "never set up"
        if pid is not None and _alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGINT)
            deadline = time.monotonic() + RECORDER_STOP_TIMEOUT_S
            while _alive(pid) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        if pid is not None:
            _take_back_ptrace()  # the recorder is gone
        error = self._error
        # the recorder says so on stderr when it finished its file; anything else went wrong
        if error is None and "recording written" not in self._log_text():
            error = f"the recorder failed: {self._log_text() or 'no word from it'}"
        data = path.read_bytes() if path.exists() else None
        for leftover in (path, self._log):
            if leftover is not None:
                leftover.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()
        self._pid = self._path = None
        return os.getpid(), socket.gethostname(), data, error

    async def teardown(self, worker: Any) -> None:
        if self._pid is not None and _alive(self._pid):
            await self.stop()
        elif self._pid is not None:  # it ended on its own (its --duration)
            _take_back_ptrace()


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie, not yet reaped by its new parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] not in (b"Z", b"X")


def _allow_ptrace_by(pid: int) -> None:
    """Under Yama's ptrace_scope 1 only an ancestor may read a process's stacks, and the
    recorder is not the worker's: the worker names it (and its py-spy runs) as its tracer."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PTRACER, pid, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _take_back_ptrace() -> None:
    """Once its recording is over nobody may trace the worker (Yama forgets a tracer that
    exits, not one left running). Without Yama the call fails, harmlessly, as the grant did."""
    _allow_ptrace_by(0)


async def _stop_recording(dask_worker: Any) -> tuple[int, str, bytes | None, str | None]:
    plugin = dask_worker.plugins.get(PLUGIN_NAME)
    if plugin is None:
        return os.getpid(), socket.gethostname(), None, "no inspector plugin on this worker"
    return await plugin.stop()  # type: ignore[no-any-return]


def measure_clocks(client: Client, reads: int = CLOCK_READS) -> dict[str, ClockOffset]:
    """Each worker's clock offset from this process's, NTP-style: the worker's time.time()
    against the midpoint of the client's before and after, from the read with the shortest
    round trip; half that round trip bounds the error."""
    best: dict[str, tuple[float, float]] = {}  # address -> (round trip, offset)
    for _ in range(reads):
        for address in client.scheduler_info()["workers"]:
            before = time.time()
            theirs = client.run(time.time, workers=[address])
            after = time.time()
            if address not in theirs:
                continue
            rtt = after - before
            offset = float(theirs[address]) - (before + after) / 2
            if address not in best or rtt < best[address][0]:
                best[address] = (rtt, offset)
    return {a: ClockOffset(off, rtt / 2) for a, (rtt, off) in best.items()}


class ClusterRecording:
    """A recording of every worker in progress: `stop()` collects and merges it."""

    def __init__(self, client: Client, output: Path, plugin: RecordWorkers,
                 command: list[str] | None = None) -> None:
        self.client = client
        self.output = output
        self.plugin = plugin
        # The run the workers served, where it is this process (record_cluster in the
        # client's script); None for `inspector record --dask`, which only watched them.
        self.command = command
        self.workers: list[WorkerRecording] = []
        self.errors: list[str] = []

    def start(self) -> None:
        _register(self.client, self.plugin)

    def stop(self) -> Path:
        """Ends every worker's recording, brings the files back, merges them into
        `output` (the workers' own files beside it, in OUTPUT-workers/)."""
        from inspector.recording.merge import Source, merge

        results = self.client.run(_stop_recording)
        clocks = measure_clocks(self.client)  # after: the recordings end with the work
        _unregister(self.client)
        names = {a: str(w.get("name", a))
                 for a, w in self.client.scheduler_info()["workers"].items()}
        folder = _workers_folder(self.output)
        errors = self.errors
        taken: set[str] = set()
        for address, (pid, host, data, error) in sorted(results.items(),
                                                        key=lambda kv: names.get(kv[0], kv[0])):
            name = names.get(address, address)
            if error or data is None:
                errors.append(f"worker {name} ({address}): {error or 'no recording'}")
            if data is None:
                continue
            path = _save_worker_file(folder, name, data, taken)
            self.workers.append(WorkerRecording(address, name, host, pid, path,
                                                clocks.get(address, ClockOffset(0.0, 0.0)),
                                                error))
        if not self.workers:
            raise DaskRecordError("no worker's recording came back: " + "; ".join(errors))
        recorder = ["inspector", "record", "--dask", str(self.client.scheduler.address), "-o",
                    str(self.output)]
        # masked as every recorder masks: the client script's command line is stored too
        merge([Source(w.path, label=w.name, clock_offset_s=w.clock.offset_s,
                      clock_uncertainty_s=w.clock.uncertainty_s) for w in self.workers],
              self.output, command=self.command or recorder,
              command_ran_workers=self.command is not None,
              mask=SecretMask(self.plugin.options.redact))
        return self.output


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60] or "worker"


def _workers_folder(output: Path) -> Path:
    """OUTPUT-workers/, made if need be: a folder, not a link to one."""
    folder = output.with_name(output.stem + "-workers")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DaskRecordError(f"cannot make {folder}: {e.strerror or e}") from None
    kind = what_is_at(folder)
    if kind != "a directory":
        raise DaskRecordError(f"cannot write the workers' recordings in {folder}: it is {kind}"
                              " (left as it is)")
    return folder


def _save_worker_file(folder: Path, name: str, data: bytes, taken: set[str]) -> Path:
    """Writes a worker's recording as worker-NAME.sqlite (0600), or worker-NAME-2.sqlite ...
    where another worker of this run cleaned to the same name or something not a regular
    file is there (a regular file, a former run's recording, is replaced)."""
    stem, n = f"worker-{_safe(name)}", 1
    path = folder / f"{stem}.sqlite"
    while path.name in taken or what_is_at(path) not in (None, REGULAR):
        n += 1
        path = folder / f"{stem}-{n}.sqlite"
    taken.add(path.name)
    write_atomically(path, data, DaskRecordError, "record --dask")
    return path


def _register(client: Client, plugin: RecordWorkers) -> None:
    if hasattr(client, "register_plugin"):
        client.register_plugin(plugin, name=PLUGIN_NAME)
    else:  # distributed before 2023.9
        client.register_worker_plugin(plugin, name=PLUGIN_NAME)  # type: ignore[attr-defined]


def _unregister(client: Client) -> None:
    with contextlib.suppress(Exception):  # gone already, or a scheduler without it
        client.unregister_worker_plugin(PLUGIN_NAME)


@contextlib.contextmanager
def record_cluster(client: Client, output: str | os.PathLike[str],
                   interval_s: float = DEFAULT_INTERVAL_S, rate_hz: int = DEFAULT_RATE_HZ,
                   stacks: bool = True, redact: str | None = None) -> Iterator[ClusterRecording]:
    """Records every worker of `client`'s cluster while the block runs; on leaving it, the
    recordings come back and are merged into `output`. `redact`: as `record --redact`."""
    command = list(getattr(sys, "orig_argv", [])) or [sys.executable, *sys.argv]
    plugin = RecordWorkers(WorkerOptions(interval_s, rate_hz, stacks, redact=redact))
    session = ClusterRecording(client, Path(output), plugin, command)
    session.start()
    try:
        yield session
    finally:
        session.stop()


def record_scheduler(address: str, duration_s: float, output: Path,
                     options: WorkerOptions | None = None) -> ClusterRecording:
    """`inspector record --dask ADDRESS`: every worker of a running cluster for
    `duration_s` seconds (or until interrupted), each recorded with `options`."""
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as e:  # ValueError: not an address Dask knows
        raise DaskRecordError(f"cannot reach the Dask scheduler at {address}: "
                              f"{' '.join(str(e).split())}") from None
    try:
        session = ClusterRecording(client, output, RecordWorkers(options))
        session.start()
        try:
            time.sleep(duration_s)
        except KeyboardInterrupt:
            pass
        session.stop()
        return session
    finally:
        client.close()
