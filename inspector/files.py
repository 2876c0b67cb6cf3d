"""Writing the files inspector makes (pages, exports): beside the target, then renamed, so a
reader never opens half a file; failures as one of the InspectorError family."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from inspector.errors import InspectorError


def write_atomically(path: Path, data: bytes, error: type[InspectorError], what: str) -> None:
    """Writes `data` to `path` atomically; raises `error` ("WHAT: cannot write PATH: why")."""
    with atomic_file(path, error, what) as f:
        f.write(data)


@contextmanager
def atomic_file(path: Path, error: type[InspectorError], what: str,
                mode: int = 0o644) -> Iterator[BinaryIO]:
    """A binary file to write `path` through, for data too large to hold as one bytes
    object: it is made beside `path` and renamed onto it when the block ends, or removed if
    the block raises. An OSError (the block's own too: a full disk) becomes `error`."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise error(f"{what}: cannot write {path}: no such directory {directory}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise error(f"{what}: cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            yield f
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise error(f"{what}: cannot write {path}: {e.strerror or e}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
