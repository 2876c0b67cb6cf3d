"""The recording's tables as files that SQL engines and DataFrame libraries read (`--format csv`
and `--format parquet`): one file per table, as `load()` gives it, and meta.json beside them,
in a directory of their own. Here: which tables, each column's type, and the directory (made
new, or an earlier export of the same format, never anything else); csv.py and parquet.py
write the files.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

import numpy as np
import pandas as pd

from inspector.export import TABLE_FORMATS, ExportError
from inspector.files import atomic_file
from inspector.recording.columns import column_kinds
from inspector.recording.meta_json import meta_to_json
from inspector.recording.schema import FORMAT_NAME

if TYPE_CHECKING:
    from inspector.recording import Recording

# Every table load() gives, by its Recording attribute (docs/recording-format.md documents
# each); an export holds one file per table, named TABLE + its format's ending.
TABLES = ("processes", "threads", "thread_samples", "process_samples", "stacks",
          "gil_samples", "machine_samples", "problems", "process_cores")
# The meta is nested (settings, stacks, interpreters, a merge's sources): JSON, not a table,
# and the same JSON as the recording's meta table (meta_json.meta_to_json).
META_FILE = "meta.json"
# Rows formatted or converted at a time: an hour of 64 threads is millions of thread samples,
# and a CSV of them must not be built as one string, nor a Parquet file as one batch. Each
# chunk is one Parquet row group (DuckDB's own are 122,880 rows).
CHUNK_ROWS = 100_000
# An export's files are as private as the recording they come from (command lines, paths).
DIRECTORY_MODE = 0o700
# load() parses processes.cmdline's JSON into a list of strings.
LIST_COLUMNS = ("cmdline",)

# A column's kind in an export: what its values are, whatever dtype load() gave it.
BOOL = "bool"            # is_python, is_target (stored as 0/1)
INTEGER = "integer"      # int64, with NULLs where the recording has them
REAL = "real"            # float64
TEXT = "text"
CATEGORY = "category"    # text load() holds as a pandas categorical: repeated values
LIST = "list"            # a list of strings (cmdline)


@dataclass(frozen=True)
class Column:
    name: str
    kind: str


class TableWriter(Protocol):
    def write(self, out: BinaryIO, chunks: Iterator[pd.DataFrame],
              columns: list[Column]) -> None: ...


def default_directory(recording_path: Path, fmt: str) -> Path:
    """Where `inspector export REC --format FMT` writes without -o: REC-FMT beside it."""
    return recording_path.with_name(f"{recording_path.stem}-{fmt}")


def file_names(fmt: str) -> tuple[str, ...]:
    """The files an export in `fmt` holds, meta.json first."""
    return (META_FILE, *(table + TABLE_FORMATS[fmt] for table in TABLES))


def writer(fmt: str) -> TableWriter:
    """The module writing `fmt`'s files; ExportError if what it needs is not installed."""
    if fmt == "parquet":
        from inspector.export import parquet
        parquet.require()
        return parquet
    from inspector.export import csv
    return csv


def write_tables(rec: Recording, fmt: str, directory: Path,
                 chunk_rows: int = CHUNK_ROWS) -> list[Path]:
    """Writes every table of `rec` in `fmt` (csv or parquet), and meta.json, into
    `directory`, and returns the files written. The directory is made (0700) if it does not
    exist; one that does must be empty or hold an earlier `fmt` export, else ExportError."""
    out = writer(fmt)
    prepare_directory(directory, fmt)
    # meta.json first: a directory holding tables then always says it is an export of ours
    meta = directory / META_FILE
    with atomic_file(meta, ExportError, "export") as f:
        f.write(json.dumps(meta_to_json(rec.meta), ensure_ascii=False, indent=1)
                .encode("utf-8", "replace"))
    written = [meta]
    for table in TABLES:
        frame = getattr(rec, table)
        columns = [Column(str(name), column_kind(str(name), frame[name]))
                   for name in frame.columns]
        path = directory / (table + TABLE_FORMATS[fmt])
        with atomic_file(path, ExportError, "export") as f:
            out.write(f, typed_chunks(frame, columns, chunk_rows), columns)
        written.append(path)
    return written


