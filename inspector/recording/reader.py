"""`load()`: reads a recording into a `Recording` of pandas DataFrames, and raises
`RecordingError`, and only that, for anything unreadable. The meta (meta.py), the small
tables (columns.py's generic read) and the growing ones (tables.py, beside the background
read of background.py and the thread blocks' decoding) each have a module of their own;
limits.py bounds what a file may make load() hold and checks the values it gives.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from inspector.errors import RecordingError
from inspector.recording.background import Background
from inspector.recording.columns import Irregular, column_kinds, read_frame
from inspector.recording.limits import Limits, check_values, limits, stack_frames
from inspector.recording.meta_json import meta_json, parse_meta
from inspector.recording.model import Recording
from inspector.recording.schema import (
    MACHINE_BLOCKS,
    MACHINE_SAMPLE_COLUMNS,
    PROCESS_BLOCKS,
    PROCESS_COLUMNS,
    PROCESS_CORES_COLUMNS,
    PROCESS_SAMPLE_COLUMNS,
    STACK_BLOCKS,
    STACK_COLUMNS,
    THREAD_BLOCKS,
    THREAD_SAMPLE_COLUMNS,
)
from inspector.recording.tables import (
    BlockRead,
    has_table,
    in_time_order,
    present_columns,
    table_rows,
    with_blocks,
    with_rates,
    with_stack_texts,
)
from inspector.recording.untrusted import file_bytes, open_recording

__all__ = ["Recording", "load"]


def load(path: str | os.PathLike[str]) -> Recording:
    """Opens a recording. Raises RecordingError, and only that, for anything unreadable,
    and for a file that would make more rows than its size allows (limits.py)."""
    p = Path(path)
    bounds = limits(file_bytes(p))
    try:
        db = open_recording(p)
    except OSError as e:
        raise RecordingError(f"{p}: cannot read ({e.strerror or e})") from None
    kinds = column_kinds()
    present = present_columns(db)
    check = Background(p, {
        table: ([c for c in columns if kinds[c] == "integer" and c in present[table]],
                [c for c in columns if kinds[c] == "text" and c in present[table]])
        for table, columns in (("thread_samples", THREAD_SAMPLE_COLUMNS),
                               ("stacks", STACK_COLUMNS),
                               ("process_samples", PROCESS_SAMPLE_COLUMNS))})
    check.start()
    blocks = BlockRead(p, bounds.rows)
    blocks.start()
    try:
        try:
            rec = _read(db, p, check, blocks, bounds)
        except RecordingError as e:
            raise (check.verdict(p) or e) from None
        bad = check.verdict(p)
        if bad is not None:
            raise bad
    finally:
        db.close()
        blocks.join()
    return rec


def small_tables(db: sqlite3.Connection, p: Path) -> tuple[dict[str, Any], Recording]:
    """The file's raw meta, and a Recording of its meta and small tables (processes,
    threads, problems, gil_samples, process_cores) whose growing tables are left empty:
    load()'s first part, and what a read by windows (windows.py) starts from."""
    raw_meta = meta_json(db, p)
    meta = parse_meta(raw_meta, p)
    processes = read_frame(db, p, "SELECT * FROM processes ORDER BY proc_id", PROCESS_COLUMNS)
    try:
        cmdlines = [json.loads(c) if c else [] for c in processes["cmdline"]]
    except (TypeError, ValueError):
        raise RecordingError(f"{p}: corrupt recording (bad command line)") from None
    if not all(isinstance(c, list) and all(isinstance(a, str) for a in c) for c in cmdlines):
        raise RecordingError(f"{p}: corrupt recording (bad command line)")
    processes["cmdline"] = cmdlines
    processes["is_python"] = processes["is_python"].fillna(0).astype(bool)
    processes["is_target"] = processes["is_target"].fillna(0).astype(bool)
    threads = read_frame(db, p, "SELECT * FROM threads ORDER BY proc_id, tid",
                     ("proc_id", "pid", "tid", "name"))
    problems = read_frame(db, p, "SELECT * FROM problems ORDER BY t_s", ("t_s", "kind"))
    # gil_samples came later within format version 1: a file without it has none
    gil_sql = ("SELECT * FROM gil_samples ORDER BY t_s" if has_table(db, p, "gil_samples")
               else "SELECT NULL AS t_s, NULL AS duration_s, NULL AS proc_id, NULL AS pid,"
                    " NULL AS tid, NULL AS thread_name, NULL AS samples,"
                    " NULL AS samples_total WHERE 0")
    gil_samples = read_frame(db, p, gil_sql,
                         ("t_s", "duration_s", "pid", "tid", "samples", "samples_total"))
    gil_samples["share"] = (gil_samples["samples"].astype("float64")
                            / gil_samples["samples_total"].clip(lower=1))
    process_cores = _process_cores(db, p)
    empty = pd.DataFrame()
    return raw_meta, Recording(p, meta, processes, threads, empty, empty, empty, problems,
                               gil_samples, empty, process_cores)


