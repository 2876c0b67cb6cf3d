"""Crafted recordings for tests: a real recording changed the ways a hostile or damaged file
may be (meta values, NULLs in key columns, numbers not finite or huge, texts with escape
sequences and markup, blocks of every kind that lie, the schema changed), and `read_everything`,
which puts one through every reader a command runs: load, the diagnosis, the terminal and
JSON text, the page, each export, compare and its page, merge, and a frame of `top`."""

from __future__ import annotations

import functools
import json
import shutil
import sqlite3
import zlib
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import inspector
from inspector.recording.schema import BLOCK_MAX_ROWS, LAYOUTS, epoch_layout

# Each table of blocks (thread, process and machine samples, stack spans) by name.
BLOCK_TABLES = {layout.blocks: layout for layout in LAYOUTS}

# Texts a target or a hand-edited file can put anywhere text goes.
HOSTILE_TEXTS = (
    "\x1b[2J\x1b[31mred\x1b[0m",                       # terminal escape sequences
    "\x9b31mC1\x07\x08\r",                             # an 8-bit CSI, a bell, a backspace
    "line\nbreak\ttab",
    "</script><script>alert(1)</script>",
    "<b>bold</b><a href='javascript:alert(1)'>x</a>",
    "javascript:alert(1)",
    "%{y}%{x:.1f}",                                   # plotly hovertemplate placeholders
    "\u202eevil\u200b",                                 # right-to-left override, zero width
    "",
    "a (" * 2000,                                      # a frame the old regex took O(n^2) on
    "f (x.py:" + "9" * 5000 + ")",                     # a line number int() refuses
    "f (x.py:1);" * 3000,                              # a deep stack
    "x" * 70_000,
)
# Numbers that are NULL, not finite, huge, negative or of the wrong kind where they are kept.
ODD_NUMBERS = (None, float("inf"), float("-inf"), 1e300, -1e300, 2**62, -2**63, 2**63 - 1,
               -1, 0, 0.5, 1e-300, "text", b"\x00blob")
# JSON a meta value may be: not finite (Python's json reads NaN and Infinity), huge, nested
# deeper than json can go, of the wrong kind.
ODD_JSON = ("NaN", "Infinity", "-Infinity", "1e308", "-1e308", "1e300", str(10**30), "-5", "0",
            "1e-300", "null", "true", '"text"', "[]", "{}", "[1, \"a\"]",
            "[" * 100_000 + "]" * 100_000, '{"a": ' * 5000 + "1" + "}" * 5000,
            "[" * 500 + "]" * 500)
META_KEYS = ("format_version", "command", "cpu_count", "duration_s", "start_time_unix",
             "complete", "exit_code", "settings", "interval_s", "stacks", "merge", "mode",
             "cwd", "hostname", "platform", "machine", "recorder_python", "recorder_cpu",
             "interpreters", "left_running", "ticks", "clk_tck", "target_pid",
             "target_start_s", "target_exit_s", "backend", "unknown_key")
NESTED_META_KEYS = (("settings", "interval_s"), ("settings", "rate_hz"),
                    ("stacks", "rate_hz_used"), ("stacks", "rates_hz_used"),
                    ("stacks", "run_lengths_s"), ("stacks", "chunk_s"),
                    ("recorder_cpu", "mean_cores"))
# The columns each table's readers join, group and index by.
KEY_COLUMNS = {
    "processes": ("proc_id", "pid", "ppid", "parent_proc_id", "start_s", "end_s"),
    "threads": ("proc_id", "pid", "tid", "start_s", "end_s"),
    "process_samples": ("t_s", "proc_id", "pid", "cpu_user_s", "rss_bytes", "num_threads"),
    "thread_samples": ("t_s", "proc_id", "pid", "tid", "cpu_user_s", "on_cpu_s", "syscall",
                       "futex_kind"),
    "stacks": ("t_s", "duration_s", "proc_id", "pid", "tid", "stack_id", "samples",
               "owns_gil"),
    "stack_texts": ("stack_id",),
    "stack_nodes": ("node_id", "parent_id", "frame_id", "stack_id"),
    "stack_frames": ("frame_id",),
    "problems": ("t_s", "pid", "tid"),
    "gil_samples": ("t_s", "duration_s", "pid", "tid", "samples", "samples_total"),
    "machine_samples": ("t_s", "busy_cores", "recorder_cores"),
    **{name: (*layout.keys, "t_first_s", "rows") for name, layout in BLOCK_TABLES.items()},
}
TEXT_COLUMNS = {
    "processes": ("name", "cmdline", "exe", "python_version", "python_gil",
                  "cores_limited_by", "host"),
    "threads": ("name", "os_name", "python_name", "native_name"),
    "process_samples": ("state",),
    "thread_samples": ("state", "syscall_name"),
    "stacks": ("thread_name",),
    "stack_texts": ("text",),
    "stack_frames": ("text",),
    "problems": ("source", "kind", "detail"),
    "machine_samples": ("host",),
}