def column_kind(name: str, values: pd.Series) -> str:
    """The kind a column is exported as: the type the recording's schema declares for it
    (recording/columns.py), whatever dtype its frame has (an integer column with NULLs comes
    as float64, an empty table's columns as int64 or object), else its dtype's."""
    if name in LIST_COLUMNS:
        return LIST
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return CATEGORY
    if pd.api.types.is_bool_dtype(dtype):
        return BOOL
    declared = column_kinds().get(name)
    if declared is None:
        declared = (INTEGER if pd.api.types.is_integer_dtype(dtype)
                    else REAL if pd.api.types.is_numeric_dtype(dtype) else TEXT)
    if declared == INTEGER and not _whole(values):
        return REAL  # never seen: the reader refuses a fraction there; kept, not rounded
    return declared


def typed_chunks(frame: pd.DataFrame, columns: list[Column],
                 chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The frame in slices of `chunk_rows` rows (one, empty, for an empty frame), each column
    as its kind: INTEGER as pandas' nullable Int64, REAL as float64, BOOL as nullable
    boolean, CATEGORY, TEXT and LIST as they are."""
    for start in range(0, max(len(frame), 1), chunk_rows):
        part = frame.iloc[start:start + chunk_rows]
        yield pd.DataFrame({c.name: _typed(part[c.name], c.kind) for c in columns},
                           index=pd.RangeIndex(len(part)))


def _typed(values: pd.Series, kind: str) -> pd.Series:
    values = values.reset_index(drop=True)
    if kind == INTEGER:
        return pd.to_numeric(values, errors="coerce").astype("Int64")
    if kind == REAL:
        return pd.to_numeric(values, errors="coerce").astype("float64")
    if kind == BOOL:
        return values.astype("boolean")
    return values


def _whole(values: pd.Series) -> bool:
    if not pd.api.types.is_float_dtype(values.dtype):
        return True
    x = values.to_numpy(dtype="float64")
    x = x[~np.isnan(x)]
    return bool(np.all((x == np.floor(x)) & (np.abs(x) < 2.0**63)))


def prepare_directory(directory: Path, fmt: str) -> None:
    """Makes `directory` (0700), or accepts it if it is empty or an earlier `fmt` export
    (its files are then replaced one by one); anything else is refused and left as it is."""
    try:
        mode = os.lstat(directory).st_mode
    except FileNotFoundError:
        try:
            os.mkdir(directory, DIRECTORY_MODE)
        except OSError as e:
            raise ExportError(f"export: cannot make {directory}: {e.strerror or e}") from None
        return
    except OSError as e:
        raise ExportError(f"export: cannot write {directory}: {e.strerror or e}") from None
    if not stat.S_ISDIR(mode):
        what = "a symbolic link" if stat.S_ISLNK(mode) else "not a directory"
        raise ExportError(f"export: {directory} exists and is {what} (left as it is; "
                          "give another -o)")
    try:
        entries = sorted(os.listdir(directory))
    except OSError as e:
        raise ExportError(f"export: cannot write {directory}: {e.strerror or e}") from None
    ours = set(file_names(fmt))
    # an export killed mid-file leaves its temporary file (files.atomic_file's name)
    foreign = [e for e in entries if e not in ours and not _temporary_of(e, ours)]
    if foreign or (entries and not _is_export_meta(directory / META_FILE)):
        listed = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise ExportError(f"export: {directory} is not empty and not a {fmt} export"
                          + (f" (it holds {listed})" if foreign else f" (no {META_FILE})")
                          + "; left as it is: give a new or empty directory with -o")


def _temporary_of(entry: str, names: set[str]) -> bool:
    return entry.endswith(".tmp") and any(entry.startswith(f".{n}.") for n in names)


def _is_export_meta(path: Path) -> bool:
    """Whether `path` is the meta.json an export writes: a recording's meta."""
    try:
        with open(path, "rb") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT_NAME
