"""Exports a recording to the viewers people already use: `perfetto` (Chrome trace-event
JSON for ui.perfetto.dev and chrome://tracing), `speedscope` (its JSON file format) and
`pprof` (gzipped profile.proto for go tool pprof, Pyroscope, Grafana, Parca); and its tables
to the tools analysts use: `csv` and `parquet`, a directory of files (tables.py).

`export(rec, fmt)` returns the file's bytes; each format is a module with `to_bytes`.
`tables.write_tables(rec, fmt, directory)` writes the tables. docs/export.md says what each
format holds and where it comes from in the recording.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inspector.errors import InspectorError, UsageError

if TYPE_CHECKING:
    from inspector.recording import Recording

# format -> the file name ending an export gets by default
FORMATS = {"perfetto": ".perfetto.json", "speedscope": ".speedscope.json",
           "pprof": ".pb.gz"}
# format -> the ending of each table's file: these write a directory, REC-FORMAT by default
TABLE_FORMATS = {"csv": ".csv", "parquet": ".parquet"}


class ExportError(InspectorError):
    """An export cannot be written where asked."""


def export(rec: Recording, fmt: str) -> bytes:
    """The recording in format `fmt` (one of FORMATS), as the bytes of a file."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    if fmt == "speedscope":
        from inspector.export import speedscope
        return speedscope.to_bytes(rec)
    from inspector.analyze import thread_states
    states = thread_states(rec)
    if fmt == "perfetto":
        from inspector.export import perfetto
        return perfetto.to_bytes(rec, states)
    from inspector.export import pprof
    return pprof.to_bytes(rec, states)
