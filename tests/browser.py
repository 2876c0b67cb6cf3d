"""Loads HTML reports in a real headless Chromium (Debian's /usr/bin/chromium, driven by the
python `playwright` package) and tells what happened: console errors, dialogs, network
requests, and whether every figure was drawn.

Used by the report tests and by benchmarks/report_scale.py (browser load time).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

CHROMIUM = os.environ.get("INSPECTOR_CHROMIUM", "/usr/bin/chromium")
# Flags for a sandbox-less container without a GPU that must not phone home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
# Generous: a one-hour report parses ~10 MB of JSON and draws a large heatmap.
RENDER_TIMEOUT_MS = 60_000

# Per figure: is its plotly root there, with an SVG and at least one drawn trace?
_FIGURES_JS = """
() => Array.from(document.querySelectorAll('.figure')).map(div => ({
  id: div.id,
  plotly: div.classList.contains('js-plotly-plot'),
  svg: div.querySelectorAll('svg.main-svg').length,
  traces: (div.data || []).length,
  marks: div.querySelectorAll(
    '.heatmaplayer image, .scatterlayer .trace, .gl-container canvas, g.slice, .iciclelayer path'
  ).length,
  height: div.getBoundingClientRect().height,
}))
"""


@dataclass
class PageReport:
    console_errors: list[str] = field(default_factory=list)
    console_warnings: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)     # anything but the file itself
    figures: list[dict[str, Any]] = field(default_factory=list)
    rendered: Optional[int] = None                        # figures the page says it drew
    load_s: float = 0.0                                   # navigation to all figures drawn


def chromium_available() -> bool:
    return Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)


@contextmanager
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@contextmanager
def open_report(b: Any, path: Path, viewport: tuple[int, int] = (1360, 900)
                ) -> Iterator[tuple[Any, PageReport]]:
    """Opens `path` in a new page, waits until every figure is drawn (or the page failed),
    and yields the live page with what was observed so far."""
    page = b.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    report = PageReport()
    url = Path(path).resolve().as_uri()

    def on_console(msg: Any) -> None:
        if msg.type == "error":
            report.console_errors.append(msg.text)
        elif msg.type == "warning":
            report.console_warnings.append(msg.text)

    def on_dialog(dialog: Any) -> None:
        report.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda e: report.console_errors.append(f"pageerror: {e}"))
    page.on("dialog", on_dialog)
    page.on("request", lambda r: report.requests.append(r.url) if r.url != url else None)
    try:
        start = time.perf_counter()
        page.goto(url, wait_until="load", timeout=RENDER_TIMEOUT_MS)
        page.wait_for_function(
            "() => document.body && (document.body.hasAttribute('data-rendered')"
            " || document.body.hasAttribute('data-render-error'))",
            timeout=RENDER_TIMEOUT_MS)
        report.load_s = time.perf_counter() - start
        rendered = page.evaluate("document.body.getAttribute('data-rendered')")
        report.rendered = int(rendered) if rendered is not None else None
        report.figures = page.evaluate(_FIGURES_JS)
        yield page, report
    finally:
        page.close()
