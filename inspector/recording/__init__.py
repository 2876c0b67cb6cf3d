"""The recording file: one SQLite database per recording. The only package that knows table
names: `schema` (format name, version, tables), `writer` (`RecordingWriter`, the recorder's
way in; `blocks` encodes its thread samples, `frames` keeps its stacks as frames and nodes)
and, to read, `reader` (`load()`, which returns a `Recording` of pandas DataFrames: `model`),
with `untrusted` (opening a file without trusting it), `meta` (the typed `Meta`; `meta_json`
reads it from the file's JSON and writes it back), `columns` (typed column reads),
`background` (the read beside load() and the file's check), `tables` (each growing table as
a frame), `decode` (the blocks) and `stack_texts` (the stacks' texts); `values` reads a
frame's cell as a Python value (NULL, NaN, pd.NA: None) for every reader of the frames.
docs/recording-format.md documents the format.

The reader's names are imported on first use: the recorder writes through this package and
must not pay for pandas (~0.26 s to import) while it starts the target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inspector.errors import RecordingError
from inspector.recording.meta import (
    Interpreter,
    LeftRunning,
    MergeMeta,
    MergeSource,
    Meta,
    RateChange,
    RecorderCpu,
    Settings,
    StacksMeta,
)
from inspector.recording.schema import (
    DEFAULT_INTERVAL_S,
    DEFAULT_RATE_HZ,
    FORMAT_NAME,
    FORMAT_VERSION,
    PROCESS_COLUMNS,
    PROCESS_SAMPLE_COLUMNS,
    SCHEMA,
    STACK_COLUMNS,
    THREAD_SAMPLE_COLUMNS,
)
from inspector.recording.writer import ProcessRecord, RecordingWriter

if TYPE_CHECKING:
    from inspector.recording.reader import Recording, load

__all__ = ["DEFAULT_INTERVAL_S", "DEFAULT_RATE_HZ", "FORMAT_NAME", "FORMAT_VERSION",
           "PROCESS_COLUMNS", "PROCESS_SAMPLE_COLUMNS", "SCHEMA", "STACK_COLUMNS",
           "THREAD_SAMPLE_COLUMNS", "Interpreter", "LeftRunning", "MergeMeta", "MergeSource",
           "Meta", "ProcessRecord", "RateChange", "RecorderCpu", "Recording", "RecordingError",
           "RecordingWriter", "Settings", "StacksMeta", "load"]


def __getattr__(name: str) -> Any:
    if name in ("Recording", "load"):
        from inspector.recording import reader
        return getattr(reader, name)
    raise AttributeError(f"module 'inspector.recording' has no attribute {name!r}")
