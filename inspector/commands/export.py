"""`inspector export RECORDING --format perfetto|speedscope|pprof|csv|parquet [-o PATH]`: the
recording as a file that Perfetto, speedscope or pprof (and the backends that read pprof)
open, or as a directory of tables for SQL engines and DataFrame libraries."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inspector.export import FORMATS, TABLE_FORMATS, ExportError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="write a recording for Perfetto, speedscope, pprof, or as CSV/Parquet",
        description="Write a recording in a format another viewer opens: perfetto (trace-event "
                    "JSON for ui.perfetto.dev and chrome://tracing: tracks per thread with "
                    "their states and Python stacks, CPU and memory counters), speedscope "
                    "(one profile per thread) or pprof (gzipped profile.proto with pid, tid, "
                    "thread_name and state labels, for go tool pprof, Pyroscope, Grafana, "
                    "Parca); or its tables, one file each, for DuckDB, polars, pandas and "
                    "any SQL engine: csv, or parquet (needs pyarrow: "
                    "pip install 'inspector[parquet]'), with meta.json beside them.")
    p.add_argument("recording", metavar="RECORDING", help="a recording made by inspector record")
    p.add_argument("-f", "--format", required=True, choices=(*FORMATS, *TABLE_FORMATS),
                   help="the file format to write")
    p.add_argument("-o", "--output", metavar="PATH",
                   help="where to write it; - for standard output (default: beside the "
                        "recording, ending in .perfetto.json, .speedscope.json or .pb.gz; "
                        "csv and parquet: a directory, RECORDING-csv or RECORDING-parquet, "
                        "made if absent, else empty or an earlier export of that format)")
    p.set_defaults(func=run)


def default_output(recording_path: Path, fmt: str) -> Path:
    if fmt in TABLE_FORMATS:
        from inspector.export.tables import default_directory
        return default_directory(recording_path, fmt)
    return recording_path.with_name(recording_path.stem + FORMATS[fmt])


def run(args: argparse.Namespace) -> int:
    if args.format in TABLE_FORMATS:
        return _run_tables(args)
    import inspector
    from inspector.export import export

    source = Path(args.recording)
    to_stdout = args.output == "-"
    output = None if to_stdout else (
        Path(args.output) if args.output else default_output(source, args.format))
    if output is not None and output.exists() and source.exists() \
            and output.resolve() == source.resolve():
        raise ExportError(f"export: {output} is the recording itself; give another -o")
    from inspector.progress import Progress
    from inspector.text.terminal import clean

    with Progress(f"export {args.format}") as progress:
        progress.step(f"reading {source}")
        rec = inspector.load(source)
        progress.step(f"writing {args.format}")
        data = export(rec, args.format)
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return 0
    _write_atomically(output, data)
    print(f"inspector: {args.format} export written to {clean(str(output))}"
          f" ({len(data):,} bytes)", file=sys.stderr)
    return 0


def _run_tables(args: argparse.Namespace) -> int:
    """csv and parquet: a directory of files, one per table, and meta.json."""
    import inspector
    from inspector.export.tables import write_tables, writer
    from inspector.progress import Progress

    if args.output == "-":
        raise ExportError(f"export: --format {args.format} writes a directory of files, "
                          "not standard output; give a directory with -o")
    writer(args.format)  # a missing pyarrow is said before the recording is read
    source = Path(args.recording)
    output = Path(args.output) if args.output else default_output(source, args.format)
    with Progress(f"export {args.format}") as progress:
        progress.step(f"reading {source}")
        rec = inspector.load(source)
        progress.step(f"writing {args.format} files")
        written = write_tables(rec, args.format, output)
    size = sum(p.stat().st_size for p in written)
    print(f"inspector: {args.format} export written to {output}/ ({len(written)} files, "
          f"{size:,} bytes)", file=sys.stderr)
    return 0


def _write_atomically(path: Path, data: bytes) -> None:
    """Writes beside the target and renames, so a viewer never opens half a file."""
    from inspector.export import ExportError
    from inspector.files import write_atomically

    write_atomically(path, data, ExportError, "export")
