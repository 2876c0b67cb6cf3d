"""Reads version 2's thread blocks (written by recording/blocks.py) into the columns of
thread_samples, without trusting them: every length, code and dictionary is checked, each
block inflates to exactly the size its rows call for, and the rows of a file are bounded by
its size (limits.py). Anything wrong raises RecordingError.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from inspector.errors import RecordingError
from inspector.recording.limits import RowLimit
from inspector.recording.schema import (
    BLOCK_MAX_ROWS,
    BLOCK_MAX_TEXTS,
    BLOCK_NULL,
    BLOCK_NUMBERS,
    BLOCK_TEXTS,
)

_NUMBERS = len(BLOCK_NUMBERS)


def _bad(path: Path, why: str) -> RecordingError:
    return RecordingError(f"{path}: corrupt recording (thread blocks: {why})")


class _Dictionaries:
    """Each block's texts mapped onto one dictionary per column (blocks of a recording
    repeat a handful of `texts` values: each is parsed once)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.names: list[dict[str, int]] = [{} for _ in BLOCK_TEXTS]
        self._seen: dict[str, tuple[list[np.ndarray], list[int]]] = {}

    def lookups(self, texts: str) -> tuple[list[np.ndarray], list[int]]:
        """Per text column: code -> index into `names` (code 0, NULL: -1), and the width
        of a code in bytes."""
        known = self._seen.get(texts)
        if known is not None:
            return known
        try:
            parsed = json.loads(texts)
        except (ValueError, RecursionError):
            raise _bad(self.path, "texts are not JSON") from None
        if not isinstance(parsed, dict) or sorted(parsed) != sorted(BLOCK_TEXTS):
            raise _bad(self.path, "texts are not the dictionary of each text column")
        luts, widths = [], []
        for name, names in zip(BLOCK_TEXTS, self.names):
            words = parsed[name]
            if (not isinstance(words, list) or len(words) > BLOCK_MAX_TEXTS
                    or not all(isinstance(w, str) for w in words)):
                raise _bad(self.path, f"the {name} dictionary is not a list of texts")
            lut = np.empty(len(words) + 1, dtype=np.int32)
            lut[0] = -1
            lut[1:] = [names.setdefault(w, len(names)) for w in words]
            luts.append(lut)
            widths.append(1 if len(words) < 256 else 2)
        self._seen[texts] = (luts, widths)
        return luts, widths


def _inflate(data: bytes, size: int) -> bytes | None:
    """`data` inflated, if it is one whole zlib stream of exactly `size` bytes; None if not.
    Never makes more than `size` (+1) bytes, whatever the stream claims."""
    try:
        d = zlib.decompressobj()
        raw = d.decompress(data, size)
        if not d.eof and (d.decompress(d.unconsumed_tail, 1) or not d.eof):
            return None  # longer than its rows, or cut short
    except zlib.error:
        return None
    return raw if len(raw) == size and not d.unused_data else None


def _order(t_first_s: Any) -> float:
    """A block's place among its thread's: its stored first time (load() checks the order
    of the rows it makes, and sorts them if a file lied)."""
    return float(t_first_s) if isinstance(t_first_s, (int, float)) else float("-inf")


def read_blocks(db: sqlite3.Connection, path: Path, limit: RowLimit) -> dict[str, Any]:
    """The thread_blocks table as THREAD_SAMPLE_COLUMNS arrays (numbers as the rest of
    load() gives them, texts as (codes, texts)), blocks ordered by proc_id, tid and time.
    One statement: a file being written is read at one moment, so a compaction (small
    blocks replaced by their union) is seen wholly or not at all. Refuses more rows than
    `limit` before it makes any."""
    try:
        blocks = db.execute("SELECT rowid, proc_id, pid, tid, t_first_s, rows, texts, data"
                            " FROM thread_blocks").fetchall()
    except (sqlite3.Error, UnicodeDecodeError) as e:
        raise RecordingError(f"{path}: corrupt recording ({' '.join(str(e).split())})"
                             ) from None
    total = 0
    for rowid, proc_id, pid, tid, _t, rows, texts, data in blocks:
        if not all(type(v) is int for v in (proc_id, pid, tid, rows)):
            raise _bad(path, f"block {rowid}: ids or row count are not integers")
        if not 0 < rows <= BLOCK_MAX_ROWS:
            raise _bad(path, f"block {rowid}: {rows} rows")
        if not isinstance(texts, str) or not isinstance(data, bytes):
            raise _bad(path, f"block {rowid}: texts or data of the wrong type")
        total += rows
    limit.check(path, total, "thread samples out of its blocks")
    blocks.sort(key=lambda b: (b[1], b[3], _order(b[4]), b[0]))
    # each block decoded into its place: the whole is never held twice
    numbers = np.empty((_NUMBERS, total), dtype=np.int64)
    codes = [np.empty(total, dtype=np.int32) for _ in BLOCK_TEXTS]
    dictionaries = _Dictionaries(path)
    at = 0
    for rowid, _proc_id, _pid, _tid, _t, rows, texts, data in blocks:
        luts, widths = dictionaries.lookups(texts)
        numbers_size = 8 * _NUMBERS * rows
        raw = _inflate(data, numbers_size + rows * sum(widths))
        if raw is None:
            raise _bad(path, f"block {rowid}: data is not {rows} rows of zlib'd columns")
        # byte j of every value, then byte j + 1: back to little-endian int64 differences
        planes = np.frombuffer(raw, dtype=np.uint8, count=numbers_size)
        deltas = np.ascontiguousarray(planes.reshape(8, _NUMBERS * rows).T)
        deltas = deltas.view("<i8").reshape(_NUMBERS, rows).astype(np.int64, copy=False)
        # the sums wrap as the writer's differences did
        np.cumsum(deltas, axis=1, out=numbers[:, at:at + rows])
        offset = numbers_size
        for column, lut, width in zip(codes, luts, widths):
            part = np.frombuffer(raw, dtype=np.uint8 if width == 1 else "<u2", count=rows,
                                 offset=offset)
            offset += rows * width
            try:
                column[at:at + rows] = lut[part]
            except IndexError:
                raise _bad(path, f"block {rowid}: a text code beyond its dictionary") from None
        at += rows
    counts = np.fromiter((b[5] for b in blocks), dtype=np.int64, count=len(blocks))
    out: dict[str, Any] = {}
    for name, i in (("proc_id", 1), ("pid", 2), ("tid", 3)):
        ids = np.fromiter((b[i] for b in blocks), dtype=np.int64, count=len(blocks))
        out[name] = np.repeat(ids, counts)
    del blocks
    for j, (name, scale) in enumerate(BLOCK_NUMBERS):
        q = numbers[j]
        null = q == BLOCK_NULL
        if not null.any():  # int64 -> float64 exactly rounded; a copy either way
            out[name] = q.copy() if scale == 1 else q / scale
            continue
        values = q / scale
        values[null] = np.nan
        out[name] = values
    del numbers
    for name, column, names in zip(BLOCK_TEXTS, codes, dictionaries.names):
        # only the texts some row holds, as a column read from SQL has them
        used = np.bincount(column + 1, minlength=len(names) + 1)[1:] > 0
        labels = np.asarray(list(names), dtype=object)
        remap = np.full(len(names) + 1, -1, dtype=np.int32)
        remap[1:][used] = np.arange(int(used.sum()), dtype=np.int32)
        out[name] = (remap[column + 1], labels[used])
    return out
