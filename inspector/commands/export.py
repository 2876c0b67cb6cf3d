"""`inspector export RECORDING --format perfetto|speedscope|pprof [-o FILE]`: the recording
as a file that Perfetto, speedscope or pprof (and the backends that read pprof) open."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inspector.export import FORMATS, ExportError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="write a recording for Perfetto, speedscope or pprof",
        description="Write a recording in a format another viewer opens: perfetto (trace-event "
                    "JSON for ui.perfetto.dev and chrome://tracing: tracks per thread with "
                    "their states and Python stacks, CPU and memory counters), speedscope "
                    "(one profile per thread) or pprof (gzipped profile.proto with pid, tid, "
                    "thread_name and state labels, for go tool pprof, Pyroscope, Grafana, "
                    "Parca).")
    p.add_argument("recording", metavar="RECORDING", help="a recording made by inspector record")
    p.add_argument("-f", "--format", required=True, choices=tuple(FORMATS),
                   help="the file format to write")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="where to write it; - for standard output (default: beside the "
                        "recording, ending in .perfetto.json, .speedscope.json or .pb.gz)")
    p.set_defaults(func=run)


def default_output(recording_path: Path, fmt: str) -> Path:
    return recording_path.with_name(recording_path.stem + FORMATS[fmt])


def run(args: argparse.Namespace) -> int:
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


def _write_atomically(path: Path, data: bytes) -> None:
    """Writes beside the target and renames, so a viewer never opens half a file."""
    from inspector.export import ExportError
    from inspector.files import write_atomically

    write_atomically(path, data, ExportError, "export")
