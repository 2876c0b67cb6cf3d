"""Writing the files inspector makes (pages, exports): beside the target, then renamed, so a
reader never opens half a file; failures as one of the InspectorError family."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from inspector.errors import InspectorError


def write_atomically(path: Path, data: bytes, error: type[InspectorError], what: str) -> None:
    """Writes `data` to `path` atomically; raises `error` ("WHAT: cannot write PATH: why")."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise error(f"{what}: cannot write {path}: no such directory {directory}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise error(f"{what}: cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise error(f"{what}: cannot write {path}: {e.strerror or e}") from None
