"""Reads a recording into a `Recording` of pandas DataFrames: `load()` raises
`RecordingError`, and only that, for anything unreadable. The tables that grow with a
recording's length are read column by column into typed arrays (see _BATCH_ROWS).
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from inspector.errors import RecordingError
from inspector.recording import untrusted
from inspector.recording.decode import read_blocks
from inspector.recording.schema import (
    DEFAULT_INTERVAL_S,
    DEFAULT_RATE_HZ,
    FORMAT_NAME,
    FORMAT_VERSION,
    MACHINE_SAMPLE_COLUMNS,
    PROCESS_COLUMNS,
    PROCESS_SAMPLE_COLUMNS,
    SCHEMA,
    STACK_COLUMNS,
    THREAD_SAMPLE_COLUMNS,
    required,
)


@dataclass
class Recording:
    """A loaded recording. Times (`t_s`, `start_s`, `end_s`) are seconds since it started."""

    path: Path
    meta: dict[str, Any]
    processes: pd.DataFrame
    threads: pd.DataFrame
    process_samples: pd.DataFrame
    thread_samples: pd.DataFrame
    stacks: pd.DataFrame
    problems: pd.DataFrame = field(default_factory=pd.DataFrame)
    gil_samples: pd.DataFrame = field(default_factory=pd.DataFrame)
    machine_samples: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def duration_s(self) -> float:
        return float(self.meta.get("duration_s") or 0.0)

    @property
    def cpu_count(self) -> int:
        return int(self.meta.get("cpu_count") or os.cpu_count() or 1)

    @property
    def usable_cores(self) -> float:
        """Cores the program could use: its first process's affinity and cgroup quota, or
        the machine's CPUs where the recording does not say (older files)."""
        machine = float(self.cpu_count)
        if "usable_cores" not in self.processes.columns or self.processes.empty:
            return machine
        p = self._root_process()
        value = pd.to_numeric(pd.Series([p.get("usable_cores")]), errors="coerce").iloc[0]
        return float(min(machine, value)) if value == value and value > 0 else machine

    @property
    def cores_limited_by(self) -> str | None:
        """'affinity' or 'cgroup quota' where either leaves fewer usable cores than CPUs."""
        if "cores_limited_by" not in self.processes.columns or self.processes.empty:
            return None
        value = self._root_process().get("cores_limited_by")
        return value if isinstance(value, str) else None

    def _root_process(self) -> pd.Series:
        procs = self.processes
        target = procs[procs["is_target"]] if "is_target" in procs.columns else procs
        return (target if not target.empty else procs).iloc[0]

    @property
    def settings(self) -> dict[str, Any]:
        """How `inspector record` was asked to sample: interval_s, rate_hz, stacks."""
        settings = self.meta.get("settings")
        return settings if isinstance(settings, dict) else {}

    @property
    def interval_s(self) -> float:
        """Seconds between two /proc sampling rounds."""
        return float(self.settings.get("interval_s") or DEFAULT_INTERVAL_S)

    @property
    def stack_rate_hz(self) -> float:
        """Python stack samples per second per thread that py-spy actually took: the asked
        rate, or the lowest one the recorder fell to for a tree of many threads."""
        stacks = self.meta.get("stacks")
        used = stacks.get("rate_hz_used") if isinstance(stacks, dict) else None
        return float(used or self.settings.get("rate_hz") or DEFAULT_RATE_HZ)


# What SQLite may raise on a damaged file: invalid UTF-8 in its schema or error text comes
# out as UnicodeDecodeError, not as an sqlite3.Error.
_READ_FAILURES = (sqlite3.Error, UnicodeDecodeError)

# Meta keys the reader and Recording rely on, and the JSON types they must have.
_META_TYPES: dict[str, tuple[type, ...]] = {
    "duration_s": (int, float), "cpu_count": (int,), "interval_s": (int, float),
    "start_time_unix": (int, float), "complete": (bool,), "command": (list,),
    "exit_code": (int, type(None)), "settings": (dict,), "stacks": (dict,),
}
_SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "interval_s": (int, float), "rate_hz": (int, float), "stacks": (bool,),
}

# The tables that grow with a recording's length (process_samples, thread_samples, stacks;
# an hour of 64 threads: 2.3 M thread samples, 2.1 M stack spans) are read column by column
# into typed arrays, with text as categoricals. Read the generic way (rows of Python objects
# into DataFrame.from_records), that hour took 30 s and 4 GB.
# Rows converted at a time: only one batch's Python objects (~100 bytes a value) are alive at
# once, and per-batch costs vanish next to 65 k rows.
_BATCH_ROWS = 65_536


