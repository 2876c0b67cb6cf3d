"""Typed column reading: a query's rows turned into one typed array per column (numbers as
int64 or float64, text as categoricals), checked against the kinds SCHEMA gives each column,
and the generic, checking read for what a typed array cannot hold.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from inspector.errors import RecordingError
from inspector.recording.schema import OLDER_TABLES, SCHEMA, required
from inspector.recording.untrusted import READ_FAILURES, said

# The tables that grow with a recording's length (process_samples, thread_samples, stacks;
# an hour of 64 threads: 2.3 M thread samples, 2.1 M stack spans) are read column by column
# into typed arrays, with text as categoricals. Read the generic way (rows of Python objects
# into DataFrame.from_records), that hour took 30 s and 4 GB.
# Rows converted at a time: only one batch's Python objects (~100 bytes a value) are alive at
# once, and per-batch costs vanish next to 65 k rows.
_BATCH_ROWS = 65_536


@functools.lru_cache(maxsize=1)
def column_kinds() -> dict[str, str]:
    """Column name -> 'integer', 'real' or 'text', from SCHEMA itself (a name has one type in
    every table). SQLite stores any value in any column, so a damaged file can hold text where
    a number belongs: the reader checks what it got against this."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(SCHEMA + OLDER_TABLES)
        tables = [row[0] for row in
                  db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        kinds = {}
        for table in tables:
            for _cid, name, declared, *_rest in db.execute(f"PRAGMA table_info({table})"):
                declared = declared.upper()
                kinds[name] = ("text" if "TEXT" in declared
                               else "integer" if "INT" in declared else "real")
    finally:
        db.close()
    kinds["stack"] = "text"  # stack_texts.text, as load() names it
    return kinds


# The rowid, as the fetches on both connections name it: it matches their rows up.
ROWID = "rowid_"


def quoted(name: str) -> str:
    """A column name as an SQL identifier (a name from the file is data, not SQL)."""
    return '"' + name.replace('"', '""') + '"'


def read_frame(db: sqlite3.Connection, path: Path, sql: str, columns: Sequence[str]
               ) -> pd.DataFrame:
    """The generic read: any values, checked against the columns' kinds (small tables, and
    typed tables holding values of the wrong kind)."""
    try:
        cur = db.execute(sql)
        rows = cur.fetchall()
        names = [d[0] for d in cur.description]
    except READ_FAILURES as e:
        raise RecordingError(f"{path}: corrupt recording ({said(e)})") from None
    df = pd.DataFrame.from_records(rows, columns=names)
    missing = [c for c in required(tuple(columns)) if c not in df.columns]
    if missing:
        raise RecordingError(f"{path}: corrupt recording (missing columns {missing})")
    kinds = column_kinds()
    for name in df.columns:
        kind, column = kinds.get(name), df[name]
        if kind in ("integer", "real") and not pd.api.types.is_numeric_dtype(column):
            try:
                df[name] = pd.to_numeric(column)
            except (TypeError, ValueError):
                raise RecordingError(
                    f"{path}: corrupt recording (non-numeric values in {name})") from None
        elif (kind == "text" and not df.empty
              and pd.api.types.infer_dtype(column, skipna=True) not in ("string", "empty")):
            raise RecordingError(f"{path}: corrupt recording (non-text values in {name})")
    return df


class Irregular(Exception):
    """A value a typed column cannot hold as it is (text where a number belongs, say): the
    table is read the generic, checking way instead. An internal signal of the reader, not
    an error: load() always catches it, so it is no InspectorError and never reaches a
    caller."""


def categorical(codes: np.ndarray, names: Iterable[Any]) -> pd.Categorical:
    """Codes into `names` (-1: missing) as a categorical whose categories are in lexical
    order, as pandas makes them from strings."""
    labels = np.asarray(list(names), dtype=object)
    order = np.argsort(labels, kind="stable")
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    if len(rank):
        codes = np.where(codes >= 0, rank[np.maximum(codes, 0)], -1)
    return pd.Categorical.from_codes(codes.astype(np.int32),
                                     categories=pd.Index(labels[order], dtype="str"))


class _ColumnReader:
    """One column of a query, collected batch by batch into a typed array: numbers as int64
    (float64 with NaN if there are NULLs, as pandas reads them), text as categorical codes."""

    def __init__(self, kind: str | None) -> None:
        self.kind = kind
        self.parts: list[np.ndarray] = []
        self.names: dict[str, int] = {}

    def add(self, values: np.ndarray) -> None:
        """`values`: this batch's values of the column, an object array."""
        try:
            if self.kind == "real":
                part = values.astype(np.float64)      # None -> NaN
            elif self.kind == "integer":
                part = _integers(values)
            elif self.kind == "text":
                part = self._codes(values)
            else:  # a column this reader does not know: kept as it came
                part = values
        except (TypeError, ValueError, OverflowError):  # text where a number belongs, ...
            raise Irregular from None
        self.parts.append(part)

    def _codes(self, values: np.ndarray) -> np.ndarray:
        codes, uniques = pd.factorize(values)
        if not all(isinstance(u, str) for u in uniques):
            raise Irregular
        if not len(uniques):
            return np.full(len(values), -1, dtype=np.int32)
        lookup = np.fromiter((self.names.setdefault(u, len(self.names)) for u in uniques),
                             dtype=np.int32, count=len(uniques))
        return np.where(codes >= 0, lookup[np.maximum(codes, 0)], -1).astype(np.int32)

    def result(self) -> Any:
        """The whole column; the batches are let go (one column's worth of them is
        alive beside the results, not the whole table's)."""
        parts, self.parts = self.parts, []
        if self.kind == "text":
            codes = (np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32))
            return categorical(codes, self.names)
        if self.kind in ("integer", "real"):
            empty = np.int64 if self.kind == "integer" else np.float64
            return np.concatenate(parts) if parts else np.zeros(0, dtype=empty)
        values = np.concatenate(parts) if parts else np.zeros(0, dtype=object)
        return pd.Series(values).infer_objects().to_numpy()


