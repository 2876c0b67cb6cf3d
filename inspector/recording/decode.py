"""Reads blocks (written by recording/blocks.py: thread samples since version 2, process
samples, stack spans and machine samples since 3) into their table's columns, without
trusting them: every length, code and dictionary is checked, each block inflates to exactly
the size its rows call for, and the rows of a file are bounded by its size (limits.py).
Anything wrong raises RecordingError.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from inspector.errors import RecordingError
from inspector.recording.blocks import gap_columns
from inspector.recording.limits import RowLimit
from inspector.recording.schema import (
    BLOCK_MAX_ROWS,
    BLOCK_MAX_TEXTS,
    BLOCK_NULL,
    BlockLayout,
)
from inspector.recording.untrusted import READ_FAILURES, said


def _bad(path: Path, layout: BlockLayout, why: str) -> RecordingError:
    return RecordingError(f"{path}: corrupt recording ({layout.blocks.replace('_', ' ')}:"
                          f" {why})")


class _Dictionaries:
    """Each block's texts mapped onto one dictionary per column (blocks of a recording
    repeat a handful of `texts` values: each is parsed once)."""

    def __init__(self, path: Path, layout: BlockLayout) -> None:
        self.path = path
        self.layout = layout
        self.names: list[dict[str, int]] = [{} for _ in layout.texts]
        self._seen: dict[str, tuple[list[np.ndarray], list[int]]] = {}

    def lookups(self, texts: str) -> tuple[list[np.ndarray], list[int]]:
        """Per text column: code -> index into `names` (code 0, NULL: -1), and the width
        of a code in bytes."""
        known = self._seen.get(texts)
        if known is not None:
            return known
        layout = self.layout
        try:
            parsed = json.loads(texts)
        except (ValueError, RecursionError):
            raise _bad(self.path, layout, "texts are not JSON") from None
        if not isinstance(parsed, dict) or sorted(parsed) != sorted(layout.texts):
            raise _bad(self.path, layout, "texts are not the dictionary of each text column")
        luts, widths = [], []
        for name, names in zip(layout.texts, self.names):
            words = parsed[name]
            if (not isinstance(words, list) or len(words) > BLOCK_MAX_TEXTS
                    or not all(isinstance(w, str) for w in words)):
                raise _bad(self.path, layout, f"the {name} dictionary is not a list of texts")
            lut = np.empty(len(words) + 1, dtype=np.int32)
            lut[0] = -1
            lut[1:] = [names.setdefault(w, len(names)) for w in words]
            luts.append(lut)
            widths.append(1 if len(words) < 256 else 2)
        self._seen[texts] = (luts, widths)
        return luts, widths


def _inflate(data: bytes, size: int) -> bytes | None:
    """`data` inflated, if it is one whole zlib stream of at most `size` bytes; None if not.
    Never makes more than `size` (+1) bytes, whatever the stream claims."""
    try:
        d = zlib.decompressobj()
        raw = d.decompress(data, size)
        if not d.eof and (d.decompress(d.unconsumed_tail, 1) or not d.eof):
            return None  # longer than its rows, or cut short
    except zlib.error:
        return None
    return raw if len(raw) <= size and not d.unused_data else None


def _order(t_first_s: Any) -> float:
    """A block's place among its thread's: its stored first time (load() checks the order
    of the rows it makes, and sorts them if a file lied)."""
    return float(t_first_s) if isinstance(t_first_s, (int, float)) else float("-inf")


def block_rows(db: sqlite3.Connection, path: Path, layout: BlockLayout,
               rowids: Sequence[int] | None = None) -> list[tuple[Any, ...]]:
    """The layout's blocks (or those of `rowids`), each (rowid, keys..., t_first_s, rows,
    texts, data), their ids, row counts and types checked (not their data). One statement:
    a file being written is read at one moment, so a compaction (small blocks replaced by
    their union) is seen wholly or not at all."""
    keys = "".join(f"{k}, " for k in layout.keys)
    sql = f"SELECT rowid, {keys}t_first_s, rows, texts, data FROM {layout.blocks}"
    try:
        if rowids is None:
            blocks = db.execute(sql).fetchall()
        else:  # a few hundred at a time: SQLite binds at most 999 values (before 3.32)
            ids = [int(i) for i in rowids]
            blocks = []
            for lo in range(0, len(ids), 500):
                part = ids[lo:lo + 500]
                blocks += db.execute(f"{sql} WHERE rowid IN ({','.join('?' * len(part))})",
                                     part).fetchall()
    except READ_FAILURES as e:
        raise RecordingError(f"{path}: corrupt recording ({said(e)})") from None
    k = len(layout.keys)
    for block in blocks:
        rowid, rows, texts, data = block[0], block[k + 2], block[k + 3], block[k + 4]
        if not all(type(v) is int for v in (*block[1:k + 1], rows)):
            raise _bad(path, layout, f"block {rowid}: ids or row count are not integers")
        if not 0 < rows <= BLOCK_MAX_ROWS:
            raise _bad(path, layout, f"block {rowid}: {rows} rows")
        if not isinstance(texts, str) or not isinstance(data, bytes):
            raise _bad(path, layout, f"block {rowid}: texts or data of the wrong type")
    return blocks


def _by_key(path: Path, layout: BlockLayout, keys: tuple[str, ...], numbers: np.ndarray,
            codes: list[np.ndarray], ordered: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    """Version 4's rows (an epoch's blocks after another's, key after key in each), their
    keys checked, and if `ordered`, put in the order version 3's give: by key but pid, then
    as stored (in time)."""
    names = [name for name, _ in layout.numbers]
    at = [names.index(key) for key in keys]
    if any(bool((numbers[j] == BLOCK_NULL).any()) for j in at):
        raise _bad(path, layout, "a key is NULL")
    if not ordered:
        return numbers, codes
    combined = np.zeros(numbers.shape[1], dtype=np.int64)
    for j in (j for j, key in zip(at, keys) if key != "pid"):
        code, uniques = pd.factorize(numbers[j], sort=True)
        combined = combined * len(uniques) + code
    if len(combined) < 2 or bool(np.all(combined[1:] >= combined[:-1])):
        return numbers, codes
    order = np.argsort(combined, kind="stable")
    for j in range(len(numbers)):  # a column at a time: the rows are not held twice
        numbers[j] = numbers[j][order]
    return numbers, [column[order] for column in codes]


def check_rows(path: Path, limit: RowLimit, counted: dict[BlockLayout, int]) -> None:
    """Refuses blocks that would make more rows, all tables together, than `limit`."""
    total = sum(counted.values())
    if total > limit.rows:
        most = max(counted, key=counted.__getitem__)
        limit.check(path, total, f"rows out of its blocks ({counted[most]:,} {most.noun})")


def _planes(raw: bytes, count: int, rows: int, target: np.ndarray) -> int | None:
    """Version 4's numbers: a byte per column saying which of its byte planes follow, then
    those planes; put into `target` ((count, rows) int64, all zeros until then: a plane not
    stored is zeros), zigzag-decoded. Returns where they end in `raw`; None if `raw` is not
    that long."""
    if len(raw) < count:
        return None
    mask = np.frombuffer(raw, dtype=np.uint8, count=count)
    end = count + rows * int(np.unpackbits(mask).sum())
    if len(raw) < end:
        return None
    # each stored plane written straight into its bytes of the values (little-endian)
    values = target.view(np.uint8).reshape(count, -1, 8)
    at = count
    for j in range(8):
        for c in np.flatnonzero(mask & (1 << j)):
            values[c, :rows, j] = np.frombuffer(raw, dtype=np.uint8, count=rows, offset=at)
            at += rows
    # zigzag-decoded in place: n = (z >> 1) ^ -(z & 1)
    zigzag = target.view(np.uint64)
    sign = (zigzag & np.uint64(1)).view(np.int64)
    np.negative(sign, out=sign)
    zigzag >>= np.uint64(1)
    zigzag ^= sign.view(np.uint64)
    return end


def decode_blocks(blocks: list[tuple[Any, ...]], path: Path, layout: BlockLayout,
                  keys: tuple[str, ...] = (), by_key: bool = True) -> dict[str, Any]:
    """Checked blocks (block_rows) as the layout's columns (numbers as the rest of load()
    gives them, texts as (codes, texts)), rows ordered by their keys and time (version 4:
    the numbers named in `keys`, which may not be NULL; the rows put in that order only
    if `by_key`, else left by block, each key's in time order)."""
    k = len(layout.keys)
    count = len(layout.numbers)
    delta = [j for j, (name, _) in enumerate(layout.numbers) if name not in layout.plain]
    gap = gap_columns(layout)
    total = sum(b[k + 2] for b in blocks)
    # by key but pid (proc_id and tid for a thread's), then time; NULL-free keys
    order_keys = [i for i, name in enumerate(layout.keys, 1) if name != "pid"]
    blocks.sort(key=lambda b: (*(b[i] for i in order_keys), _order(b[k + 1]), b[0]))
    # each block decoded into its place: the whole is never held twice (version 4's zeros:
    # its planes fill in what is not; fresh pages the system gives zeroed, untouched)
    numbers = (np.zeros if layout.planes else np.empty)((count, total), dtype=np.int64)
    codes = [np.empty(total, dtype=np.int32) for _ in layout.texts]
    dictionaries = _Dictionaries(path, layout)
    at = 0
    for block in blocks:
        rowid, rows, texts, data = block[0], block[k + 2], block[k + 3], block[k + 4]
        luts, widths = dictionaries.lookups(texts)
        target = numbers[:, at:at + rows]
        wrong = _bad(path, layout, f"block {rowid}: data is not {rows} rows of zlib'd"
                                   " columns")
        if layout.planes:
            raw = _inflate(data, count + 8 * count * rows + rows * sum(widths)) or b""
            end = _planes(raw, count, rows, target)
            if end is None or len(raw) != end + rows * sum(widths):
                raise wrong
            offset = end
        else:
            offset = 8 * count * rows
            raw = _inflate(data, offset + rows * sum(widths)) or b""
            if len(raw) != offset + rows * sum(widths):
                raise wrong
            # byte j of every value, then byte j + 1: back to little-endian int64 differences
            planes = np.frombuffer(raw, dtype=np.uint8, count=offset)
            deltas = np.ascontiguousarray(planes.reshape(8, count * rows).T)
            target[...] = deltas.view("<i8").reshape(count, rows)
            if gap is not None:  # version 3 zigzag-coded only the gap column
                zigzag = target[gap[0]].view(np.uint64)
                target[gap[0]] = (zigzag >> np.uint64(1)).view(np.int64) ^ -(
                    zigzag & np.uint64(1)).view(np.int64)
        if len(delta) == count:  # the sums wrap as the writer's differences did
            np.cumsum(target, axis=1, out=target)
        else:
            if gap is not None:  # a start follows the row before's start + length
                start, length = gap
                target[start, 1:] += target[length, :-1]
            for j in delta:
                np.cumsum(target[j], out=target[j])
        for column, lut, width in zip(codes, luts, widths):
            part: np.ndarray = np.frombuffer(raw, dtype="<u1" if width == 1 else "<u2",
                                             count=rows, offset=offset)
            offset += rows * width
            try:
                column[at:at + rows] = lut[part]
            except IndexError:
                raise _bad(path, layout, f"block {rowid}: a text code beyond its"
                                         " dictionary") from None
        at += rows
    if keys:
        numbers, codes = _by_key(path, layout, keys, numbers, codes, by_key)
    counts = np.fromiter((b[k + 2] for b in blocks), dtype=np.int64, count=len(blocks))
    out: dict[str, Any] = {}
    for i, name in enumerate(layout.keys, 1):
        ids = np.fromiter((b[i] for b in blocks), dtype=np.int64, count=len(blocks))
        out[name] = np.repeat(ids, counts)
    del blocks
    # each column its row of `numbers`, turned to float64 in place where it has a unit or
    # NULLs: no copy (a fresh process pays a page fault for every page a copy touches)
    for j, (name, scale) in enumerate(layout.numbers):
        q = numbers[j]
        null = q == BLOCK_NULL
        has_null = bool(null.any())
        if scale == 1 and not has_null:
            out[name] = q
            continue
        values = q.view(np.float64)
        np.divide(q, scale, out=values)  # int64 -> float64 exactly rounded, as q / scale
        if has_null:
            values[null] = np.nan
        out[name] = values
    del numbers
    for name, column, names in zip(layout.texts, codes, dictionaries.names):
        # only the texts some row holds, as a column read from SQL has them
        used = np.bincount(column + 1, minlength=len(names) + 1)[1:] > 0
        labels = np.asarray(list(names), dtype=object)
        remap = np.full(len(names) + 1, -1, dtype=np.int32)
        remap[1:][used] = np.arange(int(used.sum()), dtype=np.int32)
        out[name] = (remap[column + 1], labels[used])
    return out