@functools.lru_cache(maxsize=1)
def _column_kinds() -> dict[str, str]:
    """Column name -> 'integer', 'real' or 'text', from SCHEMA itself (a name has one type in
    every table). SQLite stores any value in any column, so a damaged file can hold text where
    a number belongs: the reader checks what it got against this."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(SCHEMA)
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


def _open(path: Path) -> sqlite3.Connection:
    """A read-only, untrusting connection (see recording.untrusted), even with a -wal file
    beside the recording (a recorder killed mid-run leaves one: SQLite reads it, and
    changes neither it nor the file)."""
    if not path.exists():
        raise RecordingError(f"{path}: no such file")
    if path.is_dir():
        raise RecordingError(f"{path}: is a directory, not a recording")
    with open(path, "rb") as f:
        head = f.read(16)
    if head != untrusted.SQLITE_MAGIC:
        raise RecordingError(f"{path}: not an inspector recording (not an SQLite file)")
    try:
        db = untrusted.connect(path)
    except _READ_FAILURES as e:
        raise RecordingError(f"{path}: corrupt or unreadable recording ({_said(e)})") from None
    try:
        odd = untrusted.unexpected_objects(db)
    except _READ_FAILURES as e:
        db.close()
        raise RecordingError(f"{path}: corrupt or unreadable recording ({_said(e)})") from None
    if odd:
        db.close()
        raise RecordingError(f"{path}: not an inspector recording ({', '.join(odd)}"
                             f" {'is not a table' if len(odd) == 1 else 'are not tables'})")
    return db


def _said(e: BaseException) -> str:
    """What SQLite said, in one line; an interrupted statement is the read budget's doing."""
    text = " ".join(str(e).split()) or type(e).__name__
    return "too much work to read: a damaged or hostile file" if text == "interrupted" else text


@dataclass
class _BackgroundRead:
    """What the background thread read of one table (in chunks of rows, in rowid order)."""

    chunks: list[tuple[Any, ...]]     # the aggregate rows of _aggregate_chunks
    integers: list[str]               # integer columns, in chunk order
    coded: dict[str, list[str]]       # text columns read as codes into these texts
    declined: list[str]               # text columns with too many texts: fetch them


class _Background(threading.Thread):
    """Work SQLite does in its own C code, on a connection of its own, beside load()
    fetching the other columns: SQLite drops the GIL, so where a second core is free this
    costs no wall time. It reads the typed tables' integer columns, and text columns of
    few distinct texts as codes, as comma-separated text (group_concat: a million values
    in ~0.1 s, against ~0.13 s through the sqlite3 module), then runs quick_check (0.9 s
    for 390 MB)."""

    def __init__(self, path: Path,
                 columns: Mapping[str, tuple[Sequence[str], Sequence[str]]]) -> None:
        super().__init__(name="inspector-load", daemon=True)
        self.path = path
        # table -> (its integer columns, its text columns)
        self.columns = {table: (list(ints), list(texts))
                        for table, (ints, texts) in columns.items()}
        self.corrupt: str | None = None          # what quick_check or SQLite said, if bad
        self._read: dict[str, _BackgroundRead | None] = {}  # None: SQLite failed there
        self._ready = {table: threading.Event() for table in self.columns}

    def run(self) -> None:
        try:
            db = untrusted.connect(self.path)
        except _READ_FAILURES as e:
            self.corrupt = _said(e)
            for ready in self._ready.values():
                ready.set()
            return
        try:
            for table, (ints, texts) in self.columns.items():
                try:
                    self._read[table] = _aggregate_chunks(db, table, ints, texts)
                except _READ_FAILURES:
                    self._read[table] = None  # load() reads it itself, and says why
                self._ready[table].set()
            check = db.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                self.corrupt = " ".join(str(check[0]).split()) if check else "no answer"
        except _READ_FAILURES as e:
            self.corrupt = _said(e)
        finally:
            db.close()
            for ready in self._ready.values():
                ready.set()

    def result(self, table: str) -> tuple[dict[str, Any], list[str]] | None:
        """The columns read of `table` (with the rowid, key _ROWID) and the text columns it
        left to fetch, once read; None if SQLite could not; raises _Irregular on a value
        of the wrong kind."""
        self._ready[table].wait()
        read = self._read.pop(table, None)  # its text goes once parsed
        return None if read is None else (_parse_chunks(read), read.declined)

    def verdict(self, path: Path) -> RecordingError | None:
        self.join()
        if self.corrupt is None:
            return None
        return RecordingError(f"{path}: corrupt recording ({self.corrupt[:200]})")


