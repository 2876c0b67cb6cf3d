"""The Dask WorkerPlugin that starts `inspector record --pid` beside each worker process
(inspector/record/dask.py registers it) and the functions `Client.run` calls on the workers to
end the recordings: bringing each back, or leaving it on its host with its note."""

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin

from inspector.errors import InspectorError
from inspector.record.dask_kept import (
    KeepOnWorkers,
    KeptNote,
    kept_path,
    make_run_folder,
    note_path,
    write_note,
)
from inspector.recording import DEFAULT_INTERVAL_S, DEFAULT_RATE_HZ
from inspector.recording.partial import partial_path
from inspector.recording.schema import DEFAULT_LINGER_S

PLUGIN_NAME = "inspector-record"
# How long a worker waits for its recorder to have started (written its file) before the
# plugin gives up on it: the recorder imports and starts in ~0.5 s on an idle machine.
RECORDER_START_TIMEOUT_S = 20.0
# How long a stopped recorder may take to finish its file (py-spy writes its last stacks).
RECORDER_STOP_TIMEOUT_S = 60.0
_PR_SET_PTRACER = 0x59616D61  # Yama: let this process (and its children) ptrace us


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

    def __init__(self, options: WorkerOptions | None = None,
                 keep: KeepOnWorkers | None = None) -> None:
        self.options = options or WorkerOptions()
        self.keep = keep  # None: the recording goes back to the client
        self.kept: str | None = None  # where stop() left it, when kept
        self._pid: int | None = None          # the recorder's
        self._path: Path | None = None
        self._log: Path | None = None
        self._error: str | None = None

    async def setup(self, worker: Any) -> None:
        # A coroutine: waiting for the recorder must not block the worker's event loop
        # (the recording would show it as a blocked loop).
        if self.keep is None:
            folder = Path(tempfile.mkdtemp(prefix="inspector-dask-"))
            path = self._path = folder / f"worker-{os.getpid()}.sqlite"
            log = self._log = folder / "recorder.log"
        else:
            try:
                folder = make_run_folder(self.keep)
            except InspectorError as e:
                self._error = str(e)
                return
            path = self._path = kept_path(folder, str(getattr(worker, "name", os.getpid())))
            log = self._log = path.with_suffix(".log")
            note_path(path).unlink(missing_ok=True)  # a former run's: this one's comes at stop
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
        host, the file's bytes, an error) and removes the file; a kept recording stays
        where it is (`kept`) and no bytes are returned."""
        pid, path = self._pid, self._path
        self.kept = None
        if path is None:
            return os.getpid(), socket.gethostname(), None, self._error or "never set up"
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
        if self.keep is not None:
            if self._log is not None:
                self._log.unlink(missing_ok=True)
            self.kept = str(path) if path.exists() else None
            self._pid = self._path = None
            return os.getpid(), socket.gethostname(), None, error
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


async def stop_recording(dask_worker: Any
                          ) -> tuple[int, str, bytes | None, str | None, str | None]:
    """(pid, host, the recording's bytes, an error, where it was kept on this host)."""
    plugin = dask_worker.plugins.get(PLUGIN_NAME)
    if plugin is None:
        return os.getpid(), socket.gethostname(), None, "no inspector plugin on this worker", None
    pid, host, data, error = await plugin.stop()
    return pid, host, data, error, getattr(plugin, "kept", None)


def write_notes(notes: dict[str, tuple[str, KeptNote]], dask_worker: Any = None) -> str | None:
    """Writes this worker's note beside its kept recording; an error, or None (Client.run
    passes `dask_worker` by name)."""
    if dask_worker.address not in notes:
        return None
    path, note = notes[dask_worker.address]
    try:
        write_note(Path(path), note)
    except InspectorError as e:
        return str(e)
    return None
