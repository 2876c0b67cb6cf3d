"""Version 2's thread-sample blocks, written: one thread's rows as columns of whole numbers,
each column delta-coded, the lot byte-shuffled and deflated, texts coded into a dictionary.
docs/recording-format.md gives the layout; the reader decodes it with numpy. Standard
library only: the recorder encodes.
"""

from __future__ import annotations

import json
import sys
import zlib
from array import array
from collections.abc import Sequence
from itertools import chain
from operator import sub
from typing import Any

from inspector.recording.schema import (
    BLOCK_MAX_ROWS,
    BLOCK_MAX_TEXTS,
    BLOCK_NULL,
    BLOCK_NUMBERS,
    BLOCK_TEXTS,
)

_TO_UINT64 = ((1 << 64) - 1).__and__  # a difference, wrapped as the reader's int64 sum wraps
# Values beyond this many units are not stored in a block (their row goes to thread_samples):
# 2**62 ns is 146 years, and no difference of two in-range values then overflows twice.
_LIMIT = 2**62
_T_SCALE = BLOCK_NUMBERS[0][1]
# zlib's level: blocks are a few KB; 6 (its default) is within 2% of 9's size here, faster.
_LEVEL = 6
# Indexes into a THREAD_SAMPLE_COLUMNS row.
_NUMBER_AT = (0, 4, 5, 7, 9, 10, 11)
_TEXT_AT = (6, 8)


class Unfit(ValueError):
    """A row a block cannot hold (a text key, a value out of range, a fractional syscall):
    it is stored as a thread_samples row instead."""


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
            raise Unfit("fraction in an integer column")
        try:
            q = round(value * scale)
        except OverflowError:
            raise Unfit("infinite") from None
    else:
        raise Unfit(f"a {type(value).__name__} in a number column")
    if not -_LIMIT <= q <= _LIMIT:
        raise Unfit("out of range")
    return q


class ThreadColumns:
    """The rows of one thread gathered for blocks: numbers already whole, texts as codes
    (0: NULL; k: the k-th text of its column's dictionary)."""

    __slots__ = ("numbers", "codes", "texts", "written", "block_ids")

    def __init__(self) -> None:
        self.numbers = [array("q") for _ in BLOCK_NUMBERS]
        self.codes = [array("H") for _ in BLOCK_TEXTS]
        self.texts: list[dict[str, int]] = [{} for _ in BLOCK_TEXTS]
        self.written = 0                  # rows already in the file as blocks
        self.block_ids: list[int] = []    # their rowids

    def __len__(self) -> int:
        return len(self.numbers[0])

    def add(self, row: Sequence[Any]) -> None:
        """Appends a THREAD_SAMPLE_COLUMNS row; raises Unfit (and adds nothing) for one a
        block cannot hold."""
        if row[0] is None:
            raise Unfit("no time")
        numbers = [_number(row[i], scale) for i, (_, scale) in zip(_NUMBER_AT, BLOCK_NUMBERS)]
        if numbers[0] == BLOCK_NULL:
            raise Unfit("no time")
        codes = []
        for i, texts in zip(_TEXT_AT, self.texts):
            text = row[i]
            if text is None or isinstance(text, float) and text != text:
                codes.append(0)
                continue
            if not isinstance(text, str):
                raise Unfit(f"a {type(text).__name__} in a text column")
            code = texts.get(text)
            if code is None:
                if len(texts) >= BLOCK_MAX_TEXTS:
                    raise Unfit("too many texts")
                code = texts[text] = len(texts) + 1
            codes.append(code)
        for column, q in zip(self.numbers, numbers):
            column.append(q)
        for column, code in zip(self.codes, codes):
            column.append(code)

    def t_s(self, i: int) -> float:
        return self.numbers[0][i] / _T_SCALE

    def encode(self, lo: int, hi: int) -> tuple[str, bytes]:
        """Rows lo..hi (at most BLOCK_MAX_ROWS) as a block's (texts, data)."""
        assert 0 < hi - lo <= BLOCK_MAX_ROWS
        deltas = array("Q")
        for column in self.numbers:
            part = column[lo:hi]
            deltas.extend(map(_TO_UINT64, map(sub, part, chain((0,), part))))
        codes = []
        for column, texts in zip(self.codes, self.texts):
            wide = array("B" if len(texts) < 256 else "H", column[lo:hi])
            if sys.byteorder == "big":
                wide.byteswap()
            codes.append(wide.tobytes())
        if sys.byteorder == "big":
            deltas.byteswap()
        raw = deltas.tobytes()
        shuffled = b"".join(raw[i::8] for i in range(8))  # byte 0 of every value, then 1, ...
        names = {name: list(texts) for name, texts in zip(BLOCK_TEXTS, self.texts)}
        return (json.dumps(names, separators=(",", ":"), ensure_ascii=False),
                zlib.compress(shuffled + b"".join(codes), _LEVEL))
