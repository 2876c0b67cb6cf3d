"""The recording file: one SQLite database per recording, its schema, writer and reader.

This is the only module that knows table names. The recorder writes through
`RecordingWriter`; everything else reads through `load()`, which returns a
`Recording` of pandas DataFrames. docs/recording-format.md documents the schema.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
import urllib.parse
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FORMAT_NAME = "inspector-recording"
FORMAT_VERSION = 1

# Bump FORMAT_VERSION when a change would make an older reader misread a file.
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL              -- JSON
);
CREATE TABLE IF NOT EXISTS processes (
    proc_id        INTEGER PRIMARY KEY,   -- ours: a pid can be reused, a proc_id is not
    pid            INTEGER NOT NULL,
    ppid           INTEGER,
    parent_proc_id INTEGER,
    name           TEXT,                  -- /proc/PID/comm
    cmdline        TEXT,                  -- JSON list of strings
    exe            TEXT,
    create_time    REAL,                  -- unix time the kernel started it
    start_s        REAL,                  -- seconds since the recording started (may be < 0)
    end_s          REAL,                  -- last seen alive; NULL while alive
    exit_code      INTEGER,               -- where known; -N for signal N
    is_python      INTEGER NOT NULL DEFAULT 0,
    python_version TEXT,
    python_gil     TEXT,                  -- 'enabled', 'disabled' or NULL (unknown / not Python)
    is_target      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS threads (
    proc_id     INTEGER NOT NULL,
    pid         INTEGER NOT NULL,
    tid         INTEGER NOT NULL,        -- OS thread id, as /proc, psutil and htop show it
    name        TEXT,                    -- Python thread name where known, else os_name
    os_name     TEXT,                    -- /proc/PID/task/TID/comm
    python_name TEXT,
    start_s     REAL,
    end_s       REAL,
    PRIMARY KEY (proc_id, tid)
);
CREATE TABLE IF NOT EXISTS process_samples (
    t_s              REAL NOT NULL,
    proc_id          INTEGER NOT NULL,
    pid              INTEGER NOT NULL,
    cpu_user_s       REAL,               -- cumulative since the process started
    cpu_system_s     REAL,
    rss_bytes        INTEGER,
    uss_bytes        INTEGER,            -- sampled less often: NULL in between
    num_threads      INTEGER,
    ctx_voluntary    INTEGER,            -- cumulative, all threads
    ctx_involuntary  INTEGER,
    read_bytes       INTEGER,            -- cumulative, /proc/PID/io rchar
    write_bytes      INTEGER,            -- cumulative, /proc/PID/io wchar
    state            TEXT
);
CREATE TABLE IF NOT EXISTS thread_samples (
    t_s            REAL NOT NULL,
    proc_id        INTEGER NOT NULL,
    pid            INTEGER NOT NULL,
    tid            INTEGER NOT NULL,
    cpu_user_s     REAL,                 -- cumulative
    cpu_system_s   REAL,
    state          TEXT,                 -- R S D T Z ... from /proc/PID/task/TID/stat
    syscall        INTEGER,              -- number it is blocked in; -1 running; NULL unreadable
    syscall_name   TEXT,                 -- 'running', 'futex', 'epoll_wait', ...
    on_cpu_s       REAL,                 -- cumulative, schedstat field 1
    runqueue_s     REAL                  -- cumulative, schedstat field 2: runnable, no core
);
CREATE TABLE IF NOT EXISTS stack_texts (
    stack_id INTEGER PRIMARY KEY,
    text     TEXT NOT NULL UNIQUE         -- 'func (file:line);...' root first, leaf last
);
CREATE TABLE IF NOT EXISTS stacks (
    t_s         REAL NOT NULL,           -- first sample of this span
    duration_s  REAL NOT NULL,           -- how long the same stack was seen
    proc_id     INTEGER,
    pid         INTEGER NOT NULL,
    tid         INTEGER NOT NULL,        -- OS thread id
    thread_name TEXT,
    stack_id    INTEGER NOT NULL,
    samples     INTEGER NOT NULL,        -- estimated samples in the span (duration * rate, >= 1)
    owns_gil    INTEGER                  -- 1/0 where known, else NULL
);
CREATE TABLE IF NOT EXISTS gil_samples (
    t_s         REAL NOT NULL,           -- start of a py-spy --gil run
    duration_s  REAL NOT NULL,
    proc_id     INTEGER,
    pid         INTEGER NOT NULL,
    tid         INTEGER NOT NULL,        -- OS thread id of a thread seen holding the GIL
    thread_name TEXT,
    samples     INTEGER NOT NULL,        -- samples in which it held the GIL
    samples_total INTEGER NOT NULL       -- samples py-spy took of its process in the run
);
CREATE TABLE IF NOT EXISTS problems (
    t_s     REAL NOT NULL,
    source  TEXT NOT NULL,               -- 'proc', 'py-spy', 'psutil', 'recorder'
    pid     INTEGER,
    tid     INTEGER,
    kind    TEXT NOT NULL,               -- short key: 'permission', 'vanished', 'lag', ...
    detail  TEXT
);
"""
# Built when the recording is closed, not kept up while it is written: rows arrive in time
# order, so every insert would update the index at as many places as there are threads
# (200 threads: 650 us of SQLite per tick with it, 240 us without). load() does not need
# them; a recording cut short by a crash simply has none.
INDEXES = """
CREATE INDEX IF NOT EXISTS ix_thread_samples ON thread_samples (proc_id, tid, t_s);
CREATE INDEX IF NOT EXISTS ix_process_samples ON process_samples (proc_id, t_s);
CREATE INDEX IF NOT EXISTS ix_stacks ON stacks (proc_id, tid, t_s);
"""

