"""A recording read a stretch of time at a time, for a reader that must not hold it whole:
`size_of()` counts its rows from the blocks' own counts (no data read), and `Windows` yields
its samples and spans window by window, each a Recording of the small tables (read once)
and that window's rows, decoded and checked as load() checks them.

A block belongs to the window its first time falls in, so a window's rows of one thread
follow the previous window's without a gap or an overlap; the rare row kept outside blocks
belongs to the window its own time falls in.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from inspector.errors import RecordingError
from inspector.recording.columns import categorical, read_frame
from inspector.recording.decode import block_rows, check_rows, decode_blocks
from inspector.recording.limits import check_values, limits, stack_frames
from inspector.recording.model import Recording
from inspector.recording.reader import small_tables
from inspector.recording.schema import (
    EPOCH_BLOCKS_VERSION,
    LAYOUTS,
    MACHINE_BLOCKS,
    PROCESS_BLOCKS,
    STACK_BLOCKS,
    THREAD_BLOCKS,
    BlockLayout,
    epoch_layout,
)
from inspector.recording.tables import (
    SORTED_LATER,
    concatenated,
    format_version,
    has_table,
    in_time_order,
    with_rates,
    with_stack_texts,
)
from inspector.recording.untrusted import READ_FAILURES, file_bytes, open_recording, said


@dataclass(frozen=True)
class Size:
    """What a recording would make load() hold, counted without decoding it."""

    thread_samples: int
    stack_spans: int
    process_samples: int
    machine_samples: int
    threads: int
    stack_texts: int  # distinct stacks
    duration_s: float
    interval_s: float

    @property
    def rows(self) -> int:
        return (self.thread_samples + self.stack_spans + self.process_samples
                + self.machine_samples)


def _connect(path: Path) -> sqlite3.Connection:
    try:
        return open_recording(path)
    except OSError as e:
        raise RecordingError(f"{path}: cannot read ({e.strerror or e})") from None


def _scalar(db: sqlite3.Connection, path: Path, sql: str) -> Any:
    try:
        return db.execute(sql).fetchone()[0]
    except READ_FAILURES as e:
        raise RecordingError(f"{path}: corrupt recording ({said(e)})") from None


def _count(db: sqlite3.Connection, path: Path, layout: BlockLayout) -> int:
    """Rows of one layout: its blocks' counts and its table's rows (a count is an
    integer the file says; a damaged one is found when the blocks are decoded)."""
    n = 0
    if has_table(db, path, layout.blocks):
        total = _scalar(db, path, f"SELECT TOTAL(rows) FROM {layout.blocks}")
        n += int(total) if isinstance(total, (int, float)) else 0
    if has_table(db, path, layout.table):
        n += int(_scalar(db, path, f"SELECT COUNT(*) FROM {layout.table}"))
    return n


def size_of(path: str | os.PathLike[str]) -> Size:
    """The rows of each growing table, the threads, the distinct stacks and the length."""
    p = Path(path)
    db = _connect(p)
    try:
        _, head = small_tables(db, p)
        texts = sum(int(_scalar(db, p, f"SELECT COUNT({column}) FROM {table}"))
                    for table, column in (("stack_texts", "*"), ("stack_nodes", "stack_id"))
                    if has_table(db, p, table))
        return Size(_count(db, p, THREAD_BLOCKS), _count(db, p, STACK_BLOCKS),
                    _count(db, p, PROCESS_BLOCKS), _count(db, p, MACHINE_BLOCKS),
                    max(1, len(head.threads)), texts, float(head.meta.duration_s or 0.0),
                    head.interval_s)
    finally:
        db.close()


class Windows:
    """The recording at `path` in windows of `window_s` seconds: `head` holds its meta and
    small tables; iterating yields, window after window, `head` with that window's rows.
    Holds, besides one window, 16 bytes per block (which window each belongs to)."""

    def __init__(self, path: str | os.PathLike[str], window_s: float) -> None:
        self.path = Path(path)
        self.window_s = float(window_s)
        self._limits = limits(file_bytes(self.path))
        self._rows = self._limits.rows
        self._frames = 0  # stack frames over the spans read so far: load() bounds them all
        db = _connect(self.path)
        try:
            _, self.head = small_tables(db, self.path)
            # how each table's blocks are read: version 4's hold every key's rows of an
            # epoch, the keys among their numbers
            epochs = format_version(db) >= EPOCH_BLOCKS_VERSION
            self._read_as = {layout: (epoch_layout(layout), layout.keys) if epochs else
                             (layout, ()) for layout in LAYOUTS}
            # block rowids and first times, by layout (a few MB for a host-day)
            self._index: dict[BlockLayout, tuple[np.ndarray, np.ndarray]] = {}
            for layout in LAYOUTS:
                if not has_table(db, self.path, layout.blocks):
                    continue
                try:
                    rows = db.execute(f"SELECT rowid, t_first_s FROM {layout.blocks}"
                                      ).fetchall()
                except READ_FAILURES as e:
                    raise RecordingError(f"{self.path}: corrupt recording ({said(e)})"
                                         ) from None
                ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                first = np.fromiter((r[1] if isinstance(r[1], (int, float)) else np.nan
                                     for r in rows), dtype=np.float64, count=len(rows))
                self._index[layout] = (ids, first)
            self._row_span = {layout: self._row_times(db, layout) for layout in LAYOUTS
                              if has_table(db, self.path, layout.table)}
        finally:
            db.close()

    def _row_times(self, db: sqlite3.Connection, layout: BlockLayout) -> tuple[float, float]:
        low = _scalar(db, self.path, f"SELECT MIN(t_s) FROM {layout.table}")
        high = _scalar(db, self.path, f"SELECT MAX(t_s) FROM {layout.table}")
        return (float(low) if isinstance(low, (int, float)) else np.inf,
                float(high) if isinstance(high, (int, float)) else -np.inf)

    def _window_of(self, first: np.ndarray) -> np.ndarray:
        """Each block's window (a block whose first time is missing or not finite: 0)."""
        with np.errstate(invalid="ignore"):
            w = np.floor(first / self.window_s)
        w[~np.isfinite(w)] = 0
        return np.maximum(w, 0).astype(np.int64)

    def count(self) -> int:
        """How many windows iterating yields."""
        last = 0
        for _, first in self._index.values():
            if len(first):
                last = max(last, int(self._window_of(first).max()))
        for _, high in self._row_span.values():
            if np.isfinite(high):
                last = max(last, int(max(0.0, high) // self.window_s))
        return last + 1

    def bounds_s(self, k: int) -> tuple[float, float]:
        """Window k's first time and the first of the next (the first and last windows
        open-ended: rows before 0 or after the end belong to them)."""
        n = self.count()
        return (-np.inf if k == 0 else k * self.window_s,
                np.inf if k == n - 1 else (k + 1) * self.window_s)

    def __iter__(self) -> Iterator[Recording]:
        n = self.count()
        windows = {layout: self._window_of(first) for layout, (_, first) in
                   self._index.items()}
        db = _connect(self.path)
        try:
            for k in range(n):
                lo, hi = self.bounds_s(k)
                blocks = {layout: block_rows(db, self.path, self._read_as[layout][0],
                                             self._index[layout][0][w == k].tolist())
                          for layout, w in windows.items()}
                # what load() refuses of a whole file, a window may not make either (a
                # crafted file's blocks all of one time would be one window)
                check_rows(self.path, self._rows, {
                    layout: sum(b[len(self._read_as[layout][0].keys) + 2] for b in found)
                    for layout, found in blocks.items()})
                parts = {layout: self._columns(db, layout, blocks.pop(layout, None), lo, hi)
                         for layout in LAYOUTS}
                yield self._recording(db, parts)
        finally:
            db.close()

    def _columns(self, db: sqlite3.Connection, layout: BlockLayout,
                 blocks: list[tuple[Any, ...]] | None, lo: float, hi: float
                 ) -> dict[str, Any]:
        """One window's rows of a layout: its table's and its blocks', as columns."""
        p = self.path
        if has_table(db, p, layout.table):
            df = read_frame(db, p, f"SELECT * FROM {layout.table} WHERE t_s >= {lo!r}"
                                   f" AND t_s < {hi!r}".replace("inf", "9e999"),
                            layout.columns)
            columns: dict[str, Any] = {name: df[name].array for name in df.columns}
        else:
            columns = {name: np.empty(0) for name in layout.columns}
        if not blocks:
            return columns
        read_as, keys = self._read_as[layout]
        decoded = decode_blocks(blocks, p, read_as, keys, layout.table not in SORTED_LATER)
        from_blocks = {name: categorical(*decoded[name]) if isinstance(decoded[name], tuple)
                       else decoded[name] for name in layout.columns}
        if not len(columns["t_s"]) and set(columns) <= set(from_blocks):
            return from_blocks
        return concatenated(columns, from_blocks)

    def _recording(self, db: sqlite3.Connection, parts: dict[BlockLayout, dict[str, Any]]
                   ) -> Recording:
        p = self.path
        thread_samples = with_rates(parts[THREAD_BLOCKS], ["proc_id", "tid"])
        process_samples = with_rates(parts[PROCESS_BLOCKS], ["proc_id"])
        stacks = with_stack_texts(db, p, parts[STACK_BLOCKS], self._limits)
        self._frames += stack_frames(stacks)
        self._limits.frames.check(p, self._frames, "stack frames over its spans")
        machine = parts[MACHINE_BLOCKS]
        host = machine.get("host")
        if host is not None and len(host):
            machine["host"] = np.asarray(host, dtype=object)
            machine["host"][pd.isna(machine["host"])] = None
        machine_samples = in_time_order(machine).reset_index(drop=True)
        for table, frame in (("process_samples", process_samples),
                             ("thread_samples", thread_samples), ("stacks", stacks),
                             ("machine_samples", machine_samples)):
            check_values(p, table, frame)
        return replace(self.head, thread_samples=thread_samples,
                       process_samples=process_samples, stacks=stacks,
                       machine_samples=machine_samples)
