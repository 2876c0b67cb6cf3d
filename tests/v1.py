"""Older recordings for tests, built with plain SQL from a file the current writer made, so
what load() must still read stays checked: version 1, before thread_blocks (every thread
sample a row of the thread_samples table, indexed), version 2, before process, stack
and machine blocks (those rows of process_samples, stacks and machine_samples),
version 3, whose blocks each held one key's rows, the key in the blocks' table, and
version 4, whose stacks were whole texts in stack_texts rather than frames and nodes."""

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
from inspector.recording.blocks import Columns
from inspector.recording.schema import (
    BLOCK_MAX_ROWS,
    LAYOUTS,
    MACHINE_BLOCKS,
    OLDER_TABLES,
    PROCESS_BLOCKS,
    STACK_BLOCKS,
    BlockLayout,
)

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


def _version_3_blocks(db: sqlite3.Connection, layout: BlockLayout, frame: pd.DataFrame
                      ) -> None:
    """The layout's blocks table made again as version 3 had it (the key columns first),
    holding `frame`'s rows a block per key (version 3's coding)."""
    db.execute(f"DROP TABLE IF EXISTS {layout.blocks}")
    columns = (*layout.keys, "t_first_s", "t_last_s", "rows", "texts", "data")
    db.execute(f"CREATE TABLE {layout.blocks} ({', '.join(columns)})")
    by_key: dict[tuple[Any, ...], Columns] = {}
    at = [layout.columns.index(k) for k in layout.keys]
    for row in rows_of(frame, layout.columns):
        key = tuple(row[i] for i in at)
        by_key.setdefault(key, Columns(layout)).pending.append(row)
    for key, block in by_key.items():
        assert not block.settle()
        for lo in range(0, len(block), BLOCK_MAX_ROWS):
            hi = min(len(block), lo + BLOCK_MAX_ROWS)
            db.execute(f"INSERT INTO {layout.blocks} VALUES ({', '.join('?' * len(columns))})",
                       (*key, block.t_s(lo), block.t_s(hi - 1), hi - lo,
                        *block.encode(lo, hi)))


def as_version_4(path: Path, out: Path) -> Path:
    """A copy of `path` in the version-4 layout: each stack its spans name a row of
    stack_texts (its id kept), the tables of frames and nodes gone."""
    stacks = inspector.load(path).stacks
    named = stacks[stacks["stack"].notna()].drop_duplicates("stack_id")
    shutil.copy(path, out)
    with closing(sqlite3.connect(out)) as db:
        db.execute("DROP TABLE IF EXISTS stack_nodes")
        db.execute("DROP TABLE IF EXISTS stack_frames")
        db.executescript(OLDER_TABLES)
        db.executemany("INSERT INTO stack_texts (stack_id, text) VALUES (?, ?)",
                       zip(named["stack_id"].astype(int).tolist(),
                           named["stack"].astype(str).tolist()))
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('format_version', ?)",
                   (json.dumps(4),))
        db.commit()
        db.execute("VACUUM")
    return out


def as_version_3(path: Path, out: Path) -> Path:
    """A copy of `path` in the version-3 layout: a block per key (stacks as version 4's)."""
    rec = inspector.load(path)
    as_version_4(path, out)
    with closing(sqlite3.connect(out)) as db:
        for layout in LAYOUTS:
            _version_3_blocks(db, layout, getattr(rec, layout.table))
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('format_version', ?)",
                   (json.dumps(3),))
        db.commit()
        db.execute("VACUUM")
    return out


def as_version_2(path: Path, out: Path) -> Path:
    """A copy of `path` in the version-2 layout: its process samples, stack spans and
    machine samples (those load() gives) rows, their blocks' tables gone."""
    rec = inspector.load(path)
    as_version_3(path, out)
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