PROCESS_SAMPLE_COLUMNS = (
    "t_s", "proc_id", "pid", "cpu_user_s", "cpu_system_s", "rss_bytes", "uss_bytes",
    "num_threads", "ctx_voluntary", "ctx_involuntary", "read_bytes", "write_bytes", "state",
)
THREAD_SAMPLE_COLUMNS = (
    "t_s", "proc_id", "pid", "tid", "cpu_user_s", "cpu_system_s", "state", "syscall",
    "syscall_name", "on_cpu_s", "runqueue_s",
)
STACK_COLUMNS = (
    "t_s", "duration_s", "proc_id", "pid", "tid", "thread_name", "stack_id", "samples",
    "owns_gil",
)
PROCESS_COLUMNS = (
    "proc_id", "pid", "ppid", "parent_proc_id", "name", "cmdline", "exe", "create_time",
    "start_s", "end_s", "exit_code", "is_python", "python_version", "python_gil", "is_target",
)


class RecordingError(Exception):
    """A file that is not a readable inspector recording (missing, corrupt, too new)."""


@dataclass(frozen=True)
class ProcessRecord:
    proc_id: int
    pid: int
    ppid: int | None
    parent_proc_id: int | None
    name: str
    cmdline: Sequence[str]
    exe: str | None
    create_time: float
    start_s: float
    is_python: bool = False
    python_version: str | None = None
    python_gil: str | None = None
    is_target: bool = False


