"""Older recordings for tests, built with plain SQL from a file the current writer made, so
what load() must still read stays checked: version 1, before thread_blocks (every thread
sample a row of the thread_samples table, indexed), and version 2, before process, stack
and machine blocks (those rows of process_samples, stacks and machine_samples)."""

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
from inspector.recording.schema import MACHINE_BLOCKS, PROCESS_BLOCKS, STACK_BLOCKS

V1_INDEX = "CREATE INDEX ix_thread_samples ON thread_samples (proc_id, tid, t_s)"
# Version 3's blocks that version 2 kept as rows, and the indexes it made on them.
V2_LAYOUTS = (PROCESS_BLOCKS, STACK_BLOCKS, MACHINE_BLOCKS)
V2_INDEXES = ("CREATE INDEX IF NOT EXISTS ix_process_samples ON process_samples (proc_id, t_s);"
              "CREATE INDEX IF NOT EXISTS ix_stacks ON stacks (proc_id, tid, t_s);")


def with_thread_rows(path: Path, rows: Iterable[Sequence[Any]]) -> Path:
    """`path` (written by RecordingWriter, in the version-2 layout) turned into a version-1
    file in place, holding these thread_samples rows (THREAD_SAMPLE_COLUMNS order) instead
    of its blocks."""
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


def rows_of(frame: pd.DataFrame, columns: Sequence[str] = THREAD_SAMPLE_COLUMNS
            ) -> list[tuple[Any, ...]]:
    """A frame's `columns` as the rows SQLite would give back (NULL for NaN)."""
    values = []
    for name in columns:
        col = frame[name].astype(object)
        values.append(col.where(frame[name].notna(), None).tolist())
    return list(zip(*values))


def as_version_2(path: Path, out: Path) -> Path:
    """A copy of `path` in the version-2 layout: its process samples, stack spans and
    machine samples (those load() gives) rows, their blocks' tables gone."""
    rec = inspector.load(path)
    shutil.copy(path, out)
    with closing(sqlite3.connect(out)) as db:
        for layout in V2_LAYOUTS:
            db.execute(f"DROP TABLE IF EXISTS {layout.blocks}")
            db.execute(f"DELETE FROM {layout.table}")
            db.executemany(f"INSERT INTO {layout.table} ({', '.join(layout.columns)})"
                           f" VALUES ({', '.join('?' * len(layout.columns))})",
                           rows_of(getattr(rec, layout.table), layout.columns))
        db.executescript(V2_INDEXES)
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('format_version', ?)",
                   (json.dumps(2),))
        db.commit()
        db.execute("VACUUM")
    return out


def as_version_1(path: Path, out: Path) -> Path:
    """A copy of `path` in the version-1 layout: every table rows, as load() gives them."""
    as_version_2(path, out)
    return with_thread_rows(out, rows_of(inspector.load(path).thread_samples))
