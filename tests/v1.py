"""Version-1 recordings for tests, as inspector wrote them before thread_blocks: every thread
sample a row of the thread_samples table (indexed), format_version 1. Built with plain SQL
from a file the current writer made, so what load() must still read stays checked."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import pandas as pd

import inspector
from inspector.recording import THREAD_SAMPLE_COLUMNS

V1_INDEX = "CREATE INDEX ix_thread_samples ON thread_samples (proc_id, tid, t_s)"


def with_thread_rows(path: Path, rows: Iterable[Sequence[Any]]) -> Path:
    """`path` (written by RecordingWriter) turned into a version-1 file in place, holding
    these thread_samples rows (THREAD_SAMPLE_COLUMNS order) instead of its blocks."""
    with closing(sqlite3.connect(path)) as db:
        db.execute("DROP TABLE IF EXISTS thread_blocks")
        db.execute("DELETE FROM thread_samples")
        db.executemany(f"INSERT INTO thread_samples ({', '.join(THREAD_SAMPLE_COLUMNS)})"
                       f" VALUES ({', '.join('?' * len(THREAD_SAMPLE_COLUMNS))})", rows)
        db.execute(V1_INDEX)
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('format_version', ?)",
                   (json.dumps(1),))
        db.commit()
        db.execute("VACUUM")
    return path


def rows_of(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """A thread_samples frame as the rows SQLite would give back (NULL for NaN)."""
    columns = []
    for name in THREAD_SAMPLE_COLUMNS:
        col = frame[name].astype(object)
        columns.append(col.where(frame[name].notna(), None).tolist())
    return list(zip(*columns))


def as_version_1(path: Path, out: Path) -> Path:
    """A copy of `path` in the version-1 layout, its thread samples those load() gives."""
    shutil.copy(path, out)
    return with_thread_rows(out, rows_of(inspector.load(path).thread_samples))
