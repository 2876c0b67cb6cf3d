"""Opens a file that claims to be a recording without trusting it: read-only (even with a
`-wal` beside it), SQLite's schema untrusted and defensive, and a budget of work per
connection so no statement a hostile file provokes runs unbounded; `open_recording` refuses
what is not one with RecordingError. Standard library only.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from pathlib import Path

from inspector.errors import RecordingError
from inspector.recording.schema import FORMAT_NAME

SQLITE_MAGIC = b"SQLite format 3\x00"

# The tables a reader may read; each must be a plain table (a view or a virtual table is a
# query the file chooses, and could run without end or call functions).
TABLES = ("meta", "processes", "threads", "process_samples", "thread_samples", "stacks",
          "stack_texts", "stack_frames", "stack_nodes", "problems", "gil_samples",
          "machine_samples", "thread_blocks", "process_cores", "process_blocks",
          "stack_blocks", "machine_blocks")

# SQLite calls the progress handler every _STEPS_PER_CALL virtual-machine instructions; a
# connection may make _BASE_CALLS calls plus _CALLS_PER_BYTE per byte of the file (and its
# -wal). Loading a real recording in full made about 1.3e-4 calls a byte on its two
# connections together (1.8 M thread samples, 157 MB; 2026-11-30), some 80 times less: a
# file can only hold rows in proportion to its size, and beyond that something loops.
_STEPS_PER_CALL = 10_000
# The longest text or blob a read may make: the reader's longest is a million integers as
# comma-separated text (21 MB at most); SQLite's own limit is 1 GB.
_MAX_VALUE_BYTES = 256 << 20
_BASE_CALLS = 20_000
_CALLS_PER_BYTE = 0.01


def uri_for(path: Path, mode: str = "ro") -> str:
    # Quoted: a '?', '#' or '%' in the path would otherwise be read as URI syntax (and open,
    # or create, another file). "ro" and "rw" never create the file.
    return "file:" + urllib.parse.quote(str(path.resolve()), safe="/") + "?mode=" + mode


def file_bytes(path: Path) -> int:
    """The size of `path` and of the -wal beside it, if any."""
    total = 0
    for name in (str(path), str(path) + "-wal"):
        try:
            total += os.stat(name).st_size
        except OSError:
            pass
    return total


def connect(path: Path) -> sqlite3.Connection:
    """A read-only, untrusting connection to `path`; raises sqlite3.Error. A read beyond the
    budget fails with 'interrupted'."""
    db = sqlite3.connect(uri_for(path), uri=True, check_same_thread=False)
    try:
        defensive = getattr(sqlite3, "SQLITE_DBCONFIG_DEFENSIVE", None)
        if defensive is not None:  # Python 3.12+; before it, read-only and query_only
            db.setconfig(defensive, True)  # type: ignore[attr-defined]  # guard the same writes
        db.execute("PRAGMA trusted_schema = OFF")
        db.execute("PRAGMA query_only = 1")
        budget = [_BASE_CALLS + int(file_bytes(path) * _CALLS_PER_BYTE)]

        def spend() -> int:
            budget[0] -= 1
            return 1 if budget[0] < 0 else 0

        db.set_progress_handler(spend, _STEPS_PER_CALL)
        length = getattr(sqlite3, "SQLITE_LIMIT_LENGTH", None)
        if length is not None:  # Python 3.11+: no value (a function's result) beyond it
            db.setlimit(length, _MAX_VALUE_BYTES)  # type: ignore[attr-defined]
    except BaseException:
        db.close()
        raise
    return db


# What SQLite may raise on a damaged file: invalid UTF-8 in its schema or error text comes
# out as UnicodeDecodeError, not as an sqlite3.Error.
READ_FAILURES = (sqlite3.Error, UnicodeDecodeError)


def open_recording(path: Path) -> sqlite3.Connection:
    """A read-only, untrusting connection (see recording.untrusted), even with a -wal file
    beside the recording (a recorder killed mid-run leaves one: SQLite reads it, and
    changes neither it nor the file)."""
    if not path.exists():
        from inspector.recording.partial import missing  # it imports this module

        raise RecordingError(missing(path))
    if path.is_dir():
        raise RecordingError(f"{path}: is a directory, not a recording")
    with open(path, "rb") as f:
        head = f.read(16)
    if head != SQLITE_MAGIC:
        raise RecordingError(f"{path}: not an inspector recording (not an SQLite file)")
    try:
        db = connect(path)
    except READ_FAILURES as e:
        raise RecordingError(f"{path}: corrupt or unreadable recording ({said(e)})") from None
    try:
        odd = unexpected_objects(db)
    except READ_FAILURES as e:
        db.close()
        raise RecordingError(f"{path}: corrupt or unreadable recording ({said(e)})") from None
    if odd:
        db.close()
        raise RecordingError(f"{path}: not an inspector recording ({', '.join(odd)}"
                             f" {'is not a table' if len(odd) == 1 else 'are not tables'})")
    return db


def said(e: BaseException) -> str:
    """What SQLite said, in one line; an interrupted statement is the read budget's doing."""
    text = " ".join(str(e).split()) or type(e).__name__
    return "too much work to read: a damaged or hostile file" if text == "interrupted" else text


def unexpected_objects(db: sqlite3.Connection) -> list[str]:
    """The reader's tables present as something other than a plain table (a view, a virtual
    table): each is a query the file would run."""
    rows = db.execute("SELECT name, type, sql FROM sqlite_master WHERE name IN"
                      f" ({','.join('?' * len(TABLES))})", TABLES).fetchall()
    return [str(name) for name, kind, sql in rows
            if kind != "table" or not str(sql or "").lstrip().upper().startswith("CREATE TABLE")]


def is_recording(path: Path) -> bool:
    """Whether `path` is an inspector recording (its meta says so), read without trust."""
    try:
        with open(path, "rb") as f:
            if f.read(16) != SQLITE_MAGIC:
                return False
        db = connect(path)
    except (OSError, sqlite3.Error):
        return False
    try:
        if unexpected_objects(db):
            return False
        row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        return row is not None and row[0] == f'"{FORMAT_NAME}"'
    except READ_FAILURES:
        return False
    finally:
        db.close()