# The rowid, as the fetches on both connections name it: it matches their rows up.
_ROWID = "rowid_"
# Rows per aggregate: SQLite's strings stop at 1 GB (SQLITE_MAX_LENGTH); a million 64-bit
# integers are at most 21 MB of text.
_AGGREGATE_ROWS = 1_000_000
# Text columns are read as codes where, together, they hold at most this many distinct
# combinations of texts (each row compares its text with each one in turn): thread states
# and syscall names have a handful, thread names as many as there were threads. Beyond it,
# they are fetched.
_MAX_CODED_TEXTS = 256


def _q(name: str) -> str:
    """A column name as an SQL identifier (a name from the file is data, not SQL)."""
    return '"' + name.replace('"', '""') + '"'


def _vocabularies(db: sqlite3.Connection, table: str, names: Sequence[str]
                  ) -> dict[str, list[str]] | None:
    """The distinct texts of each of these columns, in one scan; None if there are too
    many, or values that are not text (or NULL)."""
    if not names:
        return {}
    rows = db.execute(f"SELECT DISTINCT {', '.join(f'{_q(n)}, typeof({_q(n)})' for n in names)}"
                      f" FROM {table} LIMIT {_MAX_CODED_TEXTS + 1}").fetchall()
    if len(rows) > _MAX_CODED_TEXTS:
        return None
    vocabularies: dict[str, list[str]] = {}
    for j, name in enumerate(names):
        kinds = {row[2 * j + 1] for row in rows}
        if not kinds <= {"text", "null"}:
            return None
        vocabularies[name] = sorted({row[2 * j] for row in rows if row[2 * j + 1] == "text"})
    return vocabularies


def _aggregate_chunks(db: sqlite3.Connection, table: str, ints: Sequence[str],
                      texts: Sequence[str]) -> _BackgroundRead:
    """`table`'s rowids, integer columns and coded text columns, a million rows at a time
    in rowid order, as comma-separated text. Each chunk: (last rowid, rows, rowids, per
    integer column its non-NULL count and values, per coded column its codes). A NULL is
    'nan' (a code -1), a value of another kind 'x', which fails the parse."""
    coded = _vocabularies(db, table, texts) or {}
    terms = [f"count({n}), group_concat(CASE typeof({n}) WHEN 'integer' THEN {n}"
             f" WHEN 'null' THEN 'nan' ELSE 'x' END)" for n in ints]
    params: list[str] = []
    for name, vocab in coded.items():
        whens = " ".join(f"WHEN ? THEN {i}" for i in range(len(vocab)))
        other = f"CASE WHEN {name} IS NULL THEN -1 ELSE 'x' END"
        terms.append(f"group_concat(CASE {name} {whens} ELSE {other} END)" if vocab else
                     f"group_concat({other})")
        params += vocab
    inner = (f"SELECT rowid AS r, {', '.join([*ints, *coded])} FROM {table}"
             f" WHERE rowid {{}} ? ORDER BY rowid LIMIT {_AGGREGATE_ROWS}")
    first, after = (f"SELECT max(r), count(*), group_concat(r), {', '.join(terms)} FROM"
                    f" ({inner})".format(op) for op in (">=", ">"))
    db.text_factory = bytes  # digits need no decoding; odd bytes fail the parse
    try:
        chunks: list[tuple[Any, ...]] = []
        row = db.execute(first, (*params, -2**63)).fetchone()
        while row[1]:
            chunks.append(row)
            if row[1] < _AGGREGATE_ROWS:
                break
            row = db.execute(after, (*params, row[0])).fetchone()
    finally:
        db.text_factory = str
    return _BackgroundRead(chunks, list(ints), coded, [n for n in texts if n not in coded])


def _parse_chunks(read: _BackgroundRead) -> dict[str, Any]:
    """What _aggregate_chunks read, as arrays: integers as int64 (float64 with NaN for a
    column with NULLs, as pandas reads it), coded texts as categoricals; raises _Irregular
    on a value of the wrong kind."""
    chunks = read.chunks
    rows = sum(chunk[1] for chunk in chunks)
    out: dict[str, Any] = {_ROWID: _parse_text([(c[2], c[1]) for c in chunks], np.int64)}
    for j, name in enumerate(read.integers):
        parts = [(c[4 + 2 * j], c[1]) for c in chunks]
        if sum(c[3 + 2 * j] for c in chunks) == rows:
            out[name] = _parse_text(parts, np.int64)
        else:
            values = _parse_text(parts, np.float64)
            whole = values[~np.isnan(values)]
            if not np.array_equal(whole, np.trunc(whole)):
                raise _Irregular
            out[name] = values
    first_code = 3 + 2 * len(read.integers)
    for j, (name, vocab) in enumerate(read.coded.items()):
        codes = _parse_text([(c[first_code + j], c[1]) for c in chunks], np.int64)
        out[name] = _categorical(codes, vocab)
    return out


