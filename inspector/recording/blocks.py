"""Blocks, written: rows (since version 4 every thread's or process's of a table in one
epoch, key after key; before, one key's) as columns of whole numbers, each delta-coded or
plain as its BlockLayout says, zigzag-coded, split into byte planes of which only those
holding something are kept, and deflated; texts coded into a dictionary.
docs/recording-format.md gives the layout; the reader decodes it with numpy. Standard
library only: the recorder encodes.
"""

from __future__ import annotations

import json
import sys
import zlib
from array import array
from collections.abc import Sequence
from functools import cache
from operator import sub
from typing import Any

from inspector.recording.schema import (
    BLOCK_MAX_ROWS,
    BLOCK_MAX_TEXTS,
    BLOCK_NULL,
    BlockLayout,
)

_TO_UINT64 = ((1 << 64) - 1).__and__  # a difference, wrapped as the reader's int64 sum wraps
# Values beyond this many units are not stored in a block (their row goes to the layout's
# table): 2**62 ns is 146 years, and no difference of two in-range values then overflows twice.
_LIMIT = 2**62
_T_SCALE = 10**6  # every layout's first number: t_s in microseconds
# zlib's level: blocks are a few KB; 6 (its default) is within 2% of 9's size here, faster.
# A small block, soon replaced, is written at 1 (SMALL_LEVEL).
LEVEL = 6
SMALL_LEVEL = 1
# A 2-KB window and little memory: no larger on these blocks, whose repeats lie close (a
# 300-row column is 2.4 KB), and zlib.compress's default state (~256 KB set up per call)
# cost 50 us a block, 15 times the compression of a small one.
_WINDOW_BITS = 11
_MEM_LEVEL = 2


@cache
def _positions(layout: BlockLayout) -> tuple[tuple[int, ...], tuple[int, ...], tuple[bool, ...]]:
    """Where a row of `layout.columns` holds each number and each text, and which numbers
    are delta-coded."""
    assert layout.numbers[0] == ("t_s", _T_SCALE)
    at = {name: i for i, name in enumerate(layout.columns)}
    return (tuple(at[name] for name, _ in layout.numbers), tuple(at[n] for n in layout.texts),
            tuple(name not in layout.plain for name, _ in layout.numbers))


Dictionaries = list[dict[str | None, int]]


def new_dictionaries(layout: BlockLayout) -> Dictionaries:
    """Empty dictionaries for the layout's text columns (None: code 0)."""
    return [{None: 0} for _ in layout.texts]


def gap_columns(layout: BlockLayout) -> tuple[int, int] | None:
    """The indexes into `layout.numbers` of its gap-coded start and of the length it
    follows (both of one scale), if it has them."""
    if layout.gap is None:
        return None
    names = [name for name, _ in layout.numbers]
    start, length = (names.index(n) for n in layout.gap)
    assert layout.numbers[start][1] == layout.numbers[length][1]
    assert layout.gap[0] not in layout.plain
    return start, length


def key_at(layout: BlockLayout) -> tuple[int, ...]:
    """Where a row of `layout.columns` holds each key column."""
    return tuple(layout.columns.index(k) for k in layout.keys)


class _Unfit(ValueError):
    """A row a block cannot hold (a text key, a value out of range, a fractional syscall):
    it is stored as a row of the layout's table instead. An internal signal, not an error:
    raised and caught in this module only (`Columns.settle` returns such rows), so it is no
    InspectorError."""


def _wrapped_sum(a: int, b: int) -> int:
    """a + b in 64-bit two's complement, as the reader's int64 sums wrap."""
    return (a + b + 2**63) % 2**64 - 2**63


def _zigzag(u: int) -> int:
    """A difference (as uint64: int64 wrapped) as 2n for n >= 0 and -2n - 1 below: small
    either way."""
    n = u - 2**64 if u >= 2**63 else u
    return ((n << 1) ^ (n >> 63)) & 0xFFFF_FFFF_FFFF_FFFF


def sample_time(t_s: float) -> float:
    """A sample time as the file keeps it, in every table that joins on it: to the
    microsecond, exactly what a block gives back (a whole number over 10**6)."""
    return round(t_s * _T_SCALE) / _T_SCALE


