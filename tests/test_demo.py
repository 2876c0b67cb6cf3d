"""`inspector demo --quick`, run once for real on this machine: what theory predicts must show
in the measurements (ratios, never times), and the page it writes must work in a browser.

- CPU-bound pure Python: processes use several cores and win; threads stay on one core
  (the GIL); asyncio without awaits runs the work one piece after another.
- I/O-bound waits: threads and asyncio overlap them and win many times over; processes
  overlap them too, but start a process per worker first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from browser import browser, open_report

PY = sys.executable
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CPUS = os.cpu_count() or 1
VARIANTS = ("sequential", "threading", "multiprocessing", "asyncio")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("demo") / "run"
    proc = subprocess.run([PY, "-m", "inspector", "demo", "--quick", "--json", "-o", str(out)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    result["_stderr"] = proc.stderr
    result["_dir"] = out
    result["_by"] = {(r["job"], r["variant"]): r for r in result["rows"]}
    return result


def row(demo: dict[str, Any], job: str, variant: str) -> dict[str, Any]:
    return demo["_by"][(job, variant)]


def test_demo_records_every_job_and_variant_and_writes_its_files(demo) -> None:
    assert [(r["job"], r["variant"]) for r in demo["rows"]] == [
        (job, v) for job in ("cpu", "io") for v in VARIANTS]
    d: Path = demo["_dir"]
    for job in ("cpu", "io"):
        for v in VARIANTS:
            assert (d / f"{job}-{v}.sqlite").stat().st_size > 0
            assert (d / f"{job}-{v}.html").stat().st_size > 1_000_000  # plotly.js embedded
    assert Path(demo["page"]) == d / "comparison.html"
    assert json.loads((d / "demo.json").read_text())["rows"] == demo["rows"]
    for r in demo["rows"]:
        assert r["exit_code"] == 0, r  # every job checked its own answer and passed
        assert r["wall_s"] > 0 and r["cpu_percent"] >= 0
        assert set(r["verdict"]) >= {"bound", "gil_limited", "parallel_threads",
                                     "oversubscribed", "advice", "evidence"}


def test_sequential_runs_are_their_own_baseline(demo) -> None:
    for job in ("cpu", "io"):
        assert row(demo, job, "sequential")["speedup"] == pytest.approx(1.0)
        for v in VARIANTS:
            assert row(demo, job, v)["baseline"] == f"{job} sequential"


def test_cpu_job_processes_use_more_than_one_core_and_win(demo) -> None:
    mp = row(demo, "cpu", "multiprocessing")
    assert mp["processes"] >= 1 + CPUS           # the parent and one worker per CPU
    # 2 cores: ideally 2x; 1.6-1.8x measured on a quiet machine, recorder included. 1.2 keeps
    # the claim (well above 1x, beyond the few-percent noise) without failing on a busy one.
    assert mp["speedup"] > 1.2, mp
    assert mp["cpu_percent"] > 130, mp            # more than one core's worth


def test_cpu_job_threads_stay_near_one_core(demo) -> None:
    th = row(demo, "cpu", "threading")
    assert th["processes"] == 1 and th["threads"] >= 1 + CPUS
    assert th["speedup"] < 1.3, th
    assert th["cpu_percent"] < 130, th            # the GIL: one thread runs Python at a time
    assert row(demo, "cpu", "multiprocessing")["speedup"] > th["speedup"]


def test_cpu_job_asyncio_is_no_faster_than_sequential(demo) -> None:
    aio = row(demo, "cpu", "asyncio")
    assert aio["processes"] == 1 and aio["threads"] == 1
    assert aio["speedup"] < 1.3, aio


def test_io_job_threads_and_asyncio_overlap_the_waits(demo) -> None:
    th, aio = row(demo, "io", "threading"), row(demo, "io", "asyncio")
    assert th["speedup"] > 3, th
    assert aio["speedup"] > 3, aio
    workers = demo["plan"]["io_workers"]
    assert th["processes"] == 1 and th["threads"] >= workers
    assert aio["processes"] == 1 and aio["threads"] == 1   # one thread, many sockets
    # Waiting is not computing: far below one core, let alone the CPU job's.
    assert th["cpu_percent"] < 60 and aio["cpu_percent"] < 60


def test_io_job_processes_overlap_the_waits_but_pay_for_starting(demo) -> None:
    mp = row(demo, "io", "multiprocessing")
    workers = demo["plan"]["io_workers"]
    assert mp["processes"] >= 1 + workers
    assert mp["speedup"] > 1.5, mp
    # The same concurrency as the thread pool; what differs is a process per worker.
    assert mp["speedup"] < max(row(demo, "io", "threading")["speedup"],
                               row(demo, "io", "asyncio")["speedup"])
    assert mp["rss_peak_bytes"] > 3 * row(demo, "io", "threading")["rss_peak_bytes"]


def test_sequential_runs_are_diagnosed_as_what_they_are(demo) -> None:
    assert row(demo, "cpu", "sequential")["verdict"]["bound"] == "cpu"
    assert row(demo, "io", "sequential")["verdict"]["bound"] == "io"


def test_io_server_ran_outside_the_recordings(demo) -> None:
    import inspector

    rec = inspector.load(demo["_dir"] / "io-sequential.sqlite")
    assert len(rec.processes) == 1
    assert len(rec.threads) == 1          # the job's main thread: no server thread in there
    command = rec.meta["command"]
    assert command[1:5] == ["-m", "inspector.jobs", "io", "sequential"]


def test_comparison_page_renders_in_a_browser(demo) -> None:
    with browser() as b, open_report(b, demo["_dir"] / "comparison.html") as (page, report):
        assert report.console_errors == []
        assert report.requests == []          # everything is inside the file
        assert report.rendered == 3
        figures = {f["id"]: f for f in report.figures}
        assert set(figures) == {"chart-speed-up", "chart-cpu", "chart-cpu-time"}
        for f in figures.values():
            assert f["plotly"] and f["svg"] > 0 and f["traces"] >= 2, f
        # one bar per run in the speed-up and CPU charts, one line per run over time
        assert page.locator("#chart-speed-up .barlayer .point").count() == 8
        assert page.locator("#chart-cpu .barlayer .point").count() == 8
        assert figures["chart-cpu-time"]["traces"] == 8
        assert page.locator("table.runs tbody tr").count() == 8
        assert "processes ran" in page.inner_text("#s-runs")   # what the numbers say
        links = page.locator("table.runs a").evaluate_all(
            "els => els.map(e => e.getAttribute('href'))")
        assert "cpu-threading.html" in links and "io-asyncio.sqlite" in links
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "demo-comparison.png"), full_page=True)


def test_demo_into_a_file_is_one_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "not-a-dir"
    target.write_text("x")
    proc = subprocess.run([PY, "-m", "inspector", "demo", "--quick", "-o", str(target)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"inspector: demo: {target} exists and is not a directory"]
    assert "Traceback" not in proc.stderr