def _read(db: sqlite3.Connection, p: Path, background: Background, blocks: BlockRead,
          bounds: Limits) -> Recording:
    raw_meta, small = small_tables(db, p)
    meta = small.meta
    rows: dict[str, dict[str, Any]] = {}
    for table, columns in (  # in the order the background thread reads their integers
            ("thread_samples", THREAD_SAMPLE_COLUMNS), ("stacks", STACK_COLUMNS),
            ("process_samples", PROCESS_SAMPLE_COLUMNS)):
        try:
            rows[table] = table_rows(db, p, table, columns, True, background)
        except Irregular:
            rows[table] = table_rows(db, p, table, columns, False, background)
    machine_samples = _machine_samples(db, p, blocks)
    # last: the blocks were decoded meanwhile
    process_samples = with_rates(with_blocks(rows.pop("process_samples"), blocks,
                                             PROCESS_BLOCKS), ["proc_id"])
    thread_samples = with_rates(with_blocks(rows.pop("thread_samples"), blocks, THREAD_BLOCKS),
                                ["proc_id", "tid"])
    stacks = with_stack_texts(db, p, with_blocks(rows.pop("stacks"), blocks, STACK_BLOCKS),
                              bounds)
    bounds.frames.check(p, stack_frames(stacks), "stack frames over its spans")
    for table, frame in (("processes", small.processes), ("threads", small.threads),
                         ("process_samples", process_samples),
                         ("thread_samples", thread_samples), ("stacks", stacks),
                         ("problems", small.problems), ("gil_samples", small.gil_samples),
                         ("machine_samples", machine_samples)):
        check_values(p, table, frame)
    if "duration_s" not in raw_meta:
        # A recorder killed mid-run never wrote its summary (nor `complete`): derive the length.
        last = [df["t_s"].max() for df in (process_samples, thread_samples) if not df.empty]
        meta = replace(meta, duration_s=float(max(last)) if last else 0.0)
    return replace(small, meta=meta, process_samples=process_samples,
                   thread_samples=thread_samples, stacks=stacks,
                   machine_samples=machine_samples)


def _machine_samples(db: sqlite3.Connection, p: Path, blocks: BlockRead) -> pd.DataFrame:
    """machine_samples (came later within format version 1: a file without it has none),
    its rows and blocks (since version 3), in time order; `host` as plain text."""
    if not has_table(db, p, "machine_samples"):
        return read_frame(db, p, "SELECT NULL AS t_s, NULL AS busy_cores,"
                                 " NULL AS recorder_cores WHERE 0", MACHINE_SAMPLE_COLUMNS)
    stored = read_frame(db, p, "SELECT * FROM machine_samples ORDER BY t_s",
                        MACHINE_SAMPLE_COLUMNS)
    columns = with_blocks({name: stored[name].array for name in stored.columns}, blocks,
                          MACHINE_BLOCKS)
    if len(columns["t_s"]) == len(stored):
        return stored
    host = columns.get("host")
    if host is not None:  # a handful of rows a second: the rows' own kind of column
        columns["host"] = np.asarray(host, dtype=object)
        columns["host"][pd.isna(columns["host"])] = None
    return in_time_order(columns).reset_index(drop=True)


def _process_cores(db: sqlite3.Connection, p: Path) -> pd.DataFrame:
    """process_cores, sorted by process and time, every column present: empty for a file
    written before the table. Values of the wrong kind refuse the file (as in every table);
    a row without its time or process is dropped, a `cpus` that is no CPU list stays as it
    is (the analysis takes it as unknown: recording.cpus.parse_cpus)."""
    if not has_table(db, p, "process_cores"):
        return pd.DataFrame({c: pd.Series(dtype="float64" if c not in _CORES_TEXT else object)
                             for c in PROCESS_CORES_COLUMNS})
    df = read_frame(db, p, "SELECT * FROM process_cores", ("t_s", "proc_id"))
    for c in PROCESS_CORES_COLUMNS:
        if c not in df.columns:
            df[c] = None if c in _CORES_TEXT else np.nan
    df = df[list(PROCESS_CORES_COLUMNS)]
    keep = df["t_s"].notna() & df["proc_id"].notna()
    with np.errstate(invalid="ignore"):
        keep &= np.isfinite(df["t_s"].to_numpy(dtype="float64"))
    return df[keep].sort_values(["proc_id", "t_s"], kind="stable").reset_index(drop=True)


_CORES_TEXT = ("cpus", "cores_limited_by", "quota_cgroup")
