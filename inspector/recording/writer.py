"""Writes a recording: the recorder's only way into the file (no other module runs SQL on
the writer's connection). Standard library only, so recording never imports pandas.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from inspector.recording.epochs import BlockTable, stored_time
from inspector.recording.frames import StackTree
from inspector.recording.partial import (
    create_files,
    discard,
    make_journal_again,
    opened_here,
)
from inspector.recording.schema import (
    FORMAT_NAME,
    FORMAT_VERSION,
    LAYOUTS,
    MACHINE_BLOCKS,
    PROCESS_BLOCKS,
    PROCESS_COLUMNS,
    PROCESS_CORES_COLUMNS,
    SCHEMA,
    STACK_BLOCKS,
    THREAD_BLOCKS,
)
from inspector.recording.untrusted import uri_for


@dataclass(frozen=True)
class ProcessRecord:
    proc_id: int
    pid: int
    ppid: int | None
    parent_proc_id: int | None
    name: str
    cmdline: Sequence[str]
    exe: str | None
    create_time: float
    start_s: float
    is_python: bool = False
    python_version: str | None = None
    python_gil: str | None = None
    is_target: bool = False


_MASK_MEMO_SIZE = 10_000  # distinct texts remembered masked (a thread name per thread)

# Samples and stack spans go into the file as one small block per table at each commit
# (every thread's, process's rows it brings: a killed recorder keeps them), and once an
# epoch of EPOCH_S is over, its small blocks are replaced by one block of its rows (format
# 4; more past BLOCK_MAX_ROWS), in one transaction (a reader sees one or the other, never
# both); each table has epochs of its own (epochs.py). 30 s: a thread's epoch is ~20 KB of
# memory, and a reader of the file being written decodes at most ~60 small blocks a table.
EPOCH_S = 30.0
# An epoch also ends at this many rows, whatever their times (1,000 threads: ~9 s), so the
# rows kept in memory stay under ~16 MB a table.
EPOCH_MAX_ROWS = 262_144
# Rows held before they are written as blocks even without a commit (`inspector merge` adds
# a whole recording's rows before its one commit).
PENDING_MAX_ROWS = 65_536
# Return freed pages to the file system at close: the last epoch's replaced small blocks
# (a commit's block, compressed at a low level) can outweigh the compacted ones, and
# SQLite keeps pages it freed (docs/recording-format.md has the sizes).
_INCREMENTAL_VACUUM = True


class TextMask(Protocol):
    """What the writer applies to every text it stores (secrets, --redact)."""

    def text(self, value: str) -> str: ...

    def command(self, argv: Sequence[str]) -> list[str]: ...


class _NoRows:
    """What a failed statement returns: no rows (the failure is in `RecordingWriter.error`)."""

    def fetchone(self) -> None:
        return None

    def fetchall(self) -> list[Any]:
        return []


class _Guarded:
    """The writer's connection once the file exists: an SQLite failure (disk full, file
    removed, I/O error) rolls the open batch back and is noted, once, instead of raising;
    what was committed before stays a readable recording."""

    def __init__(self, db: sqlite3.Connection, on_failure: Any) -> None:
        self.raw = db
        self._on_failure = on_failure

    def _run(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self.raw, method)(*args)
        except sqlite3.Error as e:
            try:
                self.raw.rollback()
            except sqlite3.Error:
                pass
            self._on_failure(e)
            return _NoRows()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._run("execute", sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any:
        return self._run("executemany", sql, rows)

    def executescript(self, sql: str) -> Any:
        return self._run("executescript", sql)

    def commit(self) -> bool:
        return not isinstance(self._run("commit"), _NoRows)

    def close(self) -> None:
        self._run("close")


class RecordingWriter:
    """Appends to a recording; commits whenever `flush()` is called (the recorder does so
    about twice a second) so a killed recorder loses at most the last uncommitted batch.
    Once the file is made, no write raises: an SQLite failure loses the uncommitted batch
    and is kept in `error` (the first) and `failures` (how many)."""

    def __init__(self, path: str | os.PathLike[str], mask: TextMask | None = None) -> None:
        """Creates the file at `path`, which must not exist (OSError if it does)."""
        self.path = Path(path)
        self.mask = mask
        self._lock_fd = create_files(self.path)
        try:
            db = _open(self.path, self._lock_fd)
        except BaseException:
            self._release()
            discard(self.path)
            raise
        self.error: str | None = None
        self.failures = 0
        self._db = _Guarded(db, self._failed)
        self._stack_ids: dict[str, int] = {}  # a stack's text as py-spy gave it -> its id
        self._uncommitted_stacks: list[str] = []  # texts whose ids the next commit makes real
        self._stacks = StackTree()
        self._masked_texts: dict[str, str] = {}
        # this epoch's rows of each block table
        self._blocks = {layout.table: BlockTable(layout, EPOCH_S, EPOCH_MAX_ROWS,
                                                 PENDING_MAX_ROWS) for layout in LAYOUTS}
        self.set_meta({"format": FORMAT_NAME, "format_version": FORMAT_VERSION})
        try:
            db.commit()  # raises: a file that cannot take its first commit is not made
        except BaseException:
            db.close()
            self._release()
            discard(self.path)
            raise

    def _failed(self, e: sqlite3.Error) -> None:
        self.failures += 1
        if self.error is None:
            self.error = " ".join(str(e).split()) or type(e).__name__
        # the batch was rolled back: the stacks' frames and nodes it wrote are not in the file
        for text in self._uncommitted_stacks:
            self._stack_ids.pop(text, None)
        self._uncommitted_stacks.clear()
        self._stacks.forget_uncommitted()
        # the epochs' blocks may have gone with the batch: their committed blocks stay as they
        # are, and each epoch starts afresh
        for table in self._blocks.values():
            table.forget()

    def _text(self, value: str | None) -> str | None:
        if self.mask is None or value is None:
            return value
        # thread names and paths repeat: each distinct text is masked once
        masked = self._masked_texts.get(value)
        if masked is None:
            if len(self._masked_texts) >= _MASK_MEMO_SIZE:
                self._masked_texts.clear()
            masked = self._masked_texts[value] = self.mask.text(value)
        return masked

    def _command(self, argv: Sequence[str]) -> list[str]:
        return self.mask.command(argv) if self.mask is not None else list(argv)

    def _masked_meta(self, key: str, value: Any) -> Any:
        if self.mask is None:
            return value
        if key == "command" and isinstance(value, list):
            return self._command([str(v) for v in value])
        if isinstance(value, str):
            return self._text(value)
        if isinstance(value, list):
            return [self._masked_meta("", v) for v in value]
        if isinstance(value, dict):
            return {k: self._masked_meta(k, v) for k, v in value.items()}
        return value

    # -- writes -------------------------------------------------------------------------
    def set_meta(self, items: Mapping[str, Any]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [(k, json.dumps(self._masked_meta(k, v))) for k, v in items.items()],
        )

    def add_process(self, p: ProcessRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO processes (proc_id, pid, ppid, parent_proc_id, name, cmdline,"
            " exe, create_time, start_s, is_python, python_version, python_gil, is_target)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (p.proc_id, p.pid, p.ppid, p.parent_proc_id, self._text(p.name),
             json.dumps(self._command(p.cmdline)), self._text(p.exe), p.create_time,
             stored_time(p.start_s),
             int(p.is_python), p.python_version, p.python_gil, int(p.is_target)),
        )

    def update_process(self, proc_id: int, **fields: Any) -> None:
        if "cmdline" in fields:
            fields["cmdline"] = json.dumps(self._command(fields["cmdline"]))
        for key in ("name", "exe"):
            if isinstance(fields.get(key), str):
                fields[key] = self._text(fields[key])
        for key in ("start_s", "end_s"):
            if key in fields:
                fields[key] = stored_time(fields[key])
        for key in fields:
            if key not in PROCESS_COLUMNS:
                raise ValueError(f"unknown process column {key!r}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._db.execute(f"UPDATE processes SET {sets} WHERE proc_id = ?",
                         (*fields.values(), proc_id))

    def add_process_cores(self, t_s: float, proc_id: int, cpus: str | None,
                          affinity_cores: int | None, quota_cores: float | None,
                          usable_cores: float | None, cores_limited_by: str | None,
                          quota_cgroup: str | None) -> None:
        """A process's cores as first seen, or as changed (one row each): the processes
        table's four columns keep the latest."""
        self._db.execute(
            f"INSERT INTO process_cores ({', '.join(PROCESS_CORES_COLUMNS)})"
            f" VALUES ({','.join('?' * len(PROCESS_CORES_COLUMNS))})",
            (stored_time(t_s), proc_id, cpus, affinity_cores, quota_cores, usable_cores,
             cores_limited_by, self._text(quota_cgroup)))

    def thread_start_s(self, proc_id: int, tid: int) -> float | None:
        row = self._db.execute("SELECT start_s FROM threads WHERE proc_id = ? AND tid = ?",
                               (proc_id, tid)).fetchone()
        return row[0] if row else None

    def ended_thread_named(self, proc_id: int, tid: int, name: str) -> bool:
        """Whether another, ended thread of the process bore this Python name."""
        name = self._text(name) or ""
        return self._db.execute(
            "SELECT 1 FROM threads WHERE proc_id = ? AND tid != ? AND python_name = ?"
            " AND end_s IS NOT NULL LIMIT 1", (proc_id, tid, name)).fetchone() is not None

    def thread_end_s(self, proc_id: int, tid: int) -> float | None:
        row = self._db.execute("SELECT end_s FROM threads WHERE proc_id = ? AND tid = ?",
                               (proc_id, tid)).fetchone()
        return row[0] if row else None

    def upsert_thread(self, proc_id: int, pid: int, tid: int, os_name: str | None,
                      start_s: float) -> None:
        self._db.execute(
            "INSERT INTO threads (proc_id, pid, tid, name, os_name, start_s) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT (proc_id, tid) DO UPDATE SET os_name = excluded.os_name,"
            " name = COALESCE(threads.python_name, threads.native_name, excluded.os_name)",
            (proc_id, pid, tid, self._text(os_name), self._text(os_name), stored_time(start_s)),
        )

    def name_thread(self, proc_id: int, tid: int, python_name: str) -> bool:
        """Gives a thread its Python name; False if the file has no such thread yet (py-spy
        can name a thread before the /proc sampler's next tick has seen it)."""
        python_name = self._text(python_name) or ""
        cur = self._db.execute(
            "UPDATE threads SET python_name = ?, name = ? WHERE proc_id = ? AND tid = ?",
            (python_name, python_name, proc_id, tid),
        )
        return bool(getattr(cur, "rowcount", 0) > 0)

    def name_native_thread(self, proc_id: int, tid: int, native_name: str) -> None:
        """A native thread named by what started it; a Python name, where known, stays."""
        self._db.execute(
            "UPDATE threads SET native_name = ?, name = COALESCE(python_name, ?)"
            " WHERE proc_id = ? AND tid = ?", (native_name, native_name, proc_id, tid))

    def end_thread(self, proc_id: int, tid: int, end_s: float) -> None:
        self._db.execute("UPDATE threads SET end_s = ? WHERE proc_id = ? AND tid = ?",
                         (stored_time(end_s), proc_id, tid))

    def interpreters(self) -> list[dict[str, Any]]:
        """The distinct Python interpreters among the processes written so far."""
        rows = self._db.execute(
            "SELECT DISTINCT exe, python_version, python_gil FROM processes WHERE is_python = 1"
        ).fetchall()
        return [{"exe": exe, "version": version, "gil": gil} for exe, version, gil in rows]

    def add_process_samples(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rows in PROCESS_SAMPLE_COLUMNS order; written as blocks at the next flush()."""
        self._add(PROCESS_BLOCKS.table, rows)

    def add_thread_samples(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rows in THREAD_SAMPLE_COLUMNS order; written as blocks at the next flush()."""
        self._add(THREAD_BLOCKS.table, rows)

    def _add(self, table: str, rows: Iterable[Sequence[Any]]) -> None:
        if self._blocks[table].add(rows):
            self._blocks[table].write(self._db, lambda: self.failures)

    def _write_blocks(self, closing: bool = False) -> None:
        """Writes every block table's rows added since the last call (epochs.py); stops at
        a failure (the batch is rolled back; the epochs are forgotten)."""
        for table in self._blocks.values():
            if not table.write(self._db, lambda: self.failures, closing):
                return

    def stack_id(self, text: str) -> int | None:
        """The id of a stack (a text of frames, root first, `;` between them), its frames
        and nodes written where new; None if the write failed (then it is written again
        when next met). Stacks that differ only in what the mask hides share one id."""
        sid = self._stack_ids.get(text)
        if sid is None:
            sid = self._stacks.stack_id(self._db, self._text(text) or "", lambda: self.failures)
            if sid is None:
                return None
            self._stack_ids[text] = sid
            self._uncommitted_stacks.append(text)
        return sid

    def add_stacks(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rows in STACK_COLUMNS order, with a stack *text* in place of stack_id."""
        failures = self.failures
        converted = [(*r[:5], self._text(r[5]), self.stack_id(r[6]), *r[7:]) for r in rows]
        if self.failures != failures:
            return  # their stacks were rolled back: spans pointing at none are lost too
        self._add(STACK_BLOCKS.table, converted)

    def add_machine_sample(self, t_s: float, busy_cores: float, recorder_cores: float,
                           host: str | None = None) -> None:
        self._add(MACHINE_BLOCKS.table, [(t_s, busy_cores, recorder_cores, host)])

    def add_gil_samples(self, rows: Iterable[Sequence[Any]]) -> None:
        masked = [(*r[:5], self._text(r[5]), *r[6:]) for r in rows]
        self._db.executemany("INSERT INTO gil_samples VALUES (?,?,?,?,?,?,?,?)", masked)

    def add_problem(self, t_s: float, source: str, kind: str, detail: str = "",
                    pid: int | None = None, tid: int | None = None) -> None:
        self._db.execute(
            "INSERT INTO problems (t_s, source, pid, tid, kind, detail) VALUES (?,?,?,?,?,?)",
            (t_s, source, pid, tid, kind, self._text(detail)))

    def flush(self) -> None:
        self._write_blocks()
        if self._db.commit():
            self._uncommitted_stacks.clear()
            self._stacks.committed()

    def close(self) -> None:
        self._write_blocks(closing=True)
        self.flush()
        if _INCREMENTAL_VACUUM:  # run to its end (a statement's step frees one page)
            self._db.executescript("PRAGMA incremental_vacuum;")
        try:  # on disk as DELETE leaves it; the journal it writes on the way is ours
            self._db.raw.execute("PRAGMA journal_mode=TRUNCATE")
        except sqlite3.Error:
            pass  # a reader holds the file open: it stays in WAL mode, which is still valid
        self._db.close()
        Path(f"{self.path}-journal").unlink(missing_ok=True)  # ours, and empty
        self._release()

    def _release(self) -> None:
        """Drops the lock that tells readers the file is being written (after SQLite closed
        the file: closing any descriptor of it drops this process's SQLite locks on it)."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1


def _open(path: Path, created: int) -> sqlite3.Connection:
    """SQLite's connection to the file just created (descriptor `created`), in WAL mode
    while recording: appends are cheap and a reader can open the file meanwhile; close()
    folds it back into one self-contained file. SQLite opens the file without creating it,
    only ever uses the files beside it that create_files made (the journal it removes on
    entering WAL mode is made again), and must have opened the very file made: a link
    swapped in meanwhile is refused (OSError)."""
    db = sqlite3.connect(uri_for(path, "rw"), uri=True, check_same_thread=False)
    try:
        if not opened_here(created):
            raise FileExistsError(errno.EEXIST, "replaced by another file while opened",
                                  str(path))
        db.execute("PRAGMA journal_mode=TRUNCATE")  # the journal stays, ours, not re-made
        if _INCREMENTAL_VACUUM:  # only takes effect before the first table
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        db.execute("PRAGMA journal_mode=WAL")
        make_journal_again(path)
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
    except BaseException:
        db.close()
        raise
    return db

