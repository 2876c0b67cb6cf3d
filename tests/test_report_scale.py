"""The report stays small on long recordings without losing the peaks: down-sampling keeps
each bucket's lowest and highest sample, and the page's series are capped.

A long recording here is synthetic (written through the recorder's RecordingWriter by
benchmarks/report_scale.py); the browser tests in test_report.py use real ones.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import report_scale_module
from hypothesis import given, settings
from hypothesis import strategies as st

import inspector
from inspector.report.build import build_report
from inspector.report.downsample import MAX_POINTS_PER_SERIES, minmax_indices
from inspector.report.timeline import MAX_TIMELINE_COLUMNS


def _decoded(value: Any) -> np.ndarray:
    """A plotly array from figure JSON: a list, or a base64 typed array."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value, dtype=float)


def _scripts(html: str) -> dict[str, Any]:
    found = re.findall(r'<script type="application/json" id="([^"]+)"[^>]*>(.*?)</script>',
                       html, flags=re.S)
    return {k: json.loads(v) for k, v in found}


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=3000),
       st.integers(8, 400))
@settings(max_examples=60, deadline=None, derandomize=True)
def test_downsampling_keeps_every_buckets_extremes(values: list[float], max_points: int
                                                   ) -> None:
    y = np.asarray(values)
    t = np.arange(len(y), dtype=float)
    keep = minmax_indices(t, y, max_points)
    assert len(keep) <= max_points
    assert np.all(np.diff(keep) > 0)                       # sorted, no duplicates
    assert y[keep].max() == y.max() and y[keep].min() == y.min()
    assert keep[0] == 0 and keep[-1] == len(y) - 1
    if len(y) > max_points:
        buckets = max(1, max_points // 2 - 1)
        width = (t[-1] - t[0]) / buckets
        b = np.minimum((t / width).astype(int), buckets - 1)
        for k in np.unique(b):
            inside = b == k
            kept = np.isin(np.flatnonzero(inside), keep)
            assert y[inside][kept].max() == y[inside].max()
            assert y[inside][kept].min() == y[inside].min()


def _synthetic_report(folder: Path, duration_s: float) -> tuple[Path, Path]:
    """A synthetic recording of duration_s (2 processes of 2 threads) and its report."""
    recording = report_scale_module().write_synthetic(
        folder / f"r{duration_s:g}.sqlite", duration_s=duration_s, processes=2,
        threads_per_process=2, interval_s=0.1, span_s=0.5)
    return recording, build_report(recording, folder / f"r{duration_s:g}.html")


@pytest.fixture(scope="module")
def long_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """900 s of recording and its report, read by the two tests of a long recording."""
    return _synthetic_report(tmp_path_factory.mktemp("long"), 900.0)


def test_a_long_recording_is_capped_but_keeps_its_peaks(long_report: tuple[Path, Path]
                                                        ) -> None:
    recording, html_path = long_report
    html = html_path.read_text()
    scripts = _scripts(html)
    rec = inspector.load(recording)

    timeline = scripts["timeline-data"]
    # 9,000 intervals folded into 1,500 columns (one more when the grid is shifted onto the
    # phase of the sampling rounds).
    assert MAX_TIMELINE_COLUMNS <= timeline["cols"] <= MAX_TIMELINE_COLUMNS + 1
    assert len(base64.b64decode(timeline["stack"])) == 4 * timeline["rows"] * timeline["cols"]

    cpu = scripts["cpu-figure"]["data"]
    assert all(len(_decoded(tr["x"])) <= MAX_POINTS_PER_SERIES + 2 for tr in cpu)
    memory = scripts["memory-figure"]["data"]
    rss_peak_mib = (rec.process_samples.groupby("proc_id")["rss_bytes"].max() / 2**20)
    drawn_peaks = sorted(float(_decoded(tr["y"]).max()) for tr in memory)
    assert np.allclose(drawn_peaks, sorted(rss_peak_mib), rtol=1e-5)   # float32
    for tr in memory:
        assert len(_decoded(tr["x"])) <= MAX_POINTS_PER_SERIES + 2
        assert tr["type"] == "scattergl"


def test_report_sizes_stay_flat_as_recordings_grow(tmp_path: Path,
                                                   long_report: tuple[Path, Path]) -> None:
    """Ten times longer, yet the page grows by far less: what is drawn is capped."""
    sizes = [_synthetic_report(tmp_path, 90.0)[1].stat().st_size,
             long_report[1].stat().st_size]
    assert sizes[1] < sizes[0] * 1.8, sizes


def test_hot_functions_table_counts_samples_per_thread(tmp_path: Path) -> None:
    rs = report_scale_module()
    recording = rs.write_synthetic(tmp_path / "s.sqlite", duration_s=10.0, processes=2,
                                   threads_per_process=2)
    html = build_report(recording, tmp_path / "s.html").read_text()
    rec = inspector.load(recording)
    table = html.split('<table class="hot">', 1)[1].split("</table>", 1)[0]
    per_thread = rec.stacks.groupby("tid")["samples"].sum()
    for tid, samples in per_thread.items():
        row = re.search(rf"\({tid}\)</td><td>\d+</td><td>[^<]*</td><td>(\d+)</td>", table)
        assert row is not None, tid
        assert int(row.group(1)) == int(samples)
