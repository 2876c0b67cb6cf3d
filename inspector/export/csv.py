"""A table as CSV (RFC 4180, UTF-8, a header line, `\\n` line ends), written chunk by chunk:
NULL as an empty field, booleans as `true`/`false`, a list (cmdline) as its JSON text, every
float as Python's shortest repr (it reads back bit-identical)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import BinaryIO

import pandas as pd

from inspector.export.tables import BOOL, LIST, Column


def write(out: BinaryIO, chunks: Iterator[pd.DataFrame], columns: list[Column]) -> None:
    text = io.TextIOWrapper(out, encoding="utf-8", errors="replace", newline="")
    try:
        for i, chunk in enumerate(chunks):
            for c in columns:
                if c.kind == BOOL:
                    # DuckDB, polars and pandas all read true/false as booleans
                    chunk[c.name] = chunk[c.name].map({True: "true", False: "false"})
                elif c.kind == LIST:
                    chunk[c.name] = [_json(v) for v in chunk[c.name]]
            chunk.to_csv(text, header=i == 0, index=False, lineterminator="\n")
        text.flush()
    finally:
        text.detach()  # the caller closes `out`


def _json(value: object) -> str | None:
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value), ensure_ascii=False)
    return None