@dataclass(frozen=True)
class MetaValue:
    """meta key (or key inside a key's object) set to this JSON text."""
    key: Union[str, tuple[str, str]]
    json_text: str


@dataclass(frozen=True)
class ColumnValue:
    """A column of the first `rows` rows of a table (None: all) set to this value."""
    table: str
    column: str
    value: Any
    rows: int | None = 3


@dataclass(frozen=True)
class BlockRows:
    """The first block of `table` says it holds this many rows (its data unchanged)."""
    rows: Any
    table: str = "thread_blocks"


@dataclass(frozen=True)
class ManyBlocks:
    """`count` valid blocks of BLOCK_MAX_ROWS rows that never change (~17 rows a byte)."""
    count: int
    table: str = "thread_blocks"


@dataclass(frozen=True)
class BlockTexts:
    """The first block's dictionaries: these words for its text columns' codes."""
    words: tuple[str, ...]
    table: str = "thread_blocks"


@dataclass(frozen=True)
class ManySpans:
    """`count` more stack spans on one thread, alternating the deepest stack and another
    (each span reopens every frame in a trace)."""
    count: int


@dataclass(frozen=True)
class SchemaChange:
    """SQL run on the file, `{t}` a table's name; what the table cannot take is skipped."""
    sql: str
    table: str


# What a hand or a hostile tool may do to the schema itself.
SCHEMA_CHANGES = (
    "ALTER TABLE {t} RENAME TO {t}_kept; CREATE VIEW {t} AS SELECT * FROM {t}_kept;",
    'ALTER TABLE {t} ADD COLUMN "x"" FROM meta; --";',
    "ALTER TABLE {t} ADD COLUMN g INTEGER AS (length(zeroblob(1000000)));",
    "DROP TABLE {t}; CREATE TABLE {t} (t_s REAL);",
    "DROP TABLE {t};",
    "UPDATE {t} SET rowid = -rowid;",
)
TABLES = ("meta", "processes", "threads", "process_samples", "thread_samples", "stacks",
          "stack_texts", "stack_frames", "stack_nodes", "problems", "gil_samples",
          "machine_samples", *BLOCK_TABLES)

Edit = Union[MetaValue, ColumnValue, BlockRows, ManyBlocks, BlockTexts, ManySpans,
             SchemaChange]


def crafted(base: Path, path: Path, edits: Sequence[Edit]) -> Path:
    """A copy of `base` at `path` with `edits` made; the tables an edit puts a value into
    that their schema refuses (NULL in a NOT NULL column) are made again without it."""
    shutil.copy(base, path)
    with closing(sqlite3.connect(path)) as db:
        for edit in edits:
            _apply(db, edit)
            db.commit()
    return path