class RecordingWriter:
    """Appends to a recording; commits whenever `flush()` is called (the recorder does so
    about twice a second) so a killed recorder loses at most the last uncommitted batch."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.exists():
            self.path.unlink()
        for suffix in ("-wal", "-shm", "-journal"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        # WAL while recording: appends are cheap and a reader can open the file meanwhile.
        # close() folds it back into one self-contained file.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._stack_ids: dict[str, int] = {}
        self.set_meta({"format": FORMAT_NAME, "format_version": FORMAT_VERSION})
        self._db.commit()

    # -- writes -------------------------------------------------------------------------
    def set_meta(self, items: Mapping[str, Any]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [(k, json.dumps(v)) for k, v in items.items()],
        )

    def add_process(self, p: ProcessRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO processes (proc_id, pid, ppid, parent_proc_id, name, cmdline,"
            " exe, create_time, start_s, is_python, python_version, python_gil, is_target)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (p.proc_id, p.pid, p.ppid, p.parent_proc_id, p.name, json.dumps(list(p.cmdline)),
             p.exe, p.create_time, p.start_s, int(p.is_python), p.python_version,
             p.python_gil, int(p.is_target)),
        )

    def update_process(self, proc_id: int, **fields: Any) -> None:
        if "cmdline" in fields:
            fields["cmdline"] = json.dumps(list(fields["cmdline"]))
        for key in fields:
            if key not in PROCESS_COLUMNS:
                raise ValueError(f"unknown process column {key!r}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._db.execute(f"UPDATE processes SET {sets} WHERE proc_id = ?",
                         (*fields.values(), proc_id))

    def thread_start_s(self, proc_id: int, tid: int) -> float | None:
        row = self._db.execute("SELECT start_s FROM threads WHERE proc_id = ? AND tid = ?",
                               (proc_id, tid)).fetchone()
        return row[0] if row else None

    def ended_thread_named(self, proc_id: int, tid: int, name: str) -> bool:
        """Whether another, ended thread of the process bore this Python name."""
        return self._db.execute(
            "SELECT 1 FROM threads WHERE proc_id = ? AND tid != ? AND python_name = ?"
            " AND end_s IS NOT NULL LIMIT 1", (proc_id, tid, name)).fetchone() is not None

    def thread_end_s(self, proc_id: int, tid: int) -> float | None:
        row = self._db.execute("SELECT end_s FROM threads WHERE proc_id = ? AND tid = ?",
                               (proc_id, tid)).fetchone()
        return row[0] if row else None

    def upsert_thread(self, proc_id: int, pid: int, tid: int, os_name: str | None,
                      start_s: float) -> None:
        self._db.execute(
            "INSERT INTO threads (proc_id, pid, tid, name, os_name, start_s) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT (proc_id, tid) DO UPDATE SET os_name = excluded.os_name,"
            " name = COALESCE(threads.python_name, excluded.os_name)",
            (proc_id, pid, tid, os_name, os_name, start_s),
        )

    def name_thread(self, proc_id: int, tid: int, python_name: str) -> None:
        self._db.execute(
            "UPDATE threads SET python_name = ?, name = ? WHERE proc_id = ? AND tid = ?",
            (python_name, python_name, proc_id, tid),
        )

    def end_thread(self, proc_id: int, tid: int, end_s: float) -> None:
        self._db.execute("UPDATE threads SET end_s = ? WHERE proc_id = ? AND tid = ?",
                         (end_s, proc_id, tid))

    def add_process_samples(self, rows: Iterable[Sequence[Any]]) -> None:
        self._db.executemany(
            f"INSERT INTO process_samples VALUES ({','.join('?' * len(PROCESS_SAMPLE_COLUMNS))})",
            rows)

    def add_thread_samples(self, rows: Iterable[Sequence[Any]]) -> None:
        self._db.executemany(
            f"INSERT INTO thread_samples VALUES ({','.join('?' * len(THREAD_SAMPLE_COLUMNS))})",
            rows)

    def stack_id(self, text: str) -> int:
        sid = self._stack_ids.get(text)
        if sid is None:
            sid = len(self._stack_ids) + 1
            self._db.execute("INSERT INTO stack_texts (stack_id, text) VALUES (?, ?)", (sid, text))
            self._stack_ids[text] = sid
        return sid

    def add_stacks(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rows in STACK_COLUMNS order, with a stack *text* in place of stack_id."""
        converted = [(*r[:6], self.stack_id(r[6]), *r[7:]) for r in rows]
        self._db.executemany(
            f"INSERT INTO stacks VALUES ({','.join('?' * len(STACK_COLUMNS))})", converted)

    def add_gil_samples(self, rows: Iterable[Sequence[Any]]) -> None:
        self._db.executemany("INSERT INTO gil_samples VALUES (?,?,?,?,?,?,?,?)", rows)

    def add_problem(self, t_s: float, source: str, kind: str, detail: str = "",
                    pid: int | None = None, tid: int | None = None) -> None:
        self._db.execute(
            "INSERT INTO problems (t_s, source, pid, tid, kind, detail) VALUES (?,?,?,?,?,?)",
            (t_s, source, pid, tid, kind, detail))

    def flush(self) -> None:
        self._db.commit()

    def close(self) -> None:
        self._db.commit()
        self._db.executescript(INDEXES)
        try:
            self._db.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.OperationalError:
            pass  # a reader holds the file open: it stays in WAL mode, which is still valid
        self._db.close()


