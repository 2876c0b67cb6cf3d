"""Each growing table read into one frame: the background read's columns and load()'s
matched up by rowid, the blocks (thread samples since version 2; process samples, stack
spans and machine samples since 3) decoded beside them and merged with the table's rows,
sorted, the samples with per-interval `cpu_percent`, the spans with their stack text.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from inspector.errors import RecordingError
from inspector.recording import untrusted
from inspector.recording.background import Background
from inspector.recording.columns import (
    ROWID,
    categorical,
    has_table,
    quoted,
    read_frame,
    typed_columns,
)
from inspector.recording.decode import block_rows, check_rows, decode_blocks
from inspector.recording.limits import Limits, RowLimit, short_frames
from inspector.recording.schema import (
    EPOCH_BLOCKS_VERSION,
    FORMAT_VERSION,
    LAYOUTS,
    PROCESS_SAMPLE_COLUMNS,
    STACK_COLUMNS,
    THREAD_SAMPLE_COLUMNS,
    BlockLayout,
    epoch_layout,
    required,
)
from inspector.recording.stack_texts import stack_dictionary
from inspector.recording.untrusted import READ_FAILURES, said


def table_columns(db: sqlite3.Connection, path: Path, table: str,
                   background: Background, columns: Sequence[str]) -> dict[str, Any]:
    """Every column of `table` as typed arrays: from the background thread what it read,
    the rest fetched here, matched up by rowid. Where that cannot be done (SQLite failed
    there, a view without rowids, rows added between the reads), all of it is fetched
    here."""
    everything = f"SELECT * FROM {table}"
    try:
        names = [d[0] for d in db.execute(everything + " LIMIT 0").description]
    except READ_FAILURES as e:
        raise RecordingError(f"{path}: corrupt recording ({said(e)})") from None
    missing = [c for c in required(tuple(columns)) if c not in names]
    if missing:
        raise RecordingError(f"{path}: corrupt recording (missing columns {missing})")
    ints, texts = background.columns.get(table, ([], []))
    if not set(ints) | set(texts) <= set(names):
        return typed_columns(db, path, everything, columns)

    def fetch(wanted: list[str]) -> dict[str, Any]:
        # the file's own column names: quoted, never SQL
        return typed_columns(db, path, f"SELECT rowid AS {ROWID}, {', '.join(map(quoted, wanted))}"
                                        f" FROM {table} ORDER BY rowid", ())

    try:
        here = fetch([n for n in names if n not in ints and n not in texts])
    except RecordingError:
        return typed_columns(db, path, everything, columns)
    result = background.result(table)
    if result is None:
        return typed_columns(db, path, everything, columns)
    there, declined = result
    theirs: dict[str, Any] | None = there
    if declined:
        theirs = _aligned(there, fetch(declined))
    matched = _aligned(here, theirs) if theirs is not None else None
    if matched is None:
        return typed_columns(db, path, everything, columns)
    return {name: matched[name] for name in names}


def _aligned(here: dict[str, Any], there: dict[str, Any]) -> dict[str, Any] | None:
    """The columns of both reads, rows matched by rowid (in `here`'s order); None if they
    hold different rows."""
    mine, theirs = here[ROWID], there[ROWID]
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
    return categorical(codes, uniques)


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


def table_rows(db: sqlite3.Connection, path: Path, table: str, columns: Sequence[str],
               typed: bool, background: Background) -> dict[str, Any]:
    """A growing table's rows as columns: all of an older file's; in a file with blocks
    only the rare row a block cannot hold."""
    if typed:
        return table_columns(db, path, table, background, columns)
    df = read_frame(db, path, f"SELECT * FROM {table}", columns)
    return {name: df[name].array for name in df.columns}


def with_stack_texts(db: sqlite3.Connection, path: Path, spans: dict[str, Any],
                     bounds: Limits) -> pd.DataFrame:
    """The spans (rows and blocks together) with each one's stack text as `stack`, in
    time order (NULL first, ties as stored)."""
    texts = stack_dictionary(db, path, np.asarray(spans["stack_id"], dtype=np.float64), bounds)
    # Each span's text from the dictionary, not joined in by SQL: a join would make a
    # string per span, and a file naming one long text in every span asks for its length
    # times their number.
    spans = {name: spans[name] for name in STACK_COLUMNS if name in spans}  # no others
    spans["stack"] = short_frames(_stack_categorical(
        np.asarray(spans["stack_id"], dtype=np.float64), texts))
    order = _time_order(np.asarray(spans["t_s"], dtype=np.float64))
    if order is None:
        return pd.DataFrame(spans, copy=False)
    return _take(spans, order)


def in_time_order(columns: dict[str, Any]) -> pd.DataFrame:
    order = _time_order(np.asarray(columns["t_s"], dtype=np.float64))
    if order is None:
        return pd.DataFrame(columns, copy=False)
    return _take(columns, order)


# Tables with_rates sorts by key and time (stably: what is stored in time order stays so):
# their decoded rows need not be put in key order first.
SORTED_LATER = frozenset({"thread_samples", "process_samples"})


class BlockRead(threading.Thread):
    """The blocks of every layout, read and decoded on a connection of their own while
    load() reads the other tables: inflating and numpy's work on whole columns let go of
    the GIL, so where a second core is free this costs little wall time. Refuses more rows,
    all tables' blocks together, than `rows` before it makes any."""

    def __init__(self, path: Path, rows: RowLimit) -> None:
        super().__init__(name="inspector-load", daemon=True)
        self.path = path
        self.rows = rows
        # by table; a table whose file has no blocks of its kind is absent
        self.columns: dict[str, dict[str, Any]] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            db = untrusted.connect(self.path)
        except READ_FAILURES as e:
            self.error = RecordingError(f"{self.path}: corrupt or unreadable recording"
                                        f" ({said(e)})")
            return
        try:
            read: dict[BlockLayout, list[tuple[Any, ...]]] = {}
            counted: dict[BlockLayout, int] = {}
            keys: dict[BlockLayout, tuple[str, ...]] = {}
            epochs = format_version(db) >= EPOCH_BLOCKS_VERSION
            for table in LAYOUTS:
                layout = epoch_layout(table) if epochs else table
                keys[layout] = table.keys if epochs else ()
                if has_table(db, self.path, layout.blocks):
                    read[layout] = block_rows(db, self.path, layout)
                    k = len(layout.keys)
                    counted[layout] = sum(b[k + 2] for b in read[layout])
            check_rows(self.path, self.rows, counted)
            db.close()
            # the table with the most rows decoded on a thread of its own, the others here:
            # inflating and numpy's work let go of the GIL, and two cores do it in half
            largest = max(counted, key=counted.__getitem__, default=None)
            helper = None
            if largest is not None:
                helper = threading.Thread(target=self._decode, name="inspector-load-2",
                                          args=(largest, read.pop(largest), keys[largest]),
                                          daemon=True)
                helper.start()
            for layout in list(read):
                self._decode(layout, read.pop(layout), keys[layout])
            if helper is not None:
                helper.join()
        except BaseException as e:  # RecordingError, or a bug: raised in load()'s thread
            self.error = self.error or e
        finally:
            db.close()

    def _decode(self, layout: BlockLayout, blocks: list[tuple[Any, ...]],
                keys: tuple[str, ...]) -> None:
        try:
            self.columns[layout.table] = decode_blocks(blocks, self.path, layout, keys,
                                                       layout.table not in SORTED_LATER)
        except BaseException as e:  # raised in load()'s thread, the first of the two
            self.error = self.error or e

    def result(self, table: str) -> dict[str, Any] | None:
        """The decoded columns of `table`'s blocks; None if the file has no such blocks."""
        self.join()
        if self.error is not None:
            raise self.error
        return self.columns.pop(table, None)


def format_version(db: sqlite3.Connection) -> int:
    """The file's format version as its meta says (load() itself checks the meta: here
    anything unreadable is taken as the current version's, whose reading checks all)."""
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
        version = json.loads(row[0]) if row else None
    except (*READ_FAILURES, ValueError, TypeError, RecursionError):
        version = None
    return version if type(version) is int else FORMAT_VERSION


def with_blocks(columns: dict[str, Any], blocks: BlockRead, layout: BlockLayout
                ) -> dict[str, Any]:
    """The table's rows and its blocks' as one set of columns (unsorted)."""
    decoded = blocks.result(layout.table)
    if decoded is not None:
        from_blocks = {name: categorical(*decoded[name]) if isinstance(decoded[name], tuple)
                       else decoded[name] for name in layout.columns}
        if not len(columns["t_s"]) and set(columns) <= set(from_blocks):
            columns = from_blocks
        elif len(from_blocks["t_s"]):
            columns = concatenated(columns, from_blocks)
    return columns


def concatenated(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
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
            out[name] = categorical(codes, uniques)
        else:
            out[name] = pd.Series(values).infer_objects().to_numpy()
    return out


def with_rates(columns: dict[str, Any], keys: list[str]) -> pd.DataFrame:
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
    """The stable order of rows by `keys` then time; None if they are in it. Each key's
    rows are stored in time order (a round at a time, or a block of its rows after
    another's): then a stable sort by the keys alone gives it, and small key numbers sort
    in linear time (a fifth of a lexsort's on 2 M rows)."""
    order = None
    if all(k.dtype.kind in "iu" for k in keys):
        combined = np.zeros(len(t), dtype=np.int64)
        size = 1
        for k in keys:
            codes, uniques = pd.factorize(k, sort=True)
            combined = combined * len(uniques) + codes
            size *= len(uniques)
        order = np.argsort(combined.astype(np.int16) if size < 2**15 else combined,
                           kind="stable")
        tk, ck = t[order], combined[order]
        with np.errstate(invalid="ignore"):  # NaN: not in order, lexsort puts it
            if not bool(np.all((tk[1:] >= tk[:-1]) | (ck[1:] != ck[:-1]))):
                order = None
    if order is None:
        order = np.lexsort([t, *reversed(keys)])  # stable: ties keep the stored order
    return None if np.array_equal(order, np.arange(len(order))) else order


def present_columns(db: sqlite3.Connection) -> dict[str, set[str]]:
    """The columns each typed table has in this file (an older file lacks ADDED_COLUMNS);
    all of the schema's where the file cannot say (load() then finds what is wrong)."""
    out: dict[str, set[str]] = {}
    for table, columns in (("thread_samples", THREAD_SAMPLE_COLUMNS), ("stacks", STACK_COLUMNS),
                           ("process_samples", PROCESS_SAMPLE_COLUMNS)):
        try:
            names = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        except READ_FAILURES:
            names = set()
        out[table] = names or set(columns)
    return out


