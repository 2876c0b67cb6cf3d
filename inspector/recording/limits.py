"""What load() lets a file make it hold and do: rows (samples and spans out of compressed
blocks, stack frames over all spans) in proportion to the file's size, up to a ceiling for any file
(INSPECTOR_MAX_ROWS overrides all of them), frames of a bounded length, and only values the
analysis can use: nothing NULL where the format says NOT NULL, no infinite number, integers
that fit 64 bits. Beyond them is a RecordingError.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from inspector.errors import RecordingError
from inspector.recording.columns import categorical, column_kinds
from inspector.recording.schema import (
    BLOCK_MAX_ROWS,
    INT64_MAX,
    INT64_MIN,
    MAX_REAL,
    OLDER_TABLES,
    SCHEMA,
)

MAX_ROWS_ENV = "INSPECTOR_MAX_ROWS"

# Rows a file's blocks (thread and process samples, stack spans, machine samples, all
# together) may decode to: a block's worth, plus this many per byte of the file. Real
# recordings hold under 2.5 per byte of their blocks since format 4 (64 idle threads, the
# densest: 2.3; format 3, 0.3-0.5) and 0.2 per byte of the file for the synthetic
# host-hour; rows that never change deflate to ~1,000 a byte, and load() holds ~100-165
# bytes a row at its peak (1 M thread samples: 164 MB more), the report about 2.5 times that.
ROWS_PER_FILE_BYTE = 4
BASE_ROWS = BLOCK_MAX_ROWS
# Stack frames over all spans (a span of 40 frames: 40), what the exports walk (a Perfetto
# trace takes ~20 us and ~1 KB a frame where consecutive spans share none): a span costs a
# file 3-8 bytes since format 4, and real recordings hold 0.01-1.1 frames a byte of file
# (the synthetic host-hour's 12-frame stacks: 1.1), while spans that name one deep stack
# text over and over cost next to nothing to store. A thread deep in recursion that changes
# its leaf at every sample may hold more (~20 a byte at 1,000 frames): INSPECTOR_MAX_ROWS
# reads it.
FRAMES_PER_FILE_BYTE = 4
BASE_FRAMES = 1 << 18
# A frame longer than this is cut (and ends in MARK): real ones ('func (path:line)') stay
# under ~300 characters, and a trace writes a frame's text once per span it opens in.
MAX_FRAME_CHARS = 1024
CUT_MARK = "..."
# Characters of the stack texts load() joins from a version-5 file's frames and nodes (the
# stacks its spans name, each once): a node costs a file ~10 bytes and may add a frame of up
# to MAX_FRAME_CHARS to a text, so the texts are bounded apart from the file's own bytes.
# Real stacks are 0.5-2 KB of text (the synthetic host-hour's 768: 0.5 M characters in a
# 22 MB file); 1,000 distinct 1,000-frame stacks of a deep recursion (60 MB) fit a 1-MB file.
BASE_STACK_CHARS = 1 << 26
STACK_CHARS_PER_FILE_BYTE = 64
MAX_STACK_CHARS = 1 << 31
# The most any file may make unless told: ~5.5 GB of thread samples held by load(), the
# samples and spans of about six host-hours and the frames of about ten. A synthetic
# host-hour of 64 threads (docs/scale.md) holds 2.3 M thread samples, 2.1 M stack spans,
# 0.3 M process samples and 24.5 M frames.
MAX_ROWS = 1 << 25
MAX_FRAMES = 1 << 28


@dataclass(frozen=True)
class RowLimit:
    """The most rows of one kind a file may make, and what says so."""

    rows: int
    why: str

    def check(self, path: Path, count: int, what: str) -> None:
        if count > self.rows:
            raise RecordingError(
                f"{path}: would make {count:,} {what}, more than {self.why} ({self.rows:,});"
                f" set {MAX_ROWS_ENV}={count} to read it anyway")


@dataclass(frozen=True)
class Limits:
    """What one file may make load() hold."""

    rows: RowLimit      # thread samples
    frames: RowLimit    # stack frames over all spans
    chars: RowLimit     # characters of the stack texts joined from frames (version 5)


def limits(file_bytes: int) -> Limits:
    """What a file of `file_bytes` bytes may make; INSPECTOR_MAX_ROWS=N allows N of each."""
    override = os.environ.get(MAX_ROWS_ENV, "").strip()
    if override:
        try:
            n = int(override)
        except ValueError:
            n = -1
        if n < 0:
            raise RecordingError(f"{MAX_ROWS_ENV}={override!r}: give a whole number of rows")
        return Limits(RowLimit(n, MAX_ROWS_ENV), RowLimit(n, MAX_ROWS_ENV),
                      RowLimit(max(n, BASE_STACK_CHARS), MAX_ROWS_ENV))
    return Limits(_scaled(BASE_ROWS + ROWS_PER_FILE_BYTE * file_bytes, MAX_ROWS, file_bytes),
                  _scaled(BASE_FRAMES + FRAMES_PER_FILE_BYTE * file_bytes, MAX_FRAMES,
                          file_bytes),
                  _scaled(BASE_STACK_CHARS + STACK_CHARS_PER_FILE_BYTE * file_bytes,
                          MAX_STACK_CHARS, file_bytes))


def _scaled(rows: int, ceiling: int, file_bytes: int) -> RowLimit:
    if rows > ceiling:
        return RowLimit(ceiling, "inspector reads of any file")
    return RowLimit(rows, f"a file of {file_bytes:,} bytes holds")


def stack_frames(stacks: pd.DataFrame) -> int:
    """Frames over all spans: each span's stack text counted once per span."""
    if stacks.empty or "stack" not in stacks.columns:
        return 0
    texts = pd.Categorical(stacks["stack"])
    depth = np.fromiter((t.count(";") + 1 if isinstance(t, str) and t else 0
                         for t in texts.categories), dtype=np.int64,
                        count=len(texts.categories))
    codes = texts.codes
    spans = np.bincount(codes[codes >= 0], minlength=len(depth))
    return int(spans @ depth)


