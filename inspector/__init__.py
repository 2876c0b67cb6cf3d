"""inspector: what is my concurrent Python program really doing?

`inspector.load(path)` opens a recording made by `inspector record`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from inspector.recording import Recording, RecordingError, load  # noqa: E402

__all__ = ["Recording", "RecordingError", "load", "__version__"]
