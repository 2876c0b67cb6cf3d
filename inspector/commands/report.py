"""`inspector report RECORDING [-o FILE.html] [--open]`: the HTML report of a recording."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import webbrowser
from pathlib import Path

from inspector.errors import ReportError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="write the HTML report of a recording",
        description="Write one self-contained HTML page (works offline) showing the verdict, "
                    "processes and threads, a timeline of thread states, CPU, memory and the "
                    "hottest functions of a recording.")
    p.add_argument("recording", metavar="RECORDING", help="a recording made by inspector record")
    p.add_argument("-o", "--output", metavar="FILE.html",
                   help="where to write it (default: beside the recording, ending in .html)")
    p.add_argument("--open", action="store_true", help="open it in a web browser when written")
    p.set_defaults(func=run)


def default_output(recording_path: Path) -> Path:
    return recording_path.with_suffix(".html")


def build_report(recording_path: str | os.PathLike[str],
                 output_path: str | os.PathLike[str] | None = None) -> Path:
    """Loads, diagnoses and renders a recording; returns where the page was written."""
    from inspector.analyze import diagnose, thread_states
    from inspector.recording import load
    from inspector.report import ReportInputs, render_report

    source = Path(recording_path)
    output = Path(output_path) if output_path is not None else default_output(source)
    if output.resolve() == source.resolve():
        raise ReportError(f"report: {output} is the recording itself; give another -o")
    rec = load(source)
    states = thread_states(rec)
    diagnosis = diagnose(rec, states).to_dict()
    page = render_report(ReportInputs(rec, states, diagnosis))
    _write_atomically(output, page)
    return output


def _write_atomically(path: Path, text: str) -> None:
    """Writes beside the target and renames, so a reader never sees half a page."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise ReportError(f"report: cannot write {path}: no such directory {directory}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise ReportError(f"report: cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise ReportError(f"report: cannot write {path}: {e.strerror or e}") from None


def run(args: argparse.Namespace) -> int:
    output = build_report(args.recording, args.output)
    print(f"inspector: report written to {output}", file=sys.stderr)
    if args.open:
        webbrowser.open(output.resolve().as_uri())
    return 0
