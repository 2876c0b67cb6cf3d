"""The HTML report: a Recording's DataFrames and the diagnosis in, one self-contained page
out (plotly.js embedded, nothing fetched). Knows plotly; never the OS or the recorder.
"""

from inspector.report.page import ReportInputs, render_report

__all__ = ["ReportInputs", "render_report"]
