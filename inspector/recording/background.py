"""The background read: a thread with a connection of its own reads the typed tables'
integer columns (and text columns of few texts, as codes) in SQLite's own C code while
load() fetches the rest, then runs quick_check on the whole file.
"""

from __future__ import annotations

import sqlite3
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inspector.errors import RecordingError
from inspector.recording import untrusted
from inspector.recording.columns import ROWID, Irregular, categorical, quoted
from inspector.recording.untrusted import READ_FAILURES, said


@dataclass
class _BackgroundRead:
    """What the background thread read of one table (in chunks of rows, in rowid order)."""

    chunks: list[tuple[Any, ...]]     # the aggregate rows of _aggregate_chunks
    integers: list[str]               # integer columns, in chunk order
    coded: dict[str, list[str]]       # text columns read as codes into these texts
    declined: list[str]               # text columns with too many texts: fetch them


class Background(threading.Thread):
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
        except READ_FAILURES as e:
            self.corrupt = said(e)
            for ready in self._ready.values():
                ready.set()
            return
        try:
            for table, (ints, texts) in self.columns.items():
                try:
                    self._read[table] = _aggregate_chunks(db, table, ints, texts)
                except READ_FAILURES:
                    self._read[table] = None  # load() reads it itself, and says why
                self._ready[table].set()
            check = db.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                self.corrupt = " ".join(str(check[0]).split()) if check else "no answer"
        except READ_FAILURES as e:
            self.corrupt = said(e)
        finally:
            db.close()
            for ready in self._ready.values():
                ready.set()

    def result(self, table: str) -> tuple[dict[str, Any], list[str]] | None:
        """The columns read of `table` (with the rowid, key ROWID) and the text columns it
        left to fetch, once read; None if SQLite could not; raises Irregular on a value
        of the wrong kind."""
        self._ready[table].wait()
        read = self._read.pop(table, None)  # its text goes once parsed
        return None if read is None else (_parse_chunks(read), read.declined)

    def verdict(self, path: Path) -> RecordingError | None:
        self.join()
        if self.corrupt is None:
            return None
        return RecordingError(f"{path}: corrupt recording ({self.corrupt[:200]})")


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
    pairs = ", ".join(f"{quoted(n)}, typeof({quoted(n)})" for n in names)
    rows = db.execute(f"SELECT DISTINCT {pairs} FROM {table}"
                      f" LIMIT {_MAX_CODED_TEXTS + 1}").fetchall()
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
    column with NULLs, as pandas reads it), coded texts as categoricals; raises Irregular
    on a value of the wrong kind."""
    chunks = read.chunks
    rows = sum(chunk[1] for chunk in chunks)
    out: dict[str, Any] = {ROWID: _parse_text([(c[2], c[1]) for c in chunks], np.int64)}
    for j, name in enumerate(read.integers):
        parts = [(c[4 + 2 * j], c[1]) for c in chunks]
        if sum(c[3 + 2 * j] for c in chunks) == rows:
            out[name] = _parse_text(parts, np.int64)
        else:
            values = _parse_text(parts, np.float64)
            whole = values[~np.isnan(values)]
            if not np.array_equal(whole, np.trunc(whole)):
                raise Irregular
            out[name] = values
    first_code = 3 + 2 * len(read.integers)
    for j, (name, vocab) in enumerate(read.coded.items()):
        codes = _parse_text([(c[first_code + j], c[1]) for c in chunks], np.int64)
        out[name] = categorical(codes, vocab)
    return out


def _parse_text(parts: list[tuple[bytes | None, int]], dtype: type) -> np.ndarray:
    arrays = []
    for text, count in parts:
        try:
            with warnings.catch_warnings():  # older numpy warns and stops at a bad value
                warnings.simplefilter("ignore")
                values: np.ndarray = np.fromstring(text or b"", dtype=dtype, sep=",")
        except ValueError:
            raise Irregular from None
        if len(values) != count:
            raise Irregular
        arrays.append(values)
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=dtype)