def _parse_text(parts: list[tuple[bytes | None, int]], dtype: type) -> np.ndarray:
    arrays = []
    for text, count in parts:
        try:
            with warnings.catch_warnings():  # older numpy warns and stops at a bad value
                warnings.simplefilter("ignore")
                values: np.ndarray = np.fromstring(text or b"", dtype=dtype, sep=",")
        except ValueError:
            raise _Irregular from None
        if len(values) != count:
            raise _Irregular
        arrays.append(values)
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=dtype)


def _read_meta(db: sqlite3.Connection, path: Path) -> dict[str, Any]:
    try:
        rows = db.execute("SELECT key, value FROM meta").fetchall()
    except _READ_FAILURES as e:
        raise RecordingError(f"{path}: not an inspector recording ({_said(e)})") from None
    meta: dict[str, Any] = {}
    for key, value in rows:
        try:
            meta[str(key)] = json.loads(value)
        except (TypeError, ValueError):
            raise RecordingError(
                f"{path}: corrupt recording (bad meta value for {key!r})") from None
    if meta.get("format") != FORMAT_NAME:
        raise RecordingError(f"{path}: not an inspector recording")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise RecordingError(f"{path}: corrupt recording (no format version)")
    if version > FORMAT_VERSION:
        raise RecordingError(
            f"{path}: recording format version {version} is newer than this inspector reads "
            f"({FORMAT_VERSION}); upgrade inspector")
    for key, types in _META_TYPES.items():
        value = meta.get(key)
        if key in meta and (not isinstance(value, types)
                            or (isinstance(value, bool) and bool not in types)):
            raise RecordingError(
                f"{path}: corrupt recording (meta {key} is a {type(value).__name__})")
    if not all(isinstance(part, str) for part in meta.get("command", [])):
        raise RecordingError(f"{path}: corrupt recording (meta command is not text)")
    meta["settings"] = _settings(meta)
    for key, types in _SETTING_TYPES.items():
        value = meta["settings"].get(key)
        if key in meta["settings"] and (not isinstance(value, types)
                                        or (isinstance(value, bool) and bool not in types)):
            raise RecordingError(
                f"{path}: corrupt recording (setting {key} is a {type(value).__name__})")
    return meta


def _settings(meta: dict[str, Any]) -> dict[str, Any]:
    """meta["settings"], the one record of how the recording was sampled. Files written
    before it held every setting kept interval_s at the top level and the stack rate under
    meta["stacks"] as well: those copies move into it here, and only here."""
    settings = dict(meta.get("settings") or {})
    legacy_interval = meta.pop("interval_s", None)
    if "interval_s" not in settings and legacy_interval is not None:
        settings["interval_s"] = legacy_interval
    stacks = meta.get("stacks")
    if isinstance(stacks, dict) and "rate_hz" in stacks:
        stacks = meta["stacks"] = dict(stacks)
        legacy_rate = stacks.pop("rate_hz")
        if "rate_hz" not in settings and legacy_rate is not None:
            settings["rate_hz"] = legacy_rate
    return settings


def _frame(db: sqlite3.Connection, path: Path, sql: str, columns: Sequence[str]) -> pd.DataFrame:
    """The generic read: any values, checked against the columns' kinds (small tables, and
    typed tables holding values of the wrong kind)."""
    try:
        cur = db.execute(sql)
        rows = cur.fetchall()
        names = [d[0] for d in cur.description]
    except _READ_FAILURES as e:
        raise RecordingError(f"{path}: corrupt recording ({_said(e)})") from None
    df = pd.DataFrame.from_records(rows, columns=names)
    missing = [c for c in required(tuple(columns)) if c not in df.columns]
    if missing:
        raise RecordingError(f"{path}: corrupt recording (missing columns {missing})")
    kinds = _column_kinds()
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


class _Irregular(Exception):
    """A value a typed column cannot hold as it is (text where a number belongs, say): the
    table is read the generic, checking way instead."""


def _categorical(codes: np.ndarray, names: Iterable[Any]) -> pd.Categorical:
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
            raise _Irregular from None
        self.parts.append(part)

    def _codes(self, values: np.ndarray) -> np.ndarray:
        codes, uniques = pd.factorize(values)
        if not all(isinstance(u, str) for u in uniques):
            raise _Irregular
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
            return _categorical(codes, self.names)
        if self.kind in ("integer", "real"):
            empty = np.int64 if self.kind == "integer" else np.float64
            return np.concatenate(parts) if parts else np.zeros(0, dtype=empty)
        values = np.concatenate(parts) if parts else np.zeros(0, dtype=object)
        return pd.Series(values).infer_objects().to_numpy()


