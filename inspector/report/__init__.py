"""The HTML report: a Recording's DataFrames and its Diagnosis in, one self-contained page
out (plotly.js embedded, nothing fetched). Knows plotly; never the OS or the recorder.
`render_report` draws a page; report/build.py holds the pipelines the commands call
(`build_report`, `write_page`) and their errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inspector.report.page import ReportInputs, render_report

__all__ = ["ReportInputs", "render_report"]


def __getattr__(name: str) -> Any:
    # The page (plotly, pandas) loads on first use: the CLI imports report.build's errors
    # for every command, `--help` included, and must not pay for plotly then.
    if name in __all__:
        from inspector.report import page
        return getattr(page, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
