"""One block table's rows on their way into the file (writer.py keeps one per BlockLayout):
gathered per key, written at each commit as one small block of every key's new rows, and
once an epoch is over, replaced in the same transaction by the epoch's rows in as few
blocks as BLOCK_MAX_ROWS allows (version 4). Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any, Protocol

from inspector.recording.blocks import (
    LEVEL,
    SMALL_LEVEL,
    Columns,
    encode,
    key_at,
    new_dictionaries,
    sample_time,
)
from inspector.recording.schema import BLOCK_MAX_ROWS, BlockLayout, epoch_layout


class Statements(Protocol):
    """What the writer's connection offers: a failed statement returns no rows (and is
    counted) instead of raising."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any: ...


def _key_getter(positions: tuple[int, ...]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    if len(positions) > 1:
        return itemgetter(*positions)  # type: ignore[return-value]  # a tuple for 2 or more
    if positions:
        (i,) = positions
        return lambda row: (row[i],)
    return lambda row: ()


def stored_time(value: Any) -> Any:
    """A sample time as the file keeps it (see blocks.sample_time); anything else as it is."""
    return sample_time(value) if isinstance(value, float) and math.isfinite(value) else value


class BlockTable:
    """The rows of one layout not yet compacted: this epoch's, by key. An epoch ends once
    its rows span `epoch_s` or number `epoch_max_rows`; rows are written (as small blocks)
    at each `write`, and without one once `pending_max_rows` wait."""

    def __init__(self, layout: BlockLayout, epoch_s: float, epoch_max_rows: int,
                 pending_max_rows: int) -> None:
        self.layout = layout
        self.epoch_s = epoch_s
        self.epoch_max_rows = epoch_max_rows
        self.pending_max_rows = pending_max_rows
        self._key = _key_getter(key_at(layout))
        self._blocks = epoch_layout(layout)  # what a block holds: the keys as numbers too
        self._epoch: dict[tuple[Any, ...], Columns] = {}
        self._texts = new_dictionaries(layout)  # the epoch's, every key's
        self._epoch_t: tuple[float, float] | None = None   # its first and last t_s
        self._epoch_rows = 0
        self._block_ids: list[int] = []  # the epoch's small blocks' rowids
        self.unwritten_rows = 0
        names = ("t_first_s", "t_last_s", "rows", "texts", "data")
        self._insert = (f"INSERT INTO {layout.blocks} ({', '.join(names)})"
                        f" VALUES ({','.join('?' * len(names))})")
        self._delete = f"DELETE FROM {layout.blocks} WHERE rowid = ?"
        self._insert_rows = (f"INSERT INTO {layout.table} ({', '.join(layout.columns)})"
                             f" VALUES ({','.join('?' * len(layout.columns))})")

    def add(self, rows: Iterable[Sequence[Any]]) -> bool:
        """Rows in the layout's column order; True once enough wait to be written."""
        epoch, key_of = self._epoch, self._key
        added = 0
        for row in rows:
            key = key_of(row)
            columns = epoch.get(key)
            if columns is None:
                columns = epoch[key] = Columns(self._blocks, self._texts)
            columns.pending.append(row)
            added += 1
        self.unwritten_rows += added
        return self.unwritten_rows >= self.pending_max_rows

    def forget(self) -> None:
        """Starts the epoch afresh (its committed blocks stay as they are)."""
        self._epoch = {}
        self._texts = new_dictionaries(self.layout)
        self._block_ids = []
        self._epoch_t = None
        self._epoch_rows = self.unwritten_rows = 0

    def _settle(self, db: Statements) -> None:
        """The rows added since the last write as columns; those no block can hold are kept
        as they are, as rows of the layout's table (load() reads both)."""
        unfit: list[Sequence[Any]] = []
        for key, columns in self._epoch.items():
            if not columns.pending:
                continue
            if not all(type(k) is int for k in key):
                unfit += columns.pending
                columns.pending = []
                continue
            before = len(columns)
            unfit += columns.settle()
            span = columns.span_s(before)
            if span is not None:
                known = self._epoch_t or span
                self._epoch_t = (min(known[0], span[0]), max(known[1], span[1]))
                self._epoch_rows += len(columns) - before
        if unfit:
            db.executemany(self._insert_rows, [(stored_time(r[0]), *r[1:]) for r in unfit])

    def write(self, db: Statements, failures: Callable[[], int], closing: bool = False) -> bool:
        """Writes the rows added since the last call: one small block of every key's, or,
        once the epoch is over, the epoch's rows in place of its small blocks. Stops at a
        failure (`failures()` grew: the batch is rolled back) and returns False."""
        if not self.unwritten_rows and not closing:
            return True
        failed = failures()
        self._settle(db)
        self.unwritten_rows = 0
        span = self._epoch_t
        over = (closing or self._epoch_rows >= self.epoch_max_rows
                or (span is not None and span[1] - span[0] >= self.epoch_s))
        if over:
            # deleted before the new blocks are added: a rowid freed by a rolled-back batch
            # and taken again can only be one of this epoch's, which is rewritten here
            db.executemany(self._delete, [(i,) for i in self._block_ids])
        # key after key (in order: neighbours' values are alike), each key's rows in time
        parts = sorted((key, columns, 0 if over else columns.written, len(columns))
                       for key, columns in self._epoch.items()
                       if len(columns) > (0 if over else columns.written))
        block: list[tuple[Columns, int, int]] = []
        rows = 0
        for _, columns, lo, n in parts:
            while lo < n:
                hi = min(n, lo + BLOCK_MAX_ROWS - rows)
                block.append((columns, lo, hi))
                rows += hi - lo
                lo = hi
                if rows == BLOCK_MAX_ROWS:
                    if not self._insert_block(db, block, over, failed, failures):
                        return False
                    block, rows = [], 0
            columns.written = n
        if block and not self._insert_block(db, block, over, failed, failures):
            return False
        if over:
            self.forget()
        return failures() == failed

    def _insert_block(self, db: Statements, block: list[tuple[Columns, int, int]], over: bool,
                      failed: int, failures: Callable[[], int]) -> bool:
        if failures() != failed:
            return False
        texts, data = encode(self._blocks, block, self._texts, LEVEL if over else SMALL_LEVEL)
        times = [t for columns, lo, hi in block for t in columns.span_s(lo, hi) or ()]
        cur = db.execute(self._insert, (min(times), max(times),
                                        sum(hi - lo for _, lo, hi in block), texts, data))
        if not over and failures() == failed:
            self._block_ids.append(cur.lastrowid)
        return True
