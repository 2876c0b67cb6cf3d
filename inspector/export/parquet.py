"""A table as an Apache Parquet file (pyarrow, the optional extra `inspector[parquet]`), one
row group per chunk, zstd-compressed, its columns typed as Parquet says them: INT64 (NULLs
kept), DOUBLE, BOOLEAN, STRING and, for cmdline, a LIST of STRING."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import pandas as pd

from inspector.export import ExportError
from inspector.export.tables import BOOL, CATEGORY, INTEGER, LIST, REAL, Column

NEEDS = "export: --format parquet needs pyarrow: pip install 'inspector[parquet]'"
# zstd: 7% (stacks) to 17% (thread samples) smaller than pyarrow's default, snappy, on a
# synthetic 10-minute recording of 64 threads; DuckDB, polars, pandas and Spark read it.
COMPRESSION = "zstd"


def require() -> None:
    """ExportError (one line saying how to install it) where pyarrow is not installed."""
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ExportError(NEEDS) from None


def write(out: BinaryIO, chunks: Iterator[pd.DataFrame], columns: list[Column]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([pa.field(c.name, _arrow_type(c.kind)) for c in columns])
    # The categoricals go in as arrow dictionaries: Parquet stores their pages
    # dictionary-encoded straight from them (a stack text once per row group, never
    # expanded in memory). Without arrow's own schema in the file (store_schema=False)
    # every reader sees them as the plain strings they are: with it, polars would read a
    # Categorical, which joins no String column and has no .str.
    with pq.ParquetWriter(out, schema, compression=COMPRESSION, store_schema=False) as parquet:
        for chunk in chunks:
            parquet.write_table(pa.Table.from_arrays(
                [_array(chunk[c.name], c.kind, schema.field(c.name).type) for c in columns],
                schema=schema))


def _arrow_type(kind: str) -> Any:
    import pyarrow as pa

    return {INTEGER: pa.int64(), REAL: pa.float64(), BOOL: pa.bool_(),
            CATEGORY: pa.dictionary(pa.int32(), pa.string()),
            LIST: pa.list_(pa.string())}.get(kind, pa.string())


def _array(values: pd.Series, kind: str, type_: Any) -> Any:
    import pyarrow as pa

    if kind == CATEGORY:
        values = values.cat.remove_unused_categories()  # a row group's own texts only
        codes = values.cat.codes.to_numpy()
        return pa.DictionaryArray.from_arrays(
            pa.array(codes, type=pa.int32(), mask=codes < 0),
            pa.array(values.cat.categories.astype(object), type=pa.string()))
    if kind == LIST:
        return pa.array([list(v) if isinstance(v, (list, tuple)) else None for v in values],
                        type=type_)
    return pa.array(values, type=type_, from_pandas=True)