def _apply(db: sqlite3.Connection, edit: Edit) -> None:
    if isinstance(edit, MetaValue):
        if isinstance(edit.key, tuple):
            outer, inner = edit.key
            row = db.execute("SELECT value FROM meta WHERE key = ?", (outer,)).fetchone()
            try:
                value = json.loads(row[0]) if row else {}
            except (ValueError, RecursionError):
                value = {}
            value = value if isinstance(value, dict) else {}
            text = json.dumps({**value, inner: None})
            text = text.replace(f'"{inner}": null', f'"{inner}": {edit.json_text}')
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (outer, text))
        else:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                       (edit.key, edit.json_text))
    elif isinstance(edit, ColumnValue):
        if edit.table == "stack_texts" and edit.column == "text" and _stack_tree(db):
            _set_stack_texts(db, edit.value, edit.rows)
            return
        if not _has(db, edit.table):
            return
        loosen(db, edit.table)
        where = (f"WHERE rowid IN (SELECT rowid FROM {edit.table} ORDER BY rowid"
                 f" LIMIT {edit.rows})" if edit.rows is not None else "")
        db.execute(f"UPDATE {edit.table} SET {edit.column} = ? {where}", (edit.value,))
    elif isinstance(edit, BlockRows):
        if _has(db, edit.table):
            loosen(db, edit.table)
            db.execute(f"UPDATE {edit.table} SET rows = ? WHERE rowid ="
                       f" (SELECT min(rowid) FROM {edit.table})", (edit.rows,))
    elif isinstance(edit, ManyBlocks):
        if _has(db, edit.table):
            layout, n = epoch_layout(BLOCK_TABLES[edit.table]), BLOCK_MAX_ROWS
            # no byte plane of its numbers (all zero), then its text codes
            data = zlib.compress(bytes(len(layout.numbers) + len(layout.texts) * n), 9)
            texts = json.dumps({name: [] for name in layout.texts})
            columns = ("t_first_s", "t_last_s", "rows", "texts", "data")
            db.executemany(f"INSERT INTO {edit.table} ({', '.join(columns)}) VALUES"
                           " (0, 0, ?, ?, ?)", [(n, texts, data)] * edit.count)
    elif isinstance(edit, BlockTexts):
        if _has(db, edit.table):
            row = db.execute(f"SELECT texts FROM {edit.table} ORDER BY rowid LIMIT 1"
                             ).fetchone()
            if row:
                texts = json.loads(row[0])
                for name in texts:
                    texts[name] = [edit.words[i % len(edit.words)] + str(i)
                                   for i in range(len(texts[name]))]
                db.execute(f"UPDATE {edit.table} SET texts = ? WHERE rowid ="
                           f" (SELECT min(rowid) FROM {edit.table})", (json.dumps(texts),))
    elif isinstance(edit, SchemaChange):
        try:
            db.executescript(edit.sql.format(t=edit.table))
        except sqlite3.Error:
            pass  # not for this table (or this file): the other edits still apply
    elif isinstance(edit, ManySpans):
        # a thread of the file (its spans are blocks since format 3), from t_s = 0
        row = db.execute("SELECT 0.0, proc_id, pid, tid, name FROM threads"
                         " ORDER BY proc_id, tid LIMIT 1").fetchone()
        ids = [r[0] for r in db.execute(_LONGEST_STACKS if _stack_tree(db) else
                                        "SELECT stack_id FROM stack_texts"
                                        " ORDER BY length(text) DESC LIMIT 2")]
        if row and ids:
            t0, proc_id, pid, tid, name = row
            db.executemany("INSERT INTO stacks (t_s, duration_s, proc_id, pid, tid, thread_name,"
                           " stack_id, samples, owns_gil) VALUES (?, 0.001, ?, ?, ?, ?, ?, 1,"
                           " NULL)", [(t0 + i * 1e-3, proc_id, pid, tid, name, ids[i % len(ids)])
                                      for i in range(edit.count)])


# A version-5 file's two stacks of the longest texts, each node's frames joined from its root.
_LONGEST_STACKS = """
WITH RECURSIVE walk(stack_id, node, chars) AS (
    SELECT n.stack_id, n.parent_id, length(f.text) FROM stack_nodes n JOIN stack_frames f
        USING (frame_id) WHERE n.stack_id IS NOT NULL
    UNION ALL
    SELECT w.stack_id, n.parent_id, w.chars + 1 + length(f.text) FROM walk w
        JOIN stack_nodes n ON n.node_id = w.node JOIN stack_frames f USING (frame_id))
SELECT stack_id FROM walk WHERE node IS NULL ORDER BY chars DESC LIMIT 2"""


def _stack_tree(db: sqlite3.Connection) -> bool:
    """Whether the file keeps its stacks as frames and nodes (version 5) and no texts."""
    return (_has(db, "stack_nodes") and _has(db, "stack_frames")
            and not (_has(db, "stack_texts")
                     and db.execute("SELECT 1 FROM stack_texts LIMIT 1").fetchone()))


