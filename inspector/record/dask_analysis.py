"""`inspector summary/report/compare --dask SCHEDULER NAME`: the recordings a cluster kept on
its hosts (record/dask_kept.py) judged where they lie. Each worker loads its own and runs the
per-worker diagnosis on it (map: analyze.cluster.summarise_worker, a task pinned to it); only
those small summaries come back, and the client combines them (reduce:
analyze.cluster.combine_workers) into the cluster diagnosis a merged file would give.
"""

from __future__ import annotations

import pickle
import resource
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from distributed import Client

from inspector.analyze.cluster import ClusterDiagnosis, WorkerSummary, combine_workers
from inspector.errors import InspectorError
from inspector.record.dask import connect
from inspector.record.dask_kept import (
    DEFAULT_FOLDER,
    KeepOnWorkers,
    KeptFile,
    list_kept,
    read_note,
    worker_version,
)

# A worker judges one recording at a time (a host-hour of 64 threads takes ~1.6 GB to judge;
# two at once, twice that), so the process's CPU over one judging is that judging's.
_ONE_AT_A_TIME = threading.Lock()


class DaskAnalysisError(InspectorError):
    """The recordings kept on a cluster's workers cannot be judged there."""


@dataclass(frozen=True)
class AnalysisCost:
    """What judging one kept recording took on its worker, and what came back."""

    worker: str
    host: str
    cpu_s: float               # the worker process's CPU meanwhile (all its threads)
    wall_s: float
    peak_rss_bytes: int | None  # the worker's resident peak meanwhile (None: unknown)
    recording_bytes: int       # what stayed on the host
    reply_bytes: int           # what came back: the pickled summary


@dataclass(frozen=True)
class Judged:
    """What a worker sends back of one kept recording: its summary and cost, or an error."""

    summary: WorkerSummary | None
    cost: AnalysisCost | None
    command: tuple[str, ...] | None   # from the recording's note
    error: str | None = None


@dataclass(frozen=True)
class ClusterAnalysis:
    """The cluster diagnosis made on the workers, with its cost."""

    name: str
    cluster: ClusterDiagnosis
    summaries: tuple[WorkerSummary, ...]
    costs: tuple[AnalysisCost, ...]
    wall_s: float              # on the client: from connecting to the combined diagnosis
    errors: tuple[str, ...]    # recordings that could not be judged (the rest were)

    @property
    def cpu_s(self) -> float:
        return sum(c.cpu_s for c in self.costs)

    def cost_sentence(self) -> str:
        """'analysed on 2 workers: 2 recordings (12.0 MB) stayed on their hosts; 3.1 s of
        the workers' CPU, 1.6 s in all; 118 KB came back'"""
        kept = sum(c.recording_bytes for c in self.costs)
        back = sum(c.reply_bytes for c in self.costs)
        workers = len({c.worker for c in self.costs})
        return (f"analysed on {workers} worker{'s' if workers != 1 else ''}: "
                f"{len(self.costs)} recording{'s' if len(self.costs) != 1 else ''} "
                f"({kept / 1e6:.1f} MB) stayed on their hosts; {self.cpu_s:.1f} s of the "
                f"workers' CPU, {self.wall_s:.1f} s in all; {back / 1e3:.0f} KB came back")


def _rusage_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _reset_peak_rss() -> bool:
    """Starts the process's resident peak (VmHWM) afresh, where Linux lets it be."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def judge_kept(path: str, worker: str) -> Judged:
    """Run on a worker: loads the recording kept at `path` on its host, judges it as a merged
    file's part is judged, and returns its summary and what that took (or an error)."""
    with _ONE_AT_A_TIME:
        return _judge(Path(path), worker)


def _judge(kept: Path, worker: str) -> Judged:
    import socket

    from inspector.analyze.cluster import summarise_worker
    from inspector.recording import load
    from inspector.recording.merge import Part

    cpu0, wall0 = _rusage_cpu_s(), time.perf_counter()
    peak_known = _reset_peak_rss()
    try:
        rec = load(kept)
    except InspectorError as e:
        return Judged(None, None, None, f"{socket.gethostname()}:{kept}: {e}")
    note = read_note(kept)
    label = note.worker if note is not None else kept.stem.removeprefix("worker-")
    host = rec.meta.hostname or socket.gethostname()
    part = Part(0, label, host, note.clock_offset_s if note else 0.0,
                note.clock_uncertainty_s if note else None, 0.0, rec)
    summary = summarise_worker(part)
    del rec, part
    cost = AnalysisCost(worker, host, _rusage_cpu_s() - cpu0, time.perf_counter() - wall0,
                        _peak_rss_bytes() if peak_known else None, kept.stat().st_size,
                        len(pickle.dumps(summary)))
    return Judged(summary, cost, note.command if note is not None else None)