def _integers(values: np.ndarray) -> np.ndarray:
    """An object array of integers as int64; with NULLs, float64 and NaN (as pandas reads
    them). A fractional number (SQLite keeps 1.5 in an INTEGER column) raises _Irregular."""
    as_float = values.astype(np.float64)
    try:
        exact = values.astype(np.int64)
    except TypeError:  # None
        whole = as_float[~np.isnan(as_float)]
        if not np.array_equal(whole, np.trunc(whole)):
            raise _Irregular from None
        return as_float
    # equal where every value was a whole number (a big one rounds alike both ways)
    if not np.array_equal(exact.astype(np.float64), as_float):
        raise _Irregular
    return exact


def _typed_columns(db: sqlite3.Connection, path: Path, sql: str, columns: Sequence[str]
                   ) -> dict[str, Any]:
    """A query's result as typed arrays, by column name; raises _Irregular on a value of
    the wrong kind."""
    kinds = {**_column_kinds(), _ROWID: "integer"}
    try:
        cur = db.execute(sql)
        names = [d[0] for d in cur.description]
        missing = [c for c in required(tuple(columns)) if c not in names]
        if missing:
            raise RecordingError(f"{path}: corrupt recording (missing columns {missing})")
        readers = [_ColumnReader(kinds.get(name)) for name in names]
        # Real numbers (and a rowid) alone go straight into a float block (a third faster)
        numbers = all(r.kind == "real" or n == _ROWID for r, n in zip(readers, names))
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
    except _READ_FAILURES as e:
        raise RecordingError(f"{path}: corrupt recording ({_said(e)})") from None
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
        if name == _ROWID:
            if not np.all(np.abs(columns[i]) < 2.0**53):  # NaN fails too
                return None
            columns[i] = columns[i].astype(np.int64)
    return columns


def _table_columns(db: sqlite3.Connection, path: Path, table: str,
                   background: _Background, columns: Sequence[str]) -> dict[str, Any]:
    """Every column of `table` as typed arrays: from the background thread what it read,
    the rest fetched here, matched up by rowid. Where that cannot be done (SQLite failed
    there, a view without rowids, rows added between the reads), all of it is fetched
    here."""
    everything = f"SELECT * FROM {table}"
    try:
        names = [d[0] for d in db.execute(everything + " LIMIT 0").description]
    except _READ_FAILURES as e:
        raise RecordingError(f"{path}: corrupt recording ({_said(e)})") from None
    missing = [c for c in required(tuple(columns)) if c not in names]
    if missing:
        raise RecordingError(f"{path}: corrupt recording (missing columns {missing})")
    ints, texts = background.columns.get(table, ([], []))
    if not set(ints) | set(texts) <= set(names):
        return _typed_columns(db, path, everything, columns)

    def fetch(wanted: list[str]) -> dict[str, Any]:
        # the file's own column names: quoted, never SQL
        return _typed_columns(db, path, f"SELECT rowid AS {_ROWID}, {', '.join(map(_q, wanted))}"
                                        f" FROM {table} ORDER BY rowid", ())

    try:
        here = fetch([n for n in names if n not in ints and n not in texts])
    except RecordingError:
        return _typed_columns(db, path, everything, columns)
    result = background.result(table)
    if result is None:
        return _typed_columns(db, path, everything, columns)
    there, declined = result
    theirs: dict[str, Any] | None = there
    if declined:
        theirs = _aligned(there, fetch(declined))
    matched = _aligned(here, theirs) if theirs is not None else None
    if matched is None:
        return _typed_columns(db, path, everything, columns)
    return {name: matched[name] for name in names}


def _aligned(here: dict[str, Any], there: dict[str, Any]) -> dict[str, Any] | None:
    """The columns of both reads, rows matched by rowid (in `here`'s order); None if they
    hold different rows."""
    mine, theirs = here[_ROWID], there[_ROWID]
    if not np.array_equal(mine, theirs):
        order = np.argsort(theirs, kind="stable")
        if len(mine) != len(theirs) or not np.array_equal(np.sort(mine), theirs[order]):
            return None
        # theirs[order] is sorted; put it in mine's order
        order = order[np.argsort(np.argsort(mine, kind="stable"), kind="stable")]
        there = {name: values[order] for name, values in there.items()}
    return {**there, **here}