# -- reading -------------------------------------------------------------------------------

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

    @property
    def duration_s(self) -> float:
        return float(self.meta.get("duration_s") or 0.0)

    @property
    def cpu_count(self) -> int:
        return int(self.meta.get("cpu_count") or os.cpu_count() or 1)


# What SQLite may raise on a damaged file: invalid UTF-8 in its schema or error text comes
# out as UnicodeDecodeError, not as an sqlite3.Error.
_READ_FAILURES = (sqlite3.Error, UnicodeDecodeError)

# Meta keys the reader and Recording rely on, and the JSON types they must have.
_META_TYPES: dict[str, tuple[type, ...]] = {
    "duration_s": (int, float), "cpu_count": (int,), "interval_s": (int, float),
    "start_time_unix": (int, float), "complete": (bool,), "command": (list,),
    "exit_code": (int, type(None)),
}

# The tables that grow with a recording's length (an hour of 64 threads: 2.3 M thread samples,
# 2.1 M stack spans) are read column by column into typed arrays, with text as categoricals.
# Read the generic way (rows of Python objects into DataFrame.from_records), that hour took
# 30 s and 4 GB.
_TYPED_TABLES = ("process_samples", "thread_samples", "stacks")
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


def _open(path: Path) -> tuple[sqlite3.Connection, str]:
    """A read-only connection (read-write if a -wal file must be folded in) and its URI."""
    if not path.exists():
        raise RecordingError(f"{path}: no such file")
    if path.is_dir():
        raise RecordingError(f"{path}: is a directory, not a recording")
    with open(path, "rb") as f:
        head = f.read(16)
    if head != b"SQLite format 3\x00":
        raise RecordingError(f"{path}: not an inspector recording (not an SQLite file)")
    # A recorder killed mid-run leaves a -wal file beside the recording; opening read-write
    # lets SQLite fold it in. Otherwise open read-only so loading never changes the file.
    wal = Path(str(path) + "-wal").exists()
    # Quoted: a '?', '#' or '%' in the path would otherwise be read as URI syntax (and open,
    # or create, another file).
    uri = ("file:" + urllib.parse.quote(str(path.resolve()), safe="/")
           + ("" if wal else "?mode=ro"))
    try:
        db = sqlite3.connect(uri, uri=True)
        db.execute("PRAGMA query_only = 1")
    except _READ_FAILURES as e:
        raise RecordingError(f"{path}: corrupt or unreadable recording ({e})") from None
    return db, uri


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

    def __init__(self, uri: str, columns: Mapping[str, tuple[Sequence[str], Sequence[str]]]
                 ) -> None:
        super().__init__(name="inspector-load", daemon=True)
        self.uri = uri
        # table -> (its integer columns, its text columns)
        self.columns = {table: (list(ints), list(texts))
                        for table, (ints, texts) in columns.items()}
        self.corrupt: str | None = None          # what quick_check or SQLite said, if bad
        self._read: dict[str, _BackgroundRead | None] = {}  # None: SQLite failed there
        self._ready = {table: threading.Event() for table in self.columns}

    def run(self) -> None:
        try:
            db = sqlite3.connect(self.uri, uri=True)
        except _READ_FAILURES as e:
            self.corrupt = str(e)
            for ready in self._ready.values():
                ready.set()
            return
        try:
            db.execute("PRAGMA query_only = 1")
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
            self.corrupt = str(e)
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


