"""Merges recordings made on many hosts (one per Dask worker, say) into one: each host's
processes get a `host`, proc_ids are renumbered to stay unique, and every time is put on one
clock (each recording's wall clock corrected by the offset measured when it was collected).

Reads with `load()`, writes with `RecordingWriter`; meta `merge` says where each part came
from, and `parts()` splits a merged Recording back into one Recording per source.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from inspector.errors import OutputError, RecordingError
from inspector.recording.meta import Meta
from inspector.recording.meta_json import meta_to_json, read_meta
from inspector.recording.model import Recording
from inspector.recording.partial import discard, partial_path, prepare, publish
from inspector.recording.reader import load
from inspector.recording.schema import (
    PROCESS_SAMPLE_COLUMNS,
    STACK_COLUMNS,
    THREAD_SAMPLE_COLUMNS,
)
from inspector.recording.untrusted import open_recording
from inspector.recording.values import opt_int, plain
from inspector.recording.writer import ProcessRecord, RecordingWriter, TextMask

# Linux pids stay below PID_MAX_LIMIT (2**22): a host whose pids collide with another's
# (containers all start at 1) gets its pids and tids moved up by a multiple of it, so that
# (pid, tid), which exporters and stack matching key on, stays unique in the merged file.
PID_SPACE = 2**22
# Rows turned into Python values and written at a time (as the reader reads them).
WRITE_BATCH_ROWS = 65_536
_GIL_COLUMNS = ("t_s", "duration_s", "proc_id", "pid", "tid", "thread_name", "samples",
                "samples_total")


@dataclass(frozen=True)
class Source:
    """One recording to merge, and what is known of its clock."""

    path: Path
    label: str | None = None          # a worker's name; default the file's stem
    clock_offset_s: float = 0.0       # its clock minus the reference clock
    clock_uncertainty_s: float | None = None  # None: not measured, wall clocks trusted


@dataclass(frozen=True)
class MergeResult:
    path: Path
    hosts: tuple[str, ...]
    sources: int
    processes: int


def merge(sources: Sequence[Source], output: Path, command: Sequence[str] = (),
          on_source: Callable[[int, Path], None] | None = None,
          command_ran_workers: bool = False, mask: TextMask | None = None) -> MergeResult:
    """Writes the merged recording of `sources` to `output`; raises RecordingError for an
    unreadable input and OutputError where the output cannot be written. `on_source(i,
    path)` is told as each source is taken in (a progress line). `command`: what made the
    merged file; `command_ran_workers` when it is also the run the recorded workers served
    (the client script of `inspector.record.dask.record_cluster`), not a recorder's own command.
    `mask`: applied to every text written, as a recorder's (`command` is a live one's)."""
    if not sources:
        raise RecordingError("merge: no recordings given")
    for s in sources:
        if output.exists() and s.path.exists() and output.resolve() == s.path.resolve():
            raise OutputError(f"merge: {output} is one of the recordings; give another -o")
    # One recording in memory at a time: their start times first, from their meta alone.
    starts = [_start_unix(s.path) - s.clock_offset_s for s in sources]
    # Written as OUTPUT.partial and published as a recording is (recording.partial): what
    # is at OUTPUT and is not a recording stays, and a merge that fails leaves nothing.
    prepare(output)
    partial = partial_path(output)
    try:
        writer = RecordingWriter(partial, mask)
    except OSError as e:
        raise OutputError(f"cannot write recording {output}: {e.strerror or e}") from None
    except sqlite3.Error as e:  # a disk full at the first commit
        raise OutputError(f"cannot write recording {output}: {e}") from None
    try:
        hosts, processes = _write_merged(writer, sources, starts, command, on_source,
                                         command_ran_workers)
    except BaseException:
        writer.close()
        discard(partial)
        raise
    writer.close()
    where, why = publish(partial, output)
    if why is not None:
        raise OutputError(why)
    return MergeResult(where, hosts, len(sources), processes)


def _write_merged(writer: RecordingWriter, sources: Sequence[Source], starts: list[float],
                  command: Sequence[str], on_source: Callable[[int, Path], None] | None,
                  command_ran_workers: bool) -> tuple[tuple[str, ...], int]:
    """Writes every source into `writer`; returns the hosts and how many processes."""
    t0 = min(starts)
    described: list[dict[str, Any]] = []
    next_proc_id = 1
    pids_by_host: dict[str, set[int]] = {}
    machine_hosts: set[str] = set()
    cores: dict[str, int] = {}
    durations: list[float] = []
    complete = True
    first: Meta | None = None
    for index, (source, start) in enumerate(zip(sources, starts)):
        if on_source is not None:
            on_source(index, source.path)
        rec = load(source.path)
        first = first or rec.meta
        durations.append(rec.duration_s)
        complete = complete and rec.meta.complete
        host = rec.meta.hostname or f"host{index + 1}"
        cores[host] = rec.meta.cpu_count or 1
        shift = start - t0
        pid_offset = _pid_offset(rec, host, pids_by_host)
        proc_map = _write_processes(writer, rec, host, shift, source.clock_offset_s,
                                    next_proc_id, pid_offset)
        _write_samples(writer, rec, proc_map, shift, pid_offset)
        _write_process_cores(writer, rec, proc_map, shift)
        if host not in machine_hosts:  # one series per machine: every recorder there saw it
            machine_hosts.add(host)
            for t, busy, mine in zip(rec.machine_samples["t_s"].tolist(),
                                     rec.machine_samples["busy_cores"].tolist(),
                                     rec.machine_samples["recorder_cores"].tolist()):
                writer.add_machine_sample(t + shift, busy, mine, host=host)
        for row in rec.problems.itertuples(index=False):
            pid = opt_int(getattr(row, "pid", None))
            tid = opt_int(getattr(row, "tid", None))
            writer.add_problem(float(row.t_s) + shift, str(row.source), str(row.kind),
                               str(getattr(row, "detail", "") or ""),
                               pid + pid_offset if pid is not None else None,
                               tid + pid_offset if tid is not None else None)
        ids = sorted(proc_map.values())
        described.append({
            "label": source.label or source.path.stem, "path": str(source.path), "host": host,
            "start_time_unix": start + source.clock_offset_s,
            "clock_offset_s": source.clock_offset_s,
            "clock_uncertainty_s": source.clock_uncertainty_s, "shift_s": shift,
            "proc_ids": [ids[0], ids[-1]] if ids else [], "pid_offset": pid_offset,
            "meta": meta_to_json(replace(rec.meta, merge=None)),
        })
        next_proc_id += max(len(proc_map), 1)
        writer.flush()
        del rec
    hosts = list(dict.fromkeys(d["host"] for d in described))
    assert first is not None  # sources is not empty
    first_json = meta_to_json(first)
    writer.set_meta({
        "mode": "merged", "command": list(command) or ["inspector", "merge"],
        "start_time_unix": t0,
        "duration_s": max(d["shift_s"] + dur for d, dur in zip(described, durations)),
        "cpu_count": sum(cores.values()), "complete": complete,
        "exit_code": None, "settings": first_json["settings"], "stacks": first_json["stacks"],
        "hostname": hosts[0] if len(hosts) == 1 else None,
        "inspector_version": first.inspector_version,
        "merge": {"hosts": hosts, "cpu_count_by_host": cores, "sources": described,
                  "command_ran_workers": command_ran_workers},
    })
    return tuple(hosts), next_proc_id - 1


def _start_unix(path: Path) -> float:
    """When the recording started, by its host's wall clock (meta alone is read)."""
    try:
        db = open_recording(path)
    except OSError as e:
        raise RecordingError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        value = read_meta(db, path).start_time_unix
    finally:
        db.close()
    if value is None:
        raise RecordingError(f"{path}: no start time (meta start_time_unix): "
                             "it cannot be put on a common clock")
    return float(value)


