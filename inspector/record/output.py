"""The recording's file: written as PATH.partial (0600), published onto PATH when complete
(a recording already there kept as PATH.old), discarded if the command never ran; and the
py-spy temp folders that killed recorders left behind, removed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from inspector.errors import OutputError
from inspector.record.secrets import SecretMask
from inspector.recording import RecordingWriter
from inspector.recording.untrusted import is_recording

# The recording is written beside its path under this suffix (a killed recorder leaves it
# there, readable) and renamed onto the path when complete; a recording already at the path
# is kept as PATH.old, as perf keeps perf.data.old.
PARTIAL_SUFFIX = ".partial"
OLD_SUFFIX = ".old"
PYSPY_TEMP_PREFIX = "inspector-pyspy-"  # StackSampler's folders: PREFIX + PID-XXXX


def _replaceable(path: Path) -> bool:
    """Whether a file at `path` may be moved aside for a new recording: a recording (kept
    as .old) or an empty file (`mktemp`'s)."""
    try:
        return path.stat().st_size == 0 or is_recording(path)
    except OSError:
        return False


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + PARTIAL_SUFFIX)


def open_output(path: Path, mask: SecretMask) -> RecordingWriter:
    """The writer, on PATH.partial, created 0600. Never destroys what is not ours: a path
    holding anything but a recording (or an empty file) is refused and left as it is."""
    for where in (path, partial_path(path)):
        if where.exists() and not where.is_file():
            raise OutputError(f"cannot write recording {where}: exists and is not a regular file")
        if where.exists() and not _replaceable(where):
            raise OutputError(f"cannot write recording {where}: exists and is not an inspector"
                              " recording (left as it is; choose another -o)")
    partial = partial_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The file, its -wal and -shm are created private: a recording holds command lines.
        old_umask = os.umask(0o077)
        try:
            writer = RecordingWriter(partial, mask)
        finally:
            os.umask(old_umask)
        os.chmod(partial, 0o600)
        return writer
    except OSError as e:
        raise OutputError(f"cannot write recording {path}: {e.strerror or e}") from None
    except Exception as e:  # sqlite3.Error: a path SQLite cannot create or lock
        raise OutputError(f"cannot write recording {path}: {e}") from None


def discard_output(writer: RecordingWriter) -> None:
    """A recording that never started (the command cannot run): gone, all of it."""
    writer.close()
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(writer.path) + suffix).unlink(missing_ok=True)


def publish(partial: Path, path: Path) -> tuple[Path, str | None]:
    """Renames the finished recording onto `path`, a recording there kept as PATH.old;
    returns where the recording is and, if not at `path`, why."""
    try:
        if path.exists() or path.is_symlink():
            if not path.is_file() or not _replaceable(path):
                return partial, (f"inspector: {path} was replaced meanwhile by something not a"
                                 f" recording: the recording stays at {partial}")
            old = path.with_name(path.name + OLD_SUFFIX)
            os.replace(path, old)
            for suffix in ("-wal", "-shm"):  # never left beside another file to be replayed
                if os.path.exists(str(path) + suffix):
                    os.replace(str(path) + suffix, str(old) + suffix)
        else:  # a -wal whose database is gone would be replayed onto ours: it is nothing now
            for suffix in ("-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):  # a reader kept it open in WAL mode
            if os.path.exists(str(partial) + suffix):
                os.replace(str(partial) + suffix, str(path) + suffix)
        os.replace(partial, path)
    except OSError as e:
        return partial, (f"inspector: cannot move the recording to {path}"
                         f" ({e.strerror or e}): it stays at {partial}")
    return path, None


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