def _stack_categorical(stack_ids: np.ndarray, texts: pd.DataFrame) -> pd.Categorical:
    """Each span's stack text (missing where stack_texts has none) as a categorical coded
    from its stack_id: no string is made per span."""
    ids = texts["stack_id"].to_numpy(dtype=np.float64)
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    text_codes, uniques = pd.factorize(texts["text"].to_numpy(dtype=object)[order])
    codes = np.full(len(stack_ids), -1, dtype=np.int64)
    if len(ids):
        pos = np.minimum(np.searchsorted(ids, stack_ids), len(ids) - 1)
        found = ids[pos] == stack_ids
        codes[found] = text_codes[pos[found]]
    return _categorical(codes, uniques)


def _take(columns: dict[str, Any], order: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({name: values.take(order) for name, values in columns.items()},
                        copy=False)


def _time_order(t: np.ndarray) -> np.ndarray | None:
    """The rows in order of time as SQL's ORDER BY puts them (NULL first), ties as stored;
    None if they are in that order already."""
    if len(t) < 2 or bool(np.all(t[1:] >= t[:-1])):
        return None
    if np.isnan(t).any():
        return np.lexsort((t, ~np.isnan(t)))
    return np.argsort(t, kind="stable")


def _read_stacks(db: sqlite3.Connection, path: Path, typed: bool,
                 background: _Background) -> pd.DataFrame:
    texts = _frame(db, path, "SELECT stack_id, text FROM stack_texts", ("stack_id", "text"))
    if not typed:
        return _frame(
            db, path,
            f"SELECT {', '.join('s.' + c for c in STACK_COLUMNS)}, t.text AS stack FROM stacks s"
            " LEFT JOIN stack_texts t ON t.stack_id = s.stack_id ORDER BY s.t_s",
            STACK_COLUMNS)
    spans = _table_columns(db, path, "stacks", background, STACK_COLUMNS)
    spans = {name: spans[name] for name in STACK_COLUMNS}  # as before: no others
    spans["stack"] = _stack_categorical(np.asarray(spans["stack_id"], dtype=np.float64), texts)
    order = _time_order(np.asarray(spans["t_s"], dtype=np.float64))
    if order is None:
        return pd.DataFrame(spans, copy=False)
    return _take(spans, order)


def _read_samples(db: sqlite3.Connection, path: Path, table: str, columns: Sequence[str],
                  keys: list[str], typed: bool, background: _Background) -> pd.DataFrame:
    if not typed:
        df = _frame(db, path, f"SELECT * FROM {table}", columns)
        return _with_rates({name: df[name].array for name in df.columns}, keys)
    return _with_rates(_table_columns(db, path, table, background, columns), keys)


class _BlockRead(threading.Thread):
    """Version 2's thread blocks, read and decoded on a connection of their own while load()
    reads the other tables: inflating and numpy's work on whole columns let go of the GIL,
    so where a second core is free this costs little wall time."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="inspector-load", daemon=True)
        self.path = path
        self.columns: dict[str, Any] | None = None   # None: the file has no thread_blocks
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            db = untrusted.connect(self.path)
        except _READ_FAILURES as e:
            self.error = RecordingError(f"{self.path}: corrupt or unreadable recording"
                                        f" ({_said(e)})")
            return
        try:
            if _has_table(db, self.path, "thread_blocks"):
                self.columns = read_blocks(db, self.path, untrusted.file_bytes(self.path))
        except BaseException as e:  # RecordingError, or a bug: raised in load()'s thread
            self.error = e
        finally:
            db.close()

    def result(self) -> dict[str, Any] | None:
        self.join()
        if self.error is not None:
            raise self.error
        return self.columns


def _thread_sample_rows(db: sqlite3.Connection, path: Path, typed: bool,
                        background: _Background) -> dict[str, Any]:
    """The thread_samples table's columns: all of version 1's samples; in version 2 only
    the rare row a block cannot hold."""
    if typed:
        return _table_columns(db, path, "thread_samples", background, THREAD_SAMPLE_COLUMNS)
    df = _frame(db, path, "SELECT * FROM thread_samples", THREAD_SAMPLE_COLUMNS)
    return {name: df[name].array for name in df.columns}


def _with_blocks(columns: dict[str, Any], blocks: _BlockRead) -> pd.DataFrame:
    """Rows and blocks as one frame, sorted, with cpu_percent."""
    decoded = blocks.result()
    if decoded is not None:
        from_blocks = {name: _categorical(*decoded[name]) if isinstance(decoded[name], tuple)
                       else decoded[name] for name in THREAD_SAMPLE_COLUMNS}
        if not len(columns["t_s"]) and set(columns) <= set(from_blocks):
            columns = from_blocks
        elif len(from_blocks["t_s"]):
            columns = _concatenated(columns, from_blocks)
    return _with_rates(columns, ["proc_id", "tid"])


def _concatenated(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Two reads of the same table, one after the other: numbers as the wider of their
    types, texts as one categorical, a column one lacks NULL there."""
    out: dict[str, Any] = {}
    for name in [*first, *(n for n in second if n not in first)]:
        parts = []
        for cols in (first, second):
            part = cols.get(name)
            if part is None:
                parts.append(np.full(len(cols["t_s"]), np.nan))
            elif pd.api.types.is_numeric_dtype(part.dtype) and not isinstance(
                    part.dtype, pd.CategoricalDtype):
                parts.append(np.asarray(part))
            else:
                parts.append(np.asarray(part, dtype=object))
        if all(p.dtype != object for p in parts):
            out[name] = np.concatenate(parts)
            continue
        values = np.concatenate([p.astype(object) for p in parts])
        values[pd.isna(values)] = None
        if all(isinstance(v, str) for v in values if v is not None):
            codes, uniques = pd.factorize(values)
            out[name] = _categorical(codes, uniques)
        else:
            out[name] = pd.Series(values).infer_objects().to_numpy()
    return out


def _has_table(db: sqlite3.Connection, path: Path, name: str) -> bool:
    try:
        return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                          (name,)).fetchone() is not None
    except _READ_FAILURES as e:
        raise RecordingError(f"{path}: corrupt recording ({_said(e)})") from None


