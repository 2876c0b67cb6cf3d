"""Recordings kept on the workers' hosts (`record_cluster(..., keep_on_workers=True)`, `inspector
record --dask --keep-on-workers`): where each worker writes its own, the note beside it saying
whose it is and how its clock stood, and how a worker finds them again. Runs on the workers.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from inspector.errors import InspectorError
from inspector.files import REGULAR, what_is_at, write_atomically

# The folder every kept recording goes under on a worker's host, in its temporary directory
# unless the user names another (`--worker-dir`): FOLDER/NAME/worker-WORKER.sqlite.
DEFAULT_FOLDER = "inspector-dask"
# A recording's name becomes a folder on every host: a plain name, no path.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
FOLDER_MODE = 0o700  # the recordings hold command lines (docs/security.md)


class KeptRecordingError(InspectorError):
    """A recording kept on a worker cannot be written, found or read."""


@dataclass(frozen=True)
class KeepOnWorkers:
    """Keep each worker's recording on its host as FOLDER/NAME/worker-WORKER.sqlite instead
    of bringing it back: `folder` is a path on the workers (None: their temporary
    directory's inspector-dask/)."""

    name: str
    folder: str | None = None

    def run_folder(self) -> Path:
        """FOLDER/NAME on this host (a worker's), not made."""
        base = Path(self.folder) if self.folder else Path(tempfile.gettempdir()) / DEFAULT_FOLDER
        return base / self.name


@dataclass(frozen=True)
class KeptNote:
    """Written beside a kept recording when it ends: what merging would have taken from the
    client (the worker's name, its clock against the client's, the client's command)."""

    worker: str
    address: str
    clock_offset_s: float
    clock_uncertainty_s: float | None
    command: tuple[str, ...] | None   # the run the workers served, where it is known
    inspector_version: str


@dataclass(frozen=True)
class KeptFile:
    host: str
    path: str
    worker: str | None     # from its note; None when the note is missing
    size_bytes: int


def check_name(name: str) -> str:
    """A recording's name as given (`-o run`, `run.sqlite`): its plain name, or a one-line
    refusal."""
    plain = name[:-len(".sqlite")] if name.endswith(".sqlite") else name
    if not NAME.fullmatch(plain):
        raise KeptRecordingError(f"{name!r} cannot name a recording kept on the workers: use "
                                 "letters, digits, '.', '_' and '-' (up to 80), no path")
    return plain


def safe(name: str) -> str:
    """A worker's name as a file name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60] or "worker"


def make_run_folder(keep: KeepOnWorkers) -> Path:
    """FOLDER/NAME on this host, made (0700) if need be; refused where it is not a folder of
    ours (a link, another user's: they could read or swap what is written there)."""
    folder = keep.run_folder()
    for part in (folder.parent, folder):
        try:
            part.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
            st = os.lstat(part)
        except OSError as e:
            raise KeptRecordingError(f"cannot make {part}: {e.strerror or e}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise KeptRecordingError(f"cannot keep recordings in {part}: it is "
                                     f"{what_is_at(part)} (left as it is)")
        if st.st_uid != os.getuid():
            raise KeptRecordingError(f"cannot keep recordings in {part}: another user owns it")
        if stat.S_IMODE(st.st_mode) & 0o002 and not st.st_mode & stat.S_ISVTX:
            raise KeptRecordingError(f"cannot keep recordings in {part}: anyone may write in "
                                     "it and it is not sticky (as /tmp is)")
    return folder


def kept_path(folder: Path, worker: str) -> Path:
    return folder / f"worker-{safe(worker)}.sqlite"


def note_path(recording: Path) -> Path:
    return recording.with_suffix(".json")


def write_note(recording: Path, note: KeptNote) -> None:
    data = json.dumps(asdict(note), indent=1).encode()
    write_atomically(note_path(recording), data, KeptRecordingError, "record --dask")


def read_note(recording: Path) -> KeptNote | None:
    """The note beside a kept recording, or None where there is none or it is unreadable
    (the recording is then judged alone: its file's stem names it, its clock is trusted)."""
    try:
        raw = json.loads(note_path(recording).read_text())
        offset = raw.get("clock_uncertainty_s")
        command = raw.get("command")
        return KeptNote(str(raw["worker"]), str(raw.get("address", "")),
                        float(raw.get("clock_offset_s", 0.0)),
                        float(offset) if offset is not None else None,
                        tuple(str(c) for c in command) if command is not None else None,
                        str(raw.get("inspector_version", "")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def worker_version() -> str:
    """This process's inspector version, read when asked (run on each worker)."""
    import inspector

    return str(inspector.__version__)


def list_kept(keep: KeepOnWorkers) -> tuple[str, list[KeptFile]]:
    """This host's name and the recordings kept under FOLDER/NAME on it (run on each worker;
    the workers of one host see the same files)."""
    host = socket.gethostname()
    folder = keep.run_folder()
    if what_is_at(folder) != "a directory":
        return host, []
    found = []
    for path in sorted(folder.glob("worker-*.sqlite")):
        if what_is_at(path) != REGULAR:
            continue
        note = read_note(path)
        found.append(KeptFile(host, str(path), note.worker if note else None,
                              path.stat().st_size))
    return host, found
