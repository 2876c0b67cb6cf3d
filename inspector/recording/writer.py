"""Writes a recording: the recorder's only way into the file (no other module runs SQL on
the writer's connection). Standard library only, so recording never imports pandas.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspector.recording.schema import (
    FORMAT_NAME,
    FORMAT_VERSION,
    INDEXES,
    PROCESS_COLUMNS,
    PROCESS_SAMPLE_COLUMNS,
    SCHEMA,
    STACK_COLUMNS,
    THREAD_SAMPLE_COLUMNS,
)


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


class RecordingWriter:
    """Appends to a recording; commits whenever `flush()` is called (the recorder does so
    about twice a second) so a killed recorder loses at most the last uncommitted batch."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.exists():
            self.path.unlink()
        for suffix in ("-wal", "-shm", "-journal"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        # WAL while recording: appends are cheap and a reader can open the file meanwhile.
        # close() folds it back into one self-contained file.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._stack_ids: dict[str, int] = {}
        self.set_meta({"format": FORMAT_NAME, "format_version": FORMAT_VERSION})
        self._db.commit()

    # -- writes -------------------------------------------------------------------------
    def set_meta(self, items: Mapping[str, Any]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [(k, json.dumps(v)) for k, v in items.items()],
        )

    def add_process(self, p: ProcessRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO processes (proc_id, pid, ppid, parent_proc_id, name, cmdline,"
            " exe, create_time, start_s, is_python, python_version, python_gil, is_target)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (p.proc_id, p.pid, p.ppid, p.parent_proc_id, p.name, json.dumps(list(p.cmdline)),
             p.exe, p.create_time, p.start_s, int(p.is_python), p.python_version,
             p.python_gil, int(p.is_target)),
        )

    def update_process(self, proc_id: int, **fields: Any) -> None:
        if "cmdline" in fields:
            fields["cmdline"] = json.dumps(list(fields["cmdline"]))
        for key in fields:
            if key not in PROCESS_COLUMNS:
                raise ValueError(f"unknown process column {key!r}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._db.execute(f"UPDATE processes SET {sets} WHERE proc_id = ?",
                         (*fields.values(), proc_id))

    def thread_start_s(self, proc_id: int, tid: int) -> float | None:
        row = self._db.execute("SELECT start_s FROM threads WHERE proc_id = ? AND tid = ?",
                               (proc_id, tid)).fetchone()
        return row[0] if row else None

    def ended_thread_named(self, proc_id: int, tid: int, name: str) -> bool:
        """Whether another, ended thread of the process bore this Python name."""
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
            " name = COALESCE(threads.python_name, excluded.os_name)",
            (proc_id, pid, tid, os_name, os_name, start_s),
        )

    def name_thread(self, proc_id: int, tid: int, python_name: str) -> None:
        self._db.execute(
            "UPDATE threads SET python_name = ?, name = ? WHERE proc_id = ? AND tid = ?",
            (python_name, python_name, proc_id, tid),
        )

    def end_thread(self, proc_id: int, tid: int, end_s: float) -> None:
        self._db.execute("UPDATE threads SET end_s = ? WHERE proc_id = ? AND tid = ?",
                         (end_s, proc_id, tid))

    def interpreters(self) -> list[dict[str, Any]]:
        """The distinct Python interpreters among the processes written so far."""
        rows = self._db.execute(
            "SELECT DISTINCT exe, python_version, python_gil FROM processes WHERE is_python = 1"
        ).fetchall()
        return [{"exe": exe, "version": version, "gil": gil} for exe, version, gil in rows]

    def add_process_samples(self, rows: Iterable[Sequence[Any]]) -> None:
        self._db.executemany(
            f"INSERT INTO process_samples VALUES ({','.join('?' * len(PROCESS_SAMPLE_COLUMNS))})",
            rows)

    def add_thread_samples(self, rows: Iterable[Sequence[Any]]) -> None:
        self._db.executemany(
            f"INSERT INTO thread_samples VALUES ({','.join('?' * len(THREAD_SAMPLE_COLUMNS))})",
            rows)

    def stack_id(self, text: str) -> int:
        sid = self._stack_ids.get(text)
        if sid is None:
            sid = len(self._stack_ids) + 1
            self._db.execute("INSERT INTO stack_texts (stack_id, text) VALUES (?, ?)", (sid, text))
            self._stack_ids[text] = sid
        return sid

    def add_stacks(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rows in STACK_COLUMNS order, with a stack *text* in place of stack_id."""
        converted = [(*r[:6], self.stack_id(r[6]), *r[7:]) for r in rows]
        self._db.executemany(
            f"INSERT INTO stacks VALUES ({','.join('?' * len(STACK_COLUMNS))})", converted)

    def add_machine_sample(self, t_s: float, busy_cores: float, recorder_cores: float,
                           host: str | None = None) -> None:
        self._db.execute("INSERT INTO machine_samples (t_s, busy_cores, recorder_cores, host)"
                         " VALUES (?,?,?,?)", (t_s, busy_cores, recorder_cores, host))

    def add_gil_samples(self, rows: Iterable[Sequence[Any]]) -> None:
        self._db.executemany("INSERT INTO gil_samples VALUES (?,?,?,?,?,?,?,?)", rows)

    def add_problem(self, t_s: float, source: str, kind: str, detail: str = "",
                    pid: int | None = None, tid: int | None = None) -> None:
        self._db.execute(
            "INSERT INTO problems (t_s, source, pid, tid, kind, detail) VALUES (?,?,?,?,?,?)",
            (t_s, source, pid, tid, kind, detail))

    def flush(self) -> None:
        self._db.commit()

    def close(self) -> None:
        self._db.commit()
        self._db.executescript(INDEXES)
        try:
            self._db.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.OperationalError:
            pass  # a reader holds the file open: it stays in WAL mode, which is still valid
        self._db.close()