def check_versions(client: Client) -> None:
    """The same inspector on the client and every worker, or one line saying where not: a
    worker of another version would judge by other rules, or not understand the request."""
    from inspector import __version__

    try:
        versions = client.run(worker_version)
    except Exception as e:  # whatever an old or broken worker raised
        raise DaskAnalysisError(f"cannot ask the workers their inspector version "
                                f"({type(e).__name__}: {' '.join(str(e).split())[:200]}): "
                                f"install inspector {__version__} on every worker") from None
    other = {a: v for a, v in versions.items() if v != __version__}
    if other:
        address, version = sorted(other.items())[0]
        more = f" (and {len(other) - 1} more)" if len(other) > 1 else ""
        raise DaskAnalysisError(f"inspector {__version__} here but {version} on worker "
                                f"{address}{more}: install the same version everywhere")


def assign_kept(listing: dict[str, tuple[str, list[KeptFile]]], names: dict[str, str]
            ) -> list[tuple[str, KeptFile]]:
    """Each kept file once, to a worker of its host: the worker that recorded it where it is
    still there, else the host's workers in turn (the workers of one host list the same
    files; a worker that left the cluster left its recording behind)."""
    workers_of: dict[str, list[str]] = {}
    files: dict[tuple[str, str], KeptFile] = {}
    for address, (host, kept) in sorted(listing.items()):
        workers_of.setdefault(host, []).append(address)
        for f in kept:
            files.setdefault((host, f.path), f)
    by_name = {names.get(a, a): a for a in listing}
    turn: dict[str, int] = {}
    out = []
    for (host, _), f in sorted(files.items()):
        owner = by_name.get(f.worker or "")
        if owner is None or listing[owner][0] != host:
            i = turn.get(host, 0)
            turn[host] = i + 1
            owner = workers_of[host][i % len(workers_of[host])]
        out.append((owner, f))
    return out


def analyse(client: Client, keep: KeepOnWorkers) -> ClusterAnalysis:
    """The map (each kept recording judged by a task pinned to a worker of its host) and the
    reduce (the cluster diagnosis from their summaries), on a connected client."""
    t0 = time.perf_counter()
    check_versions(client)
    names = {a: str(w.get("name", a)) for a, w in client.scheduler_info()["workers"].items()}
    listing = client.run(list_kept, keep)
    work = assign_kept(listing, names)
    if not work:
        where = keep.folder or f"$TMPDIR/{DEFAULT_FOLDER}"
        raise DaskAnalysisError(f"no worker of the cluster keeps a recording named "
                                f"{keep.name!r} (in {where}/{keep.name} on their hosts)")
    futures = [client.submit(judge_kept, f.path, names.get(address, address), pure=False,
                             workers=[address], allow_other_workers=False,
                             key=f"inspector-judge-{keep.name}-{i}-{time.time_ns()}")
               for i, (address, f) in enumerate(work)]
    results: list[Judged] = []
    for (address, f), future in zip(work, futures):
        try:
            results.append(future.result())
        except Exception as e:  # the worker died (KilledWorker: out of memory) or broke
            results.append(Judged(None, None, None, f"{f.host}:{f.path} on worker "
                                  f"{names.get(address, address)}: {type(e).__name__}: "
                                  f"{' '.join(str(e).split())[:200]}"))
    errors = tuple(j.error for j in results if j.error is not None)
    # in the order a merge puts its sources: by the workers' names
    done = sorted((j for j in results if j.summary is not None and j.cost is not None),
                  key=lambda j: j.summary.verdict.label if j.summary else "")
    if not done:
        raise DaskAnalysisError(f"no recording named {keep.name!r} could be judged: "
                                + "; ".join(errors))
    summaries = [replace(j.summary, verdict=replace(j.summary.verdict, index=i))
                 for i, j in enumerate(done) if j.summary is not None]
    # the run the workers served, where the notes name it (record_cluster in a script)
    command = next((j.command for j in done if j.command is not None), None)
    cd = combine_workers(summaries, command=command)
    return ClusterAnalysis(keep.name, cd, tuple(summaries),
                           tuple(j.cost for j in done if j.cost is not None),
                           time.perf_counter() - t0, errors)


def analyse_cluster(address: str, names: Sequence[str], folder: str | None = None
                    ) -> list[ClusterAnalysis]:
    """Connects to the scheduler at `address` and judges each named recording there."""
    client = connect(address, DaskAnalysisError)
    try:
        return [analyse(client, KeepOnWorkers(n, folder)) for n in names]
    finally:
        client.close()