def _number(value: Any, scale: int) -> int:
    if value is None:
        return BLOCK_NULL
    if isinstance(value, int):  # bool too: SQLite keeps True as 1
        q = value * scale
    elif isinstance(value, float):
        if value != value:  # NaN: SQLite stores it as NULL too
            return BLOCK_NULL
        if scale == 1 and not value.is_integer():
            raise _Unfit("fraction in an integer column")
        try:
            q = round(value * scale)
        except OverflowError:
            raise _Unfit("infinite") from None
    else:
        raise _Unfit(f"a {type(value).__name__} in a number column")
    if not -_LIMIT <= q <= _LIMIT:
        raise _Unfit("out of range")
    return q


class Columns:
    """The rows of one key (a thread, a process, a machine) gathered for blocks: rows as
    they come, then (`settle`) as columns of whole numbers and of text codes (0: NULL; k:
    the k-th text of its column's dictionary)."""

    __slots__ = ("layout", "numbers", "codes", "texts", "pending", "written", "_number_at",
                 "_text_at")

    def __init__(self, layout: BlockLayout, texts: Dictionaries | None = None) -> None:
        self.layout = layout
        self._number_at, self._text_at, _ = _positions(layout)
        self.numbers = [array("q") for _ in layout.numbers]
        self.codes = [array("H") for _ in layout.texts]
        # per text column: text -> code, in order of code (None first, code 0); shared by
        # the keys whose rows go into the same blocks
        self.texts = texts if texts is not None else new_dictionaries(layout)
        self.pending: list[Sequence[Any]] = []  # rows added, not yet settled
        self.written = 0                  # settled rows already in the file as blocks

    def __len__(self) -> int:
        return len(self.numbers[0])

    def settle(self) -> list[Sequence[Any]]:
        """Turns the pending rows into columns; returns those a block cannot hold."""
        rows, self.pending = self.pending, []
        if not rows:
            return []
        try:
            numbers, codes = self._columns(rows)
        except (_Unfit, TypeError, ValueError, OverflowError, KeyError):
            # the rare batch with a new text, a NaN, a value out of range: row by row
            unfit = []
            for row in rows:
                try:
                    self._add(row)
                except _Unfit:
                    unfit.append(row)
            return unfit
        for column, whole in zip(self.numbers, numbers):
            column.extend(whole)
        for column, coded in zip(self.codes, codes):
            column.extend(coded)
        return []

    def _columns(self, rows: list[Sequence[Any]]) -> tuple[list[array], list[list[int]]]:
        """The usual batch, a column at a time; raises on anything unusual."""
        columns = list(zip(*rows))
        numbers = []
        for i, (_, scale) in zip(self._number_at, self.layout.numbers):
            values = columns[i]
            if scale == 1:
                if BLOCK_NULL in values:
                    raise _Unfit("the NULL value")
                q = array("q", [BLOCK_NULL if v is None else v for v in values]
                          if None in values else values)
            elif None in values:
                q = array("q", [BLOCK_NULL if v is None else round(v * scale) for v in values])
            else:
                q = array("q", map(round, map(float(scale).__mul__, values)))
            numbers.append(q)
        for q in numbers:
            low = min(q)
            if low == BLOCK_NULL:
                low = min((v for v in q if v != BLOCK_NULL), default=0)
            if max(q) > _LIMIT or low < -_LIMIT:
                raise _Unfit("out of range")
        if BLOCK_NULL in numbers[0]:
            raise _Unfit("no time")
        codes = [list(map(texts.__getitem__, columns[i]))
                 for i, texts in zip(self._text_at, self.texts)]
        return numbers, codes

    def _add(self, row: Sequence[Any]) -> None:
        """Appends one row of the layout's columns; raises _Unfit (and adds nothing) for one
        a block cannot hold."""
        if row[0] is None:
            raise _Unfit("no time")
        numbers = [_number(row[i], scale)
                   for i, (_, scale) in zip(self._number_at, self.layout.numbers)]
        if numbers[0] == BLOCK_NULL:
            raise _Unfit("no time")
        codes = []
        for i, texts in zip(self._text_at, self.texts):
            text = row[i]
            if text is None or isinstance(text, float) and text != text:
                codes.append(0)
                continue
            if not isinstance(text, str):
                raise _Unfit(f"a {type(text).__name__} in a text column")
            code = texts.get(text)
            if code is None:
                if len(texts) > BLOCK_MAX_TEXTS:
                    raise _Unfit("too many texts")
                code = texts[text] = len(texts)
            codes.append(code)
        for column, q in zip(self.numbers, numbers):
            column.append(q)
        for column, code in zip(self.codes, codes):
            column.append(code)

    def t_s(self, i: int) -> float:
        return self.numbers[0][i] / _T_SCALE

    def span_s(self, lo: int, hi: int | None = None) -> tuple[float, float] | None:
        """The first and last t_s of the settled rows lo..hi (from lo on)."""
        times = self.numbers[0][lo:hi]
        return (min(times) / _T_SCALE, max(times) / _T_SCALE) if times else None

    def encode(self, lo: int, hi: int, level: int = LEVEL) -> tuple[str, bytes]:
        """Settled rows lo..hi (at most BLOCK_MAX_ROWS) as a block's (texts, data)."""
        return encode(self.layout, [(self, lo, hi)], self.texts, level)