def _set_stack_texts(db: sqlite3.Connection, text: Any, rows: int | None) -> None:
    """A version-5 file's last `rows` stacks (None: all) given `text`: each one's node made
    a root whose one frame is `text` (a frame holding ';' reads as that many frames)."""
    frame = 1 + (db.execute("SELECT max(frame_id) FROM stack_frames").fetchone()[0] or 0)
    loosen(db, "stack_frames")
    loosen(db, "stack_nodes")
    db.execute("INSERT INTO stack_frames (frame_id, text) VALUES (?, ?)", (frame, text))
    limit = f"LIMIT {rows}" if rows is not None else ""
    db.execute("UPDATE stack_nodes SET parent_id = NULL, frame_id = ? WHERE rowid IN"
               f" (SELECT rowid FROM stack_nodes WHERE stack_id IS NOT NULL"
               f" ORDER BY stack_id DESC {limit})", (frame,))


def _has(db: sqlite3.Connection, table: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                      (table,)).fetchone() is not None


def loosen(db: sqlite3.Connection, table: str) -> None:
    """`table` made again with the same columns and rows, without its constraints."""
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    if "NOT NULL" not in sql and "PRIMARY KEY" not in sql and "UNIQUE" not in sql:
        return
    columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
    db.executescript(f"ALTER TABLE {table} RENAME TO {table}_kept;"
                     f"CREATE TABLE {table} ({', '.join(columns)});"
                     f"INSERT INTO {table} SELECT * FROM {table}_kept;"
                     f"DROP TABLE {table}_kept;")


# -- every reader ----------------------------------------------------------------------------

def read_everything(path: Path, base: Path, tmp: Path) -> list[str]:
    """`path` through every reader a command runs, as the commands call them; returns what
    the terminal would be shown. Raises what they raise."""
    from inspector.analyze import diagnose, thread_states
    from inspector.analyze.cluster import diagnose_cluster
    from inspector.analyze.comparison import compare, facts, group_runs
    from inspector.export import FORMATS, export
    from inspector.live.frame import build_frame
    from inspector.recording.merge import Source, is_merged, merge
    from inspector.report import ReportInputs, render_report
    from inspector.report.build import write_page
    from inspector.text.cluster import ClusterText
    from inspector.text.comparison import ComparisonTable, noise_sentences
    from inspector.text.explain import ExplainText
    from inspector.text.json import CLUSTER_JSON, DIAGNOSIS_JSON
    from inspector.text.summary import SummaryText
    from inspector.text.top import render, verdict_so_far

    rec = inspector.load(path)
    states = thread_states(rec)
    diag = diagnose(rec, states)
    shown = [SummaryText(str(path)).render(diag), ExplainText("header").render(diag)]
    DIAGNOSIS_JSON.render(diag)
    cluster = None
    if is_merged(rec):
        cluster = diagnose_cluster(rec)
        shown.append(ClusterText(str(path)).render(cluster))
        CLUSTER_JSON.render(cluster)
    render_report(ReportInputs(rec, states, diag, cluster))
    for fmt in FORMATS:
        export(rec, fmt)
    other, other_facts = _loaded(base)
    rows = compare(group_runs([other_facts, facts(rec)]))
    shown.append(ComparisonTable().render(rows))
    shown += noise_sentences(rows)
    write_page(tmp / "compare.html", "compared", rows, [other, rec], tuple(noise_sentences(rows)))
    merged = merge([Source(base), Source(path)], tmp / "merged.sqlite")
    shown.append(", ".join(merged.hosts))
    inspector.load(merged.path)
    frame = build_frame(rec, 1.0, ended=True)
    shown += render(frame, verdict_so_far(diag), width=10_000)
    return shown


@functools.lru_cache(maxsize=2)
def _loaded(path: Path) -> tuple[Any, Any]:
    """The base recording and its row of a comparison, made once."""
    from inspector.analyze.comparison import facts

    rec = inspector.load(path)
    return rec, facts(rec)


def unprintable(texts: Sequence[str]) -> list[str]:
    """The characters of `texts` a terminal would act on (newline aside)."""
    return sorted({repr(ch) for text in texts for ch in text
                   if ch != "\n" and not ch.isprintable()})