def short_frames(stacks: pd.Categorical) -> pd.Categorical:
    """The stack texts with every frame longer than MAX_FRAME_CHARS cut to it: each text
    is looked at once, whatever number of spans names it."""
    texts = list(stacks.categories)
    cut = [_cut(t) if len(t) > MAX_FRAME_CHARS else t for t in texts]
    if cut == texts:
        return stacks
    codes, uniques = pd.factorize(np.asarray(cut, dtype=object))  # cut texts may coincide
    remap = np.append(codes, -1).astype(np.int32)  # code -1 (no text) stays -1
    return categorical(remap[stacks.codes], uniques)


def cut_frames(text: str) -> str:
    """`text` with every frame longer than MAX_FRAME_CHARS cut to it."""
    return _cut(text) if len(text) > MAX_FRAME_CHARS else text


def _cut(text: str) -> str:
    return ";".join(f if len(f) <= MAX_FRAME_CHARS
                    else f[:MAX_FRAME_CHARS - len(CUT_MARK)] + CUT_MARK
                    for f in text.split(";"))


@functools.lru_cache(maxsize=1)
def not_null_columns() -> Mapping[str, frozenset[str]]:
    """Table -> the columns SCHEMA declares NOT NULL (without a default the reader applies)
    or a primary key: the keys the analysis joins and groups by. Every writer has kept them
    so since format version 1."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(SCHEMA + OLDER_TABLES)
        tables = [row[0] for row in
                  db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {table: frozenset(
                    name for _cid, name, _type, notnull, default, pk
                    in db.execute(f"PRAGMA table_info({table})")
                    if (notnull and default is None) or pk)
                for table in tables}
    finally:
        db.close()


def check_values(path: Path, table: str, frame: pd.DataFrame) -> None:
    """Refuses a NULL in a NOT NULL column of `table`, and a number beyond what its column
    may hold (schema.py: MAX_REAL, int64): a NaN key drops rows out of every join and group,
    an infinite or huge time or counter makes sums, differences and axes infinite and
    overflows the exports' integer nanoseconds, and 1e300 in a pid is no pid (SQLite keeps
    a REAL where an INTEGER belongs)."""
    for name in sorted(not_null_columns().get(table, frozenset()) & set(frame.columns)):
        if frame[name].isna().any():
            raise RecordingError(f"{path}: corrupt recording (NULL in {table}.{name})")
    kinds = column_kinds()
    for name in frame.columns:
        dtype, kind = frame[name].dtype, kinds.get(name)
        whole = kind == "integer"
        if kind not in ("real", "integer") or dtype.kind not in "fiu" or (
                whole and dtype.kind in "iu"):
            continue  # text; integers as int64 holds them; what load() worked out itself
        values = frame[name].to_numpy(dtype=np.float64)
        low, high = (INT64_MIN, INT64_MAX) if whole else (-MAX_REAL, MAX_REAL)
        with np.errstate(invalid="ignore"):
            beyond = (values < low) | (values > high) | np.isinf(values)
        if beyond.any():
            raise RecordingError(f"{path}: corrupt recording ({table}.{name} holds"
                                 f" {values[beyond][0]:.3g}, beyond"
                                 f" {'64-bit integers' if whole else f'{MAX_REAL:.3g}'})")