def _difference(value: int, before: int) -> int:
    """value - before, wrapped to int64 as the reader's sums wrap, zigzag-coded (version 4:
    small either way: 0, -1, 1, -2 as 0, 1, 2, 3)."""
    return _zigzag(_TO_UINT64(value - before))


def encode(layout: BlockLayout, parts: Sequence[tuple[Columns, int, int]],
           texts: Dictionaries, level: int = LEVEL) -> tuple[str, bytes]:
    """The settled rows lo..hi of each part's Columns (at most BLOCK_MAX_ROWS in all), one
    part after another, as a block's (texts, data); `texts`: the dictionaries their codes
    are of."""
    n = sum(hi - lo for _, lo, hi in parts)
    assert 0 < n <= BLOCK_MAX_ROWS
    values = array("q")
    for j in range(len(layout.numbers)):
        for columns, lo, hi in parts:
            values += columns.numbers[j][lo:hi]
    before = array("q", bytes(8)) + values[:-1]  # each value's predecessor in its column
    for j, delta in enumerate(_positions(layout)[2]):
        if delta:
            before[j * n] = 0  # the first is stored as it is
        else:
            before[j * n:(j + 1) * n] = array("q", bytes(8 * n))
    gap = gap_columns(layout)
    if gap is not None:  # after the row before's start + length
        start, length = gap[0] * n, gap[1] * n
        before[start + 1:start + n] = array("q", map(
            _wrapped_sum, values[start:start + n - 1], values[length:length + n - 1]))
    if layout.planes:
        deltas = array("Q", map(_difference, values, before))
    else:
        deltas = array("Q", map(_TO_UINT64, map(sub, values, before)))
        if gap is not None:
            # mostly 0, now and then -1 or 1 (start and length each rounded on its own):
            # zigzag-coded so that -1 is 1, not 2**64 - 1
            deltas[start:start + n] = array("Q", map(_zigzag, deltas[start:start + n]))
    if sys.byteorder == "big":
        deltas.byteswap()
    raw = deltas.tobytes()
    if layout.planes:
        # per column a byte saying which of its byte planes follow (bit j: its values' byte
        # j), then those planes, byte 0 of every column's first: most are all zeros, and
        # what is left to inflate (and store) is a few bytes a value, not 8
        k = len(layout.numbers)
        mask = bytearray(k)
        kept = []
        for j in range(8):
            plane = raw[j::8]
            for c in range(k):
                part = plane[c * n:(c + 1) * n]
                if part.count(0) != n:
                    mask[c] |= 1 << j
                    kept.append(part)
        numbers = bytes(mask) + b"".join(kept)
    else:
        numbers = b"".join(raw[i::8] for i in range(8))  # byte 0 of every value, then 1, ...
    codes = []
    for t, words in enumerate(texts):
        coded = array("H")
        for columns, lo, hi in parts:
            coded += columns.codes[t][lo:hi]
        wide = array("B", coded.tobytes()[::2] if sys.byteorder == "little" else
                     coded.tobytes()[1::2]) if len(words) <= 256 else coded
        if sys.byteorder == "big":
            wide.byteswap()
        codes.append(wide.tobytes())
    names = {name: [t for t in words if t is not None]
             for name, words in zip(layout.texts, texts)}
    deflate = zlib.compressobj(level, zlib.DEFLATED, _WINDOW_BITS, _MEM_LEVEL)
    return (json.dumps(names, separators=(",", ":"), ensure_ascii=False),
            deflate.compress(numbers + b"".join(codes)) + deflate.flush())
