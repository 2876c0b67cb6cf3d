"""A DataFrame cell as a plain Python value: a missing one (None, NaN, pd.NA, as the reader's
frames hold NULL) as None. One home for what the report, the exports and merge each read out
of a Recording's frames row by row."""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
import pandas as pd


def missing(value: Any) -> bool:
    """Whether a cell holds no value: None, a float NaN, or pd.NA."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def opt_int(value: Any) -> Optional[int]:
    return None if missing(value) else int(value)


def opt_float(value: Any) -> Optional[float]:
    if value is None or value is pd.NA:
        return None
    f = float(value)
    return None if math.isnan(f) else f


def opt_str(value: Any) -> Optional[str]:
    return None if missing(value) else str(value)


def plain(value: Any) -> Any:
    """The value as SQLite takes it: None where missing, numpy scalars as Python's."""
    if missing(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value