def _with_rates(columns: dict[str, Any], keys: list[str]) -> pd.DataFrame:
    """The rows sorted by `keys` and time, with per-interval `cpu_percent` (of one core)
    from the cumulative CPU columns."""
    t = np.asarray(columns["t_s"], dtype=np.float64)
    if not len(t):
        df = pd.DataFrame(columns)
        df["cpu_percent"] = pd.Series(dtype="float64")
        return df
    key_values = [np.asarray(columns[k]) for k in keys]
    order = _key_time_order(key_values, t)
    if order is not None:
        for name in columns:  # one column at a time: the table is not held twice
            columns[name] = columns[name].take(order)
        t = np.asarray(columns["t_s"], dtype=np.float64)
        key_values = [np.asarray(columns[k]) for k in keys]
    cpu = (np.asarray(columns["cpu_user_s"], dtype=np.float64)
           + np.asarray(columns["cpu_system_s"], dtype=np.float64))
    # A row whose keys differ from the row before starts a group (NaN keys: each alone).
    same = np.ones(len(t) - 1, dtype=bool)
    for k in key_values:
        same &= k[1:] == k[:-1]
    d_cpu = np.full(len(t), np.nan)
    d_t = np.full(len(t), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):  # inf - inf in a damaged file
        d_cpu[1:] = np.where(same, cpu[1:] - cpu[:-1], np.nan)
        d_t[1:] = np.where(same, t[1:] - t[:-1], np.nan)
        pct = np.where(d_t > 0, d_cpu / d_t * 100.0, np.nan)
    df = pd.DataFrame(columns, copy=False)
    df["cpu_percent"] = np.where(pct < 0, 0.0, pct)
    return df


def _key_time_order(keys: list[np.ndarray], t: np.ndarray) -> np.ndarray | None:
    """The stable order of rows by `keys` then time; None if they are in it. Samples are
    stored a round at a time, in time order: then a stable sort by the keys alone gives it,
    and small key numbers sort in linear time (a fifth of a lexsort's on 2 M rows)."""
    with np.errstate(invalid="ignore"):
        in_time_order = bool(np.all(t[1:] >= t[:-1]))
    if not in_time_order or any(k.dtype.kind not in "iu" for k in keys):
        order = np.lexsort([t, *reversed(keys)])  # stable: ties keep the stored order
    else:
        combined = np.zeros(len(t), dtype=np.int64)
        size = 1
        for k in keys:
            codes, uniques = pd.factorize(k, sort=True)
            combined = combined * len(uniques) + codes
            size *= len(uniques)
        order = np.argsort(combined.astype(np.int16) if size < 2**15 else combined,
                           kind="stable")
    return None if np.array_equal(order, np.arange(len(order))) else order


def _present_columns(db: sqlite3.Connection) -> dict[str, set[str]]:
    """The columns each typed table has in this file (an older file lacks ADDED_COLUMNS);
    all of the schema's where the file cannot say (load() then finds what is wrong)."""
    out: dict[str, set[str]] = {}
    for table, columns in (("thread_samples", THREAD_SAMPLE_COLUMNS), ("stacks", STACK_COLUMNS),
                           ("process_samples", PROCESS_SAMPLE_COLUMNS)):
        try:
            names = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        except _READ_FAILURES:
            names = set()
        out[table] = names or set(columns)
    return out


