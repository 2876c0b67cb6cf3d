"""inspector: what is my concurrent Python program really doing?

`inspector.load(path)` opens a recording made by `inspector record`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inspector.errors import RecordingError
    from inspector.recording.reader import Recording, load

__all__ = ["Recording", "RecordingError", "__version__", "load"]


def __getattr__(name: str) -> Any:
    # Imported on first use: pandas takes ~0.26 s to import, and the stdlib-only demo jobs
    # (python -m inspector.jobs, recorded by the demo) must not pay it inside a recording.
    if name == "RecordingError":
        from inspector.errors import RecordingError
        return RecordingError
    if name in ("Recording", "load"):
        from inspector.recording import reader
        return getattr(reader, name)
    raise AttributeError(f"module 'inspector' has no attribute {name!r}")
