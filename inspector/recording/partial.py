"""A recording's file while it is written: PATH.partial and SQLite's files beside it, created
exclusively by the writer (never through a link, 0600), which holds a lock on it while it
lives; published onto PATH when complete, a recording there kept as PATH.old. Nothing that
is not a recording (or SQLite's file beside one) is ever replaced or removed.
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
from pathlib import Path

from inspector.errors import OutputError
from inspector.files import (
    PRIVATE_MODE,
    REGULAR,
    create_private,
    unsafe_folder,
    what_is_at,
)

# The recording is written beside its path under this suffix (a killed recorder leaves it
# there, readable) and renamed onto the path when complete; a recording already at the path
# is kept as PATH.old, as perf keeps perf.data.old.
PARTIAL_SUFFIX = ".partial"
OLD_SUFFIX = ".old"
# SQLite's files beside a database: its write-ahead log and the log's index (while the
# writer is in WAL mode, and after a killed one), and the rollback journal.
SIDE_SUFFIXES = ("-wal", "-shm", "-journal")

# The writer holds an open-file-description lock on this one byte of its file for as long
# as it lives; the kernel drops it when the writer's process dies, however it dies. Far
# beyond the bytes SQLite locks (from 2**30, 512 of them), so no reader ever waits on it,
# and a byte-range lock, not flock(): on NFS, flock() locks the whole file and would.
WRITER_LOCK_BYTE = 1 << 40
_FLOCK = "hhqqi4x"  # struct flock on 64-bit Linux: type, whence, start, len, pid


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + PARTIAL_SUFFIX)


def old_path(path: Path) -> Path:
    return path.with_name(path.name + OLD_SUFFIX)


def side_files(path: Path) -> list[Path]:
    return [Path(f"{path}{suffix}") for suffix in SIDE_SUFFIXES]


# -- the writer's files and its lock ------------------------------------------------------------

def create_files(path: Path) -> int:
    """Creates `path` and SQLite's files beside it (none may exist), 0600, and returns a
    descriptor of `path` holding the writer's lock. Raises OSError, having removed what it
    made."""
    made: list[Path] = []
    fd = -1
    try:
        fd = create_private(path)
        made.append(path)
        for side in side_files(path):
            os.close(create_private(side))
            made.append(side)
        _lock(fd, fcntl.F_WRLCK)
    except OSError:
        if fd >= 0:
            os.close(fd)
        for p in made:
            p.unlink(missing_ok=True)
        raise
    return fd


def make_journal_again(path: Path) -> None:
    """The journal SQLite removed on entering WAL mode made again, ours, for the one it
    writes when the writer leaves WAL mode; one still there must be ours (private, empty)."""
    journal = Path(f"{path}-journal")
    try:
        os.close(create_private(journal))
    except FileExistsError:
        st = os.lstat(journal)
        if not (stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and st.st_size == 0
                and stat.S_IMODE(st.st_mode) == PRIVATE_MODE):
            raise


def opened_here(created: int) -> bool:
    """Whether another descriptor of this process (SQLite's) is open on the file of
    descriptor `created`."""
    mine = os.fstat(created)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd == created:
            continue
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino):
            return True
    return False


def _lock(fd: int, kind: int) -> None:
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack(_FLOCK, kind, os.SEEK_SET,
                                                         WRITER_LOCK_BYTE, 1, 0))
    except (OSError, AttributeError):
        pass  # a file system without locks: a reader is told it may still be written


def being_written(path: Path) -> bool | None:
    """Whether a live writer holds `path`'s lock: True, False, or None if it cannot be told
    (a file system without locks)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        query = struct.pack(_FLOCK, fcntl.F_RDLCK, os.SEEK_SET, WRITER_LOCK_BYTE, 1, 0)
        kind = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_OFD_GETLK, query))[0]
    except (OSError, AttributeError):
        return None
    finally:
        os.close(fd)
    return bool(kind != fcntl.F_UNLCK)


def missing(path: Path) -> str:
    """What to say of a recording path that does not exist: its PATH.partial, if there is
    one, and whether a recorder is still writing it or was killed."""
    partial = partial_path(path)
    if what_is_at(partial) != REGULAR:
        return f"{path}: no such file"
    alive = being_written(partial)
    how = ("a recorder is still writing it" if alive else
           "its recorder was killed before it finished" if alive is False else
           "its recorder may still be writing it")
    return f"{path}: no such file, but {partial} is there: {how} (read it by that name)"


# -- before writing: what may be replaced ---------------------------------------------------------