def _pid_offset(rec: Recording, host: str, pids_by_host: dict[str, set[int]]) -> int:
    pids = set(rec.processes["pid"].astype(int).tolist())
    taken = set().union(*(p for h, p in pids_by_host.items() if h != host)) \
        if pids_by_host else set()
    offset = 0
    if pids & taken:
        offset = PID_SPACE * (1 + max(p // PID_SPACE for p in taken))
    pids_by_host.setdefault(host, set()).update(p + offset for p in pids)
    return offset


def _write_processes(writer: RecordingWriter, rec: Recording, host: str, shift: float,
                     offset_s: float, first_id: int, pid_offset: int) -> dict[int, int]:
    procs = rec.processes
    proc_map = {int(old): first_id + i for i, old in enumerate(procs["proc_id"].tolist())}
    extra = [c for c in ("end_s", "exit_code", "affinity_cores", "quota_cores",
                         "usable_cores", "cores_limited_by") if c in procs.columns]
    for row in procs.to_dict("records"):
        parent = opt_int(row.get("parent_proc_id"))
        ppid = opt_int(row.get("ppid"))
        create = plain(row.get("create_time"))
        proc_id = proc_map[int(row["proc_id"])]
        writer.add_process(ProcessRecord(
            proc_id=proc_id, pid=int(row["pid"]) + pid_offset,
            ppid=ppid + pid_offset if ppid is not None else None,
            parent_proc_id=proc_map.get(parent) if parent is not None else None,
            name=str(plain(row.get("name")) or ""), cmdline=list(row.get("cmdline") or []),
            exe=plain(row.get("exe")),
            create_time=create - offset_s if create is not None else None,  # type: ignore
            start_s=float(row["start_s"]) + shift,
            is_python=bool(row.get("is_python")), python_version=plain(row.get("python_version")),
            python_gil=plain(row.get("python_gil")), is_target=bool(row.get("is_target"))))
        fields = {c: plain(row.get(c)) for c in extra}
        if fields.get("end_s") is not None:
            fields["end_s"] = fields["end_s"] + shift
        writer.update_process(proc_id, host=host, **fields)
    for row in rec.threads.to_dict("records"):
        thread_proc = proc_map.get(int(row["proc_id"]))
        if thread_proc is None:
            continue
        tid = int(row["tid"]) + pid_offset
        start = plain(row.get("start_s"))
        writer.upsert_thread(thread_proc, int(row["pid"]) + pid_offset, tid,
                             plain(row.get("os_name")) or plain(row.get("name")),
                             (start if start is not None else 0.0) + shift)
        if plain(row.get("python_name")):
            writer.name_thread(thread_proc, tid, str(row["python_name"]))
        end = plain(row.get("end_s"))
        if end is not None:
            writer.end_thread(thread_proc, tid, end + shift)
    return proc_map


def _write_process_cores(writer: RecordingWriter, rec: Recording, proc_map: dict[int, int],
                         shift: float) -> None:
    """Each process's cores over time, renumbered and on the merged clock (a CPU list names
    its own host's CPUs: processes.host says which)."""
    for row in rec.process_cores.to_dict("records"):
        proc_id = proc_map.get(int(row["proc_id"]))
        if proc_id is None:
            continue
        writer.add_process_cores(
            float(row["t_s"]) + shift, proc_id, plain(row.get("cpus")),
            opt_int(row.get("affinity_cores")), plain(row.get("quota_cores")),
            plain(row.get("usable_cores")), plain(row.get("cores_limited_by")),
            plain(row.get("quota_cgroup")))


def _rows(df: pd.DataFrame, columns: Sequence[str], proc_map: dict[int, int], shift: float,
          pid_offset: int, time_columns: Sequence[str] = ("t_s",)) -> list[tuple[Any, ...]]:
    """The frame's `columns` as rows of Python values, times shifted, ids renumbered."""
    if df.empty:
        return []
    out: list[list[Any]] = []
    for name in columns:
        if name not in df.columns:
            out.append([None] * len(df))
            continue
        col = df[name]
        if name in time_columns:
            values = (col.to_numpy(dtype=np.float64) + shift).tolist()
        elif name == "proc_id":
            values = [proc_map.get(int(v)) if v == v else None
                      for v in col.to_numpy(dtype=np.float64).tolist()]
        elif name in ("pid", "tid"):
            values = (col.to_numpy(dtype=np.int64) + pid_offset).tolist()
        elif (isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == object
              or pd.api.types.is_string_dtype(col.dtype)):
            # a missing text is None (not NaN): the writer's mask reads texts
            values = col.astype(object).where(col.notna(), None).tolist()
        else:
            values = col.tolist()
        out.append(values)
    return list(zip(*out))


def _write_samples(writer: RecordingWriter, rec: Recording, proc_map: dict[int, int],
                   shift: float, pid_offset: int) -> None:
    stacks = rec.stacks
    if not stacks.empty:
        stacks = stacks[stacks["stack"].notna()]
    stack_columns = [c if c != "stack_id" else "stack" for c in STACK_COLUMNS]
    for df, columns, add in (
            (rec.process_samples, PROCESS_SAMPLE_COLUMNS, writer.add_process_samples),
            (rec.thread_samples, THREAD_SAMPLE_COLUMNS, writer.add_thread_samples),
            (stacks, stack_columns, writer.add_stacks),
            (rec.gil_samples, _GIL_COLUMNS, writer.add_gil_samples)):
        # a batch at a time: Python rows of a whole host-hour would outweigh its DataFrames
        for lo in range(0, len(df), WRITE_BATCH_ROWS):
            add(_rows(df.iloc[lo:lo + WRITE_BATCH_ROWS], columns, proc_map, shift, pid_offset))


# -- reading a merged recording back as its parts -------------------------------------------

@dataclass(frozen=True)
class Part:
    """One source of a merged recording (a worker), as a Recording of its own on the
    merged clock."""

    index: int
    label: str
    host: str
    clock_offset_s: float
    clock_uncertainty_s: float | None
    shift_s: float
    recording: Recording


def is_merged(rec: Recording) -> bool:
    return rec.meta.merge is not None


def hosts_of(rec: Recording) -> pd.Series:
    """Each process's host (by proc_id): the host column, or the recording's hostname where
    a file has none (one host's recording, or one written before the column)."""
    procs = rec.processes
    fallback = rec.meta.hostname or "this host"
    if "host" not in procs.columns:
        return pd.Series(fallback, index=procs["proc_id"].to_numpy())
    hosts = procs["host"].astype(object).where(procs["host"].notna(), fallback)
    return pd.Series(hosts.to_numpy(), index=procs["proc_id"].to_numpy())


def parts(rec: Recording) -> list[Part]:
    """The merged recording split into its sources; one part (the whole) if not merged."""
    merged = rec.meta.merge
    if merged is None:
        host = rec.meta.hostname or "this host"
        return [Part(0, rec.path.stem, host, 0.0, None, 0.0, rec)]
    out = []
    for i, s in enumerate(merged.sources):
        lo, hi = s.proc_ids or (0, -1)
        # its own meta, on the merged clock
        meta = replace(s.meta, duration_s=float(s.meta.duration_s) + s.shift_s, hostname=s.host)
        out.append(Part(i, s.label, s.host, float(s.clock_offset_s), s.clock_uncertainty_s,
                        float(s.shift_s), _subset(rec, set(range(lo, hi + 1)), s.host, meta)))
    return out


def _subset(rec: Recording, proc_ids: set[int], host: str, meta: Meta) -> Recording:
    def by_proc(df: pd.DataFrame) -> pd.DataFrame:
        if df.empty or "proc_id" not in df.columns:
            return df
        return df[df["proc_id"].isin(proc_ids)].reset_index(drop=True)

    procs = by_proc(rec.processes)
    pids = set(procs["pid"].astype(int).tolist())
    problems = rec.problems
    if not problems.empty and "pid" in problems.columns:
        problems = problems[problems["pid"].isin(pids)].reset_index(drop=True)
    machine = rec.machine_samples
    if not machine.empty and "host" in machine.columns:
        machine = machine[machine["host"] == host].reset_index(drop=True)
    return Recording(Path(f"{rec.path}#{meta.hostname}"), meta, procs,
                     by_proc(rec.threads), by_proc(rec.process_samples),
                     by_proc(rec.thread_samples), by_proc(rec.stacks), problems,
                     by_proc(rec.gil_samples), machine, by_proc(rec.process_cores))

