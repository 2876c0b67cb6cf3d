"""Records every worker of a Dask cluster: a WorkerPlugin starts `inspector record --pid` on
each worker process (on every host, and on workers that join later), and the recordings come
back to the client through Dask itself (`Client.run`), to be merged on one clock.

    from inspector.record.dask import record_cluster
    with record_cluster(client, "run.sqlite"):
        client.gather(client.map(work, items))

or `inspector record --dask tcp://SCHEDULER:8786 --duration 30 -o run.sqlite`. Needs the `dask`
extra (`pip install 'inspector[dask]'`) here and inspector installed on every worker. For a
big cluster, `keep_on_workers=True` (`--keep-on-workers`) leaves each worker's recording on its
host (record/dask_kept.py), to be judged there (record/dask_analysis.py).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed import Client

from inspector.errors import InspectorError
from inspector.files import REGULAR, what_is_at, write_atomically
from inspector.record.dask_kept import KeepOnWorkers, KeptNote, check_name, safe
from inspector.record.dask_plugin import (
    PLUGIN_NAME,
    RecordWorkers,
    WorkerOptions,
    stop_recording,
    write_notes,
)
from inspector.record.secrets import SecretMask
from inspector.recording import DEFAULT_INTERVAL_S, DEFAULT_RATE_HZ

__all__ = ["ClusterRecording", "DaskRecordError", "RecordWorkers", "WorkerOptions",
           "record_cluster", "record_scheduler"]

# Clock reads per worker for the offset: the one with the shortest round trip is kept, as
# NTP does (a short round trip leaves the least room for error).
CLOCK_READS = 7
# How long `inspector record --dask` tries to reach the scheduler before saying it cannot.
CONNECT_TIMEOUT_S = 10.0


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

        results = self.client.run(stop_recording)
        clocks = measure_clocks(self.client)  # after: the recordings end with the work
        names = {a: str(w.get("name", a))
                 for a, w in self.client.scheduler_info()["workers"].items()}
        if self.plugin.keep is not None:
            return self._keep_on_workers(results, clocks, names)
        _unregister(self.client)
        folder = _workers_folder(self.output)
        errors = self.errors
        taken: set[str] = set()
        for address, (pid, host, data, error, _kept) in sorted(
                results.items(), key=lambda kv: names.get(kv[0], kv[0])):
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

    def _keep_on_workers(self, results: dict[str, Any], clocks: dict[str, ClockOffset],
                         names: dict[str, str]) -> Path:
        """Each worker's recording stays on its host; beside it, a note of its worker's name,
        its clock against this one and the command (masked as a recorder masks it)."""
        from inspector import __version__

        mask = SecretMask(self.plugin.options.redact)
        command = tuple(mask.command(self.command)) if self.command else None
        notes: dict[str, tuple[str, KeptNote]] = {}
        for address, (pid, host, _data, error, kept) in sorted(
                results.items(), key=lambda kv: names.get(kv[0], kv[0])):
            name = names.get(address, address)
            if error or kept is None:
                self.errors.append(f"worker {name} ({address}): {error or 'no recording'}")
            if kept is None:
                continue
            clock = clocks.get(address, ClockOffset(0.0, 0.0))
            notes[address] = (kept, KeptNote(name, address, clock.offset_s,
                                             clock.uncertainty_s, command, __version__))
            self.workers.append(WorkerRecording(address, name, host, pid, Path(kept), clock,
                                                error))
        for address, error in self.client.run(write_notes, notes).items():
            if error:
                self.errors.append(f"worker {names.get(address, address)} ({address}): {error}")
        _unregister(self.client)
        if not self.workers:
            raise DaskRecordError("no worker kept a recording: " + "; ".join(self.errors))
        return self.output


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
    stem, n = f"worker-{safe(name)}", 1
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
                   stacks: bool = True, redact: str | None = None,
                   keep_on_workers: bool = False, worker_dir: str | None = None
                   ) -> Iterator[ClusterRecording]:
    """Records every worker of `client`'s cluster while the block runs; on leaving it, the
    recordings come back and are merged into `output`. `redact`: as `record --redact`.
    `keep_on_workers`: each worker keeps its own on its host instead, as
    WORKER_DIR/NAME/worker-WORKER.sqlite (`output` names it; WORKER_DIR, a path on the
    workers, defaults to their temporary directory's inspector-dask/): for clusters too big
    to bring back, judged where they are by `inspector summary --dask SCHEDULER NAME`."""
    command = list(getattr(sys, "orig_argv", [])) or [sys.executable, *sys.argv]
    keep = (KeepOnWorkers(check_name(os.fspath(output)), worker_dir) if keep_on_workers
            else None)
    plugin = RecordWorkers(WorkerOptions(interval_s, rate_hz, stacks, redact=redact), keep)
    session = ClusterRecording(client, Path(output), plugin, command)
    session.start()
    try:
        yield session
    finally:
        session.stop()


def connect(address: str, error: type[InspectorError] = InspectorError) -> Client:
    """A client of the scheduler at `address`, or `error` in one line."""
    try:
        return Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as e:  # ValueError: not an address Dask knows
        raise error(f"cannot reach the Dask scheduler at {address}: "
                    f"{' '.join(str(e).split())}") from None


def record_scheduler(address: str, duration_s: float, output: Path,
                     options: WorkerOptions | None = None,
                     keep: KeepOnWorkers | None = None) -> ClusterRecording:
    """`inspector record --dask ADDRESS`: every worker of a running cluster for
    `duration_s` seconds (or until interrupted), each recorded with `options`; `keep`:
    each kept on its host instead of merged into `output`."""
    client = connect(address, DaskRecordError)
    try:
        session = ClusterRecording(client, output, RecordWorkers(options, keep))
        session.start()
        try:
            time.sleep(duration_s)
        except KeyboardInterrupt:
            pass
        session.stop()
        return session
    finally:
        client.close()
