"""The report pipelines the commands call: a recording file in, a page file out (load,
diagnose, render, write), and the comparison page of several recordings. The only part of
report/ that touches files; plotly and pandas load when a page is built, not on import.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from inspector.errors import CompareError, ReportError

if TYPE_CHECKING:
    from inspector.analyze.cluster import ClusterDiagnosis
    from inspector.analyze.comparison import ComparedRun
    from inspector.recording import Recording


def default_output(recording_path: Path) -> Path:
    return recording_path.with_suffix(".html")


def build_report(recording_path: str | os.PathLike[str],
                 output_path: str | os.PathLike[str] | None = None,
                 io_concurrency: int | None = None, memory_budget_mb: float | None = None,
                 stream: bool = False) -> Path:
    """Loads (or, too large for the memory budget, streams: inspector/bounded.py),
    diagnoses and renders a recording; returns where the page was written."""
    import sys

    from inspector.analyze import diagnose
    from inspector.bounded import analysis_input
    from inspector.recording.merge import is_merged
    from inspector.report.page import ReportInputs, render_report

    source = Path(recording_path)
    output = Path(output_path) if output_path is not None else default_output(source)
    if output.resolve() == source.resolve():
        raise ReportError(f"report: {output} is the recording itself; give another -o")
    given = analysis_input(source, memory_budget_mb, stream)
    rec, states = given.recording, given.states
    if given.plan.streamed:
        print(f"inspector: {given.plan.sentence()}", file=sys.stderr)
    cluster = None
    if is_merged(rec):  # many hosts or workers: the answer is per worker, and the cluster's
        from inspector.analyze.cluster import diagnose_cluster
        cluster = diagnose_cluster(rec)
    note = (f"Read a window of time at a time ({given.plan.sentence()}): the timeline and"
            " the charts are in those bins; the seconds per state, thread and stack are exact."
            if given.plan.streamed else None)
    page = render_report(ReportInputs(rec, states, diagnose(rec, states, io_concurrency,
                                                            loops=given.loops), cluster, note))
    write_atomically(output, page)
    return output


def build_cluster_report(cd: ClusterDiagnosis, output_path: str | os.PathLike[str],
                         source: str, cost: str | None = None) -> Path:
    """The page of a cluster judged on its workers (`report --dask`); returns its path."""
    from inspector.report.page import render_cluster_page

    output = Path(output_path)
    write_atomically(output, render_cluster_page(cd, source, cost))
    return output


def write_atomically(path: Path, text: str) -> None:
    """Writes beside the target and renames, so a reader never sees half a page."""
    from inspector.files import write_atomically as write

    write(path, text.encode("utf-8"), ReportError, "report")


def write_page(output: Path, title: str, rows: Sequence[ComparedRun],
               recordings: Sequence[Recording], lead: tuple[str, ...] = ()) -> None:
    """Writes the comparison page, one row per group of runs: each row's median run stands
    for it, linked by its recording and (where one exists beside it) its report, by paths
    relative to the page."""
    from inspector.report.comparison_page import Links, PageInput, build_page

    by_path = {rec.path: rec for rec in recordings}
    shown = [by_path[r.facts.path] for r in rows]
    links = []
    for rec in shown:
        report = rec.path.with_suffix(".html")
        links.append(Links(report=_relative(report, output) if report.exists() else None,
                           recording=_relative(rec.path, output)))
    cpu_count = max((rec.cpu_count for rec in recordings), default=os.cpu_count() or 1)
    html = build_page(PageInput(title=title, rows=rows, recordings=shown, lead=lead,
                                links=links, cpu_count=cpu_count))
    from inspector.files import write_atomically as write

    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CompareError(f"cannot write {output}: {e.strerror or e}") from None
    write(output, html.encode("utf-8"), CompareError, "compare")


def _relative(target: Path, page: Path) -> str:
    """A link from `page` to `target`, as a URL: each character of the path that a URL
    reads as syntax percent-encoded, so a file named 'javascript:...' is no script to run
    and one with '#' or '?' in its name is still found."""
    try:
        relative = Path(os.path.relpath(target.resolve(), page.resolve().parent)).as_posix()
    except ValueError:  # another drive (Windows): an absolute link still works
        return target.resolve().as_uri()
    return urllib.parse.quote(relative, safe="/")
