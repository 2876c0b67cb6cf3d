"""The recording's file: written as PATH.partial (recording.partial: created exclusively,
0600, locked while written), published onto PATH when complete (a recording already there
kept as PATH.old), discarded if the command never ran; and the py-spy temp folders that
killed recorders left behind, removed.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

from inspector.errors import OutputError
from inspector.record.secrets import SecretMask
from inspector.recording import RecordingWriter
from inspector.recording.partial import discard, partial_path, prepare
from inspector.recording.partial import publish as publish  # record.session's name for it

PYSPY_TEMP_PREFIX = "inspector-pyspy-"  # StackSampler's folders: PREFIX + PID-XXXX


def open_output(path: Path, mask: SecretMask) -> RecordingWriter:
    """The writer, on PATH.partial. Never destroys what is not ours: a path holding anything
    but a recording (or an empty file) is refused and left as it is (recording.partial)."""
    prepare(path)
    try:
        return RecordingWriter(partial_path(path), mask)
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        raise OutputError(f"cannot write recording {path}: {where}{e.strerror or e}") from None
    except sqlite3.Error as e:  # a path SQLite cannot lock, a disk full at the first commit
        raise OutputError(f"cannot write recording {path}: {e}") from None


def discard_output(writer: RecordingWriter) -> None:
    """A recording that never started (the command cannot run): gone, all of it."""
    writer.close()
    discard(writer.path)


def clean_stale_temp_folders() -> None:
    """Removes the py-spy folders (command lines in them) of recorders that were killed."""
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(PYSPY_TEMP_PREFIX):
            continue
        owner = entry.name[len(PYSPY_TEMP_PREFIX):].split("-", 1)[0]
        try:
            if not owner.isdigit() or entry.stat(follow_symlinks=False).st_uid != os.getuid() \
                    or not entry.is_dir(follow_symlinks=False):
                continue
        except OSError:
            continue
        if int(owner) == os.getpid() or os.path.exists(f"/proc/{owner}"):
            continue  # its recorder is alive (or its pid reused: left for a later run)
        shutil.rmtree(entry.path, ignore_errors=True)