def _recording_or_empty(path: Path) -> bool:
    from inspector.recording.untrusted import is_recording

    try:
        return os.lstat(path).st_size == 0 or is_recording(path)
    except OSError:
        return False


def check(path: Path) -> None:
    """Raises OutputError, changing nothing, unless a recording may be written as
    PATH.partial and published onto `path`: PATH and PATH.old may each be absent or a
    recording (or an empty file), SQLite's files beside them regular files; PATH.partial
    absent or the recording of a recorder that was killed, never one still being written;
    and the folder, if it exists, no stranger's to swap files in."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        unsafe = unsafe_folder(folder) if os.path.lexists(folder) else None
    except OSError as e:
        raise OutputError(f"cannot write recording {path}: {e.strerror or e}") from None
    if unsafe is not None:
        raise OutputError(f"cannot write recording {path}: {folder}: {unsafe}")
    partial = partial_path(path)
    for where in (path, old_path(path), partial):
        found = _not_ours(where)
        if found is not None:
            who, words = found
            raise OutputError(f"cannot write recording {path}: "
                              f"{'' if who == path else f'{who} '}{words}"
                              " (left as it is; choose another -o)")
    alive = being_written(partial) if what_is_at(partial) is not None else False
    if alive:
        raise OutputError(f"cannot write recording {path}: a recorder is still writing"
                          f" {partial} (left as it is; choose another -o)")
    if alive is None:
        raise OutputError(f"cannot write recording {path}: {partial} may still be written"
                          " (its lock cannot be read here; remove it if no recorder is)")


def prepare(path: Path) -> None:
    """Makes way for a recording to be written as PATH.partial and published onto `path`
    (its folder made, a killed recorder's PATH.partial removed with SQLite's files), or
    raises OutputError (see check)."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot write recording {path}: {e.strerror or e}") from None
    check(path)
    partial = partial_path(path)
    _remove([partial, *side_files(partial)])  # a killed recorder's, or SQLite's leftovers


def _not_ours(where: Path) -> tuple[Path, str] | None:
    """What a recording may not replace at `where` or beside it: (the path, in words)."""
    kind = what_is_at(where)
    if kind == REGULAR and not _recording_or_empty(where):
        return where, "exists and is not an inspector recording"
    if kind not in (None, REGULAR):
        return where, f"exists and is {kind}"
    for side in side_files(where):
        kind = what_is_at(side)
        if kind not in (None, REGULAR):
            return side, f"exists and is {kind}"
    return None


def _remove(paths: list[Path]) -> None:
    for p in paths:
        if what_is_at(p) == REGULAR:
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                raise OutputError(f"cannot remove {p}: {e.strerror or e}") from None


# -- after writing ---------------------------------------------------------------------------

def discard(partial: Path) -> None:
    """A recording that is not to be (its writer closed): gone, with SQLite's files."""
    for p in (partial, *side_files(partial)):
        if what_is_at(p) == REGULAR:
            p.unlink(missing_ok=True)


def publish(partial: Path, path: Path) -> tuple[Path, str | None]:
    """Renames the finished recording onto `path`, a recording there kept as PATH.old (with
    its SQLite files); returns where the recording is and, if not at `path`, why. What is
    at PATH or PATH.old and is not a recording (it appeared since `prepare`) stays."""
    old = old_path(path)
    for where in (path, old):
        kind = what_is_at(where)
        if kind is not None and (kind != REGULAR or not _recording_or_empty(where)):
            return partial, (f"{where} was replaced meanwhile by {kind}, not a recording:"
                             f" the recording stays at {partial}")
    sides = [(f"{path}{s}", f"{old}{s}", f"{partial}{s}") for s in SIDE_SUFFIXES]
    if any(what_is_at(Path(p)) not in (None, REGULAR) for side in sides for p in side):
        return partial, (f"a file beside {path} was replaced meanwhile by something not"
                         f" SQLite's: the recording stays at {partial}")
    try:
        if what_is_at(path) is not None:
            for mine, kept, _ in sides:  # never left beside another file, to be replayed
                Path(kept).unlink(missing_ok=True)
                if os.path.lexists(mine):
                    os.replace(mine, kept)
            os.replace(path, old)
        else:  # a -wal whose database is gone would be replayed onto ours
            for mine, _, _ in sides:
                Path(mine).unlink(missing_ok=True)
        for mine, _, written in sides:  # a reader kept it open in WAL mode
            if os.path.lexists(written):
                os.replace(written, mine)
        os.replace(partial, path)
    except OSError as e:
        return partial, (f"cannot move the recording to {path} ({e.strerror or e}):"
                         f" it stays at {partial}")
    return path, None
