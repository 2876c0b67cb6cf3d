"""Making the files inspector writes where a hostile path cannot redirect them: created
exclusively and never through a link, 0600 whatever the umask, in a folder no stranger may
swap entries of; pages and exports are written beside their target and renamed onto it, which
replaces a regular file only. Failures as one of the InspectorError family.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from inspector.errors import InspectorError

# Every file inspector makes: recordings hold command lines, and pages and exports what
# the recordings hold (docs/security.md, "Output paths").
PRIVATE_MODE = 0o600

_KINDS = ((stat.S_ISREG, "a regular file"), (stat.S_ISLNK, "a symbolic link"),
          (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"))
REGULAR = "a regular file"


def what_is_at(path: Path) -> str | None:
    """What is at `path` itself, a link not followed ("a symbolic link", "a directory", ...),
    or None if nothing is (not even a dangling link)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def unsafe_folder(folder: Path) -> str | None:
    """Why someone else could swap a file in `folder` for a link between two of our calls,
    or None: a folder anyone may write that is not sticky (in /tmp, sticky, only a file's
    owner may rename or remove it). Raises OSError if the folder cannot be looked at."""
    st = os.stat(folder)
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        return "anyone may write in it and it is not sticky (as /tmp is)"
    return None


def create_private(path: Path) -> int:
    """Creates `path`, which must not exist (not even as a dangling link), and returns a
    write descriptor to it; 0600 whatever the umask. Raises OSError (FileExistsError)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)  # the umask took bits away
    except OSError:
        os.close(fd)
        os.unlink(path)
        raise
    return fd


def output_folder(directory: Path, error: type[InspectorError], what: str) -> None:
    """Makes the folder a command writes its files into (parents too), or says in one line
    why it cannot: `what` names the command ("demo", "try")."""
    if directory.exists() and not directory.is_dir():
        raise error(f"{what}: {directory} exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise error(f"{what}: cannot create {directory}: {e.strerror or e}") from None


def write_atomically(path: Path, data: bytes, error: type[InspectorError], what: str) -> None:
    """Writes `data` to `path` (0600) atomically; raises `error` ("WHAT: cannot write PATH:
    why"). What is at `path` is replaced only if it is a regular file (see atomic_file)."""
    with atomic_file(path, error, what) as f:
        f.write(data)


@contextmanager
def atomic_file(path: Path, error: type[InspectorError], what: str) -> Iterator[BinaryIO]:
    """A binary file (0600) to write `path` through, for data too large to hold as one bytes
    object: made beside `path` (exclusively) and renamed onto it when the block ends, or
    removed if the block raises. What is at `path` is replaced only if it is a regular file:
    a link, a folder, a FIFO or a device stays as it is; a rename replaces the name, never
    writes through it, should a link appear there meanwhile. An OSError (the block's own
    too: a full disk) becomes `error`."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise error(f"{what}: cannot write {path}: no such directory {directory}")
    try:
        unsafe = unsafe_folder(directory)
        there = what_is_at(path)
    except OSError as e:
        raise error(f"{what}: cannot write {path}: {e.strerror or e}") from None
    if unsafe is not None:
        raise error(f"{what}: cannot write {path}: {directory}: {unsafe}")
    if there not in (None, REGULAR):
        raise error(f"{what}: cannot write {path}: exists and is {there} (left as it is)")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise error(f"{what}: cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), PRIVATE_MODE)
            yield f
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise error(f"{what}: cannot write {path}: {e.strerror or e}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