def _integers(values: np.ndarray) -> np.ndarray:
    """An object array of integers as int64; with NULLs, float64 and NaN (as pandas reads
    them). A fractional number (SQLite keeps 1.5 in an INTEGER column) raises Irregular."""
    as_float = values.astype(np.float64)
    try:
        exact = values.astype(np.int64)
    except TypeError:  # None
        whole = as_float[~np.isnan(as_float)]
        if not np.array_equal(whole, np.trunc(whole)):
            raise Irregular from None
        return as_float
    # equal where every value was a whole number (a big one rounds alike both ways)
    if not np.array_equal(exact.astype(np.float64), as_float):
        raise Irregular
    return exact


def typed_columns(db: sqlite3.Connection, path: Path, sql: str, columns: Sequence[str]
                   ) -> dict[str, Any]:
    """A query's result as typed arrays, by column name; raises Irregular on a value of
    the wrong kind."""
    kinds = {**column_kinds(), ROWID: "integer"}
    try:
        cur = db.execute(sql)
        names = [d[0] for d in cur.description]
        missing = [c for c in required(tuple(columns)) if c not in names]
        if missing:
            raise RecordingError(f"{path}: corrupt recording (missing columns {missing})")
        readers = [_ColumnReader(kinds.get(name)) for name in names]
        # Real numbers (and a rowid) alone go straight into a float block (a third faster)
        numbers = all(r.kind == "real" or n == ROWID for r, n in zip(readers, names))
        while rows := cur.fetchmany(_BATCH_ROWS):
            floats = _float_block(rows, names) if numbers else None
            if floats is not None:
                for i, reader in enumerate(readers):
                    reader.parts.append(floats[i])
                continue
            # one C-level pass from tuples to a 2-D object block, then a cast per column
            block = np.empty((len(rows), len(names)), dtype=object)
            block[:] = rows
            for i, reader in enumerate(readers):
                reader.add(block[:, i])
    except READ_FAILURES as e:
        raise RecordingError(f"{path}: corrupt recording ({said(e)})") from None
    return {name: reader.result() for name, reader in zip(names, readers)}


def _float_block(rows: list[tuple[Any, ...]], names: Sequence[str]) -> list[np.ndarray] | None:
    """Rows of numbers as one float64 array per column (the rowid as int64), None (NULL)
    as NaN; None where that would not be exact (text, a rowid beyond 2**53)."""
    try:
        block = np.array(rows, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if block.shape != (len(rows), len(names)):
        return None
    columns = [np.ascontiguousarray(block[:, i]) for i in range(len(names))]
    for i, name in enumerate(names):
        if name == ROWID:
            if not np.all(np.abs(columns[i]) < 2.0**53):  # NaN fails too
                return None
            columns[i] = columns[i].astype(np.int64)
    return columns


def has_table(db: sqlite3.Connection, path: Path, name: str) -> bool:
    """Whether the file has a table of that name."""
    try:
        return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                          (name,)).fetchone() is not None
    except READ_FAILURES as e:
        raise RecordingError(f"{path}: corrupt recording ({said(e)})") from None