def _vocabularies(db: sqlite3.Connection, table: str, names: Sequence[str]
                  ) -> dict[str, list[str]] | None:
    """The distinct texts of each of these columns, in one scan; None if there are too
    many, or values that are not text (or NULL)."""
    if not names:
        return {}
    rows = db.execute(f"SELECT DISTINCT {', '.join(f'{n}, typeof({n})' for n in names)}"
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
        raise RecordingError(f"{path}: not an inspector recording ({e})") from None
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
    return meta


def _frame(db: sqlite3.Connection, path: Path, sql: str, columns: Sequence[str]) -> pd.DataFrame:
    """The generic read: any values, checked against the columns' kinds (small tables, and
    typed tables holding values of the wrong kind)."""
    try:
        cur = db.execute(sql)
        rows = cur.fetchall()
        names = [d[0] for d in cur.description]
    except _READ_FAILURES as e:
        raise RecordingError(f"{path}: corrupt recording ({e})") from None
    df = pd.DataFrame.from_records(rows, columns=names)
    missing = [c for c in columns if c not in df.columns]
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
        missing = [c for c in columns if c not in names]
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
        raise RecordingError(f"{path}: corrupt recording ({e})") from None
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
        raise RecordingError(f"{path}: corrupt recording ({e})") from None
    missing = [c for c in columns if c not in names]
    if missing:
        raise RecordingError(f"{path}: corrupt recording (missing columns {missing})")
    ints, texts = background.columns.get(table, ([], []))
    if not set(ints) | set(texts) <= set(names):
        return _typed_columns(db, path, everything, columns)

    def fetch(wanted: list[str]) -> dict[str, Any]:
        return _typed_columns(db, path, f"SELECT rowid AS {_ROWID}, {', '.join(wanted)}"
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


def _has_table(db: sqlite3.Connection, path: Path, name: str) -> bool:
    try:
        return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                          (name,)).fetchone() is not None
    except _READ_FAILURES as e:
        raise RecordingError(f"{path}: corrupt recording ({e})") from None


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


def load(path: str | os.PathLike[str]) -> Recording:
    """Opens a recording. Raises RecordingError, and only that, for anything unreadable."""
    p = Path(path)
    try:
        db, uri = _open(p)
    except OSError as e:
        raise RecordingError(f"{p}: cannot read ({e.strerror or e})") from None
    kinds = _column_kinds()
    check = _Background(uri, {
        table: ([c for c in columns if kinds[c] == "integer"],
                [c for c in columns if kinds[c] == "text"])
        for table, columns in (("thread_samples", THREAD_SAMPLE_COLUMNS),
                               ("stacks", STACK_COLUMNS),
                               ("process_samples", PROCESS_SAMPLE_COLUMNS))})
    check.start()
    try:
        try:
            rec = _read(db, p, check)
        except RecordingError as e:
            raise (check.verdict(p) or e) from None
        bad = check.verdict(p)
        if bad is not None:
            raise bad
    finally:
        db.close()
    return rec


def _read(db: sqlite3.Connection, p: Path, background: _Background) -> Recording:
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
    tables: dict[str, pd.DataFrame] = {}
    for table, read in (  # in the order the background thread reads their integers
            ("thread_samples", lambda fast: _read_samples(
                db, p, "thread_samples", THREAD_SAMPLE_COLUMNS, ["proc_id", "tid"], fast,
                background)),
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
    process_samples, thread_samples = tables["process_samples"], tables["thread_samples"]
    if "duration_s" not in meta:
        # A recorder killed mid-run never wrote its summary: derive what we can.
        last = [df["t_s"].max() for df in (process_samples, thread_samples) if not df.empty]
        meta["duration_s"] = float(max(last)) if last else 0.0
        meta.setdefault("complete", False)
    return Recording(p, meta, processes, threads, process_samples, thread_samples,
                     tables["stacks"], problems, gil_samples)