def load(path: str | os.PathLike[str]) -> Recording:
    """Opens a recording. Raises RecordingError, and only that, for anything unreadable."""
    p = Path(path)
    try:
        db = _open(p)
    except OSError as e:
        raise RecordingError(f"{p}: cannot read ({e.strerror or e})") from None
    kinds = _column_kinds()
    present = _present_columns(db)
    check = _Background(p, {
        table: ([c for c in columns if kinds[c] == "integer" and c in present[table]],
                [c for c in columns if kinds[c] == "text" and c in present[table]])
        for table, columns in (("thread_samples", THREAD_SAMPLE_COLUMNS),
                               ("stacks", STACK_COLUMNS),
                               ("process_samples", PROCESS_SAMPLE_COLUMNS))})
    check.start()
    blocks = _BlockRead(p)
    blocks.start()
    try:
        try:
            rec = _read(db, p, check, blocks)
        except RecordingError as e:
            raise (check.verdict(p) or e) from None
        bad = check.verdict(p)
        if bad is not None:
            raise bad
    finally:
        db.close()
        blocks.join()
    return rec


def _read(db: sqlite3.Connection, p: Path, background: _Background, blocks: _BlockRead
          ) -> Recording:
    meta = _read_meta(db, p)
    processes = _frame(db, p, "SELECT * FROM processes ORDER BY proc_id", PROCESS_COLUMNS)
    try:
        cmdlines = [json.loads(c) if c else [] for c in processes["cmdline"]]
    except (TypeError, ValueError):
        raise RecordingError(f"{p}: corrupt recording (bad command line)") from None
    if not all(isinstance(c, list) and all(isinstance(a, str) for a in c) for c in cmdlines):
        raise RecordingError(f"{p}: corrupt recording (bad command line)")
    processes["cmdline"] = cmdlines
    processes["is_python"] = processes["is_python"].fillna(0).astype(bool)
    processes["is_target"] = processes["is_target"].fillna(0).astype(bool)
    threads = _frame(db, p, "SELECT * FROM threads ORDER BY proc_id, tid",
                     ("proc_id", "pid", "tid", "name"))
    tables: dict[str, Any] = {}
    for table, read in (  # in the order the background thread reads their integers
            ("thread_samples", lambda fast: _thread_sample_rows(db, p, fast, background)),
            ("stacks", lambda fast: _read_stacks(db, p, fast, background)),
            ("process_samples", lambda fast: _read_samples(
                db, p, "process_samples", PROCESS_SAMPLE_COLUMNS, ["proc_id"], fast,
                background))):
        try:
            tables[table] = read(True)
        except _Irregular:
            tables[table] = read(False)
    problems = _frame(db, p, "SELECT * FROM problems ORDER BY t_s", ("t_s", "kind"))
    # gil_samples came later within format version 1: a file without it has none
    gil_sql = ("SELECT * FROM gil_samples ORDER BY t_s" if _has_table(db, p, "gil_samples")
               else "SELECT NULL AS t_s, NULL AS duration_s, NULL AS proc_id, NULL AS pid,"
                    " NULL AS tid, NULL AS thread_name, NULL AS samples,"
                    " NULL AS samples_total WHERE 0")
    gil_samples = _frame(db, p, gil_sql,
                         ("t_s", "duration_s", "pid", "tid", "samples", "samples_total"))
    gil_samples["share"] = (gil_samples["samples"].astype("float64")
                            / gil_samples["samples_total"].clip(lower=1))
    # machine_samples came later within format version 1 too
    machine_samples = _frame(
        db, p, "SELECT * FROM machine_samples ORDER BY t_s" if _has_table(db, p, "machine_samples")
        else "SELECT NULL AS t_s, NULL AS busy_cores, NULL AS recorder_cores WHERE 0",
        MACHINE_SAMPLE_COLUMNS)
    # last: the blocks were decoded meanwhile
    process_samples = tables["process_samples"]
    thread_samples = _with_blocks(tables["thread_samples"], blocks)
    if "duration_s" not in meta:
        # A recorder killed mid-run never wrote its summary: derive what we can.
        last = [df["t_s"].max() for df in (process_samples, thread_samples) if not df.empty]
        meta["duration_s"] = float(max(last)) if last else 0.0
        meta.setdefault("complete", False)
    return Recording(p, meta, processes, threads, process_samples, thread_samples,
                     tables["stacks"], problems, gil_samples, machine_samples)
