"""`inspector compare`: real recordings side by side, in the terminal, as JSON and as a page
that a real browser draws, with hostile names shown as text; bad input is one clear line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import turns
from browser import browser, open_report
from conftest import inspector_clis
from in_process import inspector_here
from machine import for_the_recording

import inspector
from inspector.analyze.comparison import wall_s

PY = sys.executable
CPUS = os.cpu_count() or 1
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
HOSTILE_FILE = "<img src=x onerror=alert(1)>"
HOSTILE_ARG = "</script><script>alert(2)</script>"


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "inspector", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One browser for the module's pages."""
    with browser() as b:
        yield b


@pytest.fixture(scope="module")
def recs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("compare")
    out: dict[str, Any] = {"dir": d}
    # ~0.5 s of pure Python each: long enough for several samples, short for the suite. Made
    # side by side: nothing here judges their speed (CPU seconds and counts only).
    commands = {variant: [PY, "-m", "inspector.jobs", "cpu", variant, "--size", "120",
                          "--workers", str(CPUS)] for variant in ("sequential", "multiprocessing")}
    commands["hostile"] = [PY, "-c", "import time; time.sleep(0.5)", HOSTILE_ARG]
    paths = {name: d / (f"{HOSTILE_FILE}.sqlite" if name == "hostile" else f"cpu-{name}.sqlite")
             for name in commands}
    procs = inspector_clis(*(["record", "-q", "-o", str(paths[name]), "--", *command]
                             for name, command in commands.items()))
    for (name, path), proc in zip(paths.items(), procs):
        assert proc.returncode == 0, proc.stderr
        out[name] = path
        out[f"{name}-stdout"] = proc.stdout
    return out


NAP = "import os, time; time.sleep(float(os.environ['NAP_S']))"


@pytest.fixture(scope="module")
def repeated(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three commands recorded twice each, interleaved. The naps are set so that the answer
    holds whatever the load: `b` spans `a` on both sides by half a second (no measurable
    difference), `c` naps 0.7 s longer than `a` in every run (measurably slower)."""
    d = tmp_path_factory.mktemp("repeated")
    naps = {"a": (0.5, 0.5), "b": (0.0, 1.0), "c": (1.2, 1.2)}
    paths = []
    for n in range(2):
        # at raised priority (tests/machine.py): on a machine at load 12, a Python's start-up
        # alone took 0.7 s of the margins' 0.5; and so alone (tests/turns.py). The three of a
        # round side by side: mostly asleep, each target's start-up (~30 ms of CPU) shares
        # the cores with two others' at most, well inside the margins.
        with turns.alone():
            procs = {name: subprocess.Popen(
                [PY, "-m", "inspector", "record", "-q", "--no-stacks", "-o",
                 str(d / f"{name}-{n + 1}.sqlite"), "--", PY, "-c", NAP, name],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env={**os.environ, "NAP_S": str(nap[n])}, preexec_fn=for_the_recording())
                for name, nap in naps.items()}
            try:
                for name, proc in procs.items():
                    _, err = proc.communicate(timeout=120)
                    assert proc.returncode == 0, err
                    paths.append(d / f"{name}-{n + 1}.sqlite")
            finally:
                for proc in procs.values():  # a failure or a hang guard: none outlives it
                    if proc.poll() is None:
                        proc.kill()
                        proc.communicate()
    return paths


@pytest.fixture(scope="module")
def spread(repeated: list[Path]) -> tuple[subprocess.CompletedProcess, Path]:
    """`compare --json` of the repeated recordings, and the page it wrote."""
    page = repeated[0].parent / "spread.html"
    proc = inspector_here("compare", "--json", "-o", str(page), *map(str, repeated))
    assert proc.returncode == 0, proc.stderr
    return proc, page


def test_recordings_of_one_command_are_one_row_with_their_spread(spread) -> None:
    proc, _ = spread
    out = json.loads(proc.stdout)
    a, b, c = out["rows"]
    assert [r["label"] for r in (a, b, c)] == ["a-1", "b-1", "c-1"]
    for r, name in ((a, "a"), (b, "b"), (c, "c")):
        assert r["runs"] == 2 and r["command"][-1] == name
        assert [Path(p).name for p in r["recordings"]] == [f"{name}-1.sqlite", f"{name}-2.sqlite"]
        assert r["wall_s_min"] <= r["wall_s"] <= r["wall_s_max"]
        assert r["foreign_load_runs"] == [None, None] and r["busy_runs"] == 0  # not measured
        assert r["baseline"] == "a-1"
    assert b["wall_s_min"] < a["wall_s_min"] <= a["wall_s_max"] < b["wall_s_max"]
    assert b["within_noise"] and b["speedup_low"] < 1.0 < b["speedup_high"]
    assert not c["within_noise"] and c["speedup_high"] < 1.0            # measurably slower
    assert not a["within_noise"] and a["speedup"] == 1.0
    # the note's range is the row's (the JSON rounds to 3 places, the note to 2: compare
    # the numbers, not a string formatted twice)
    assert len(out["notes"]) == 1
    said = re.fullmatch(r"b-1 vs a-1: no measurable difference \(([\d.]+)-([\d.]+)x, "
                        r"2 and 2 runs\)\.", out["notes"][0])
    assert said, out["notes"]
    assert float(said[1]) == pytest.approx(b["speedup_low"], abs=0.006)
    assert float(said[2]) == pytest.approx(b["speedup_high"], abs=0.006)


def test_table_says_no_measurable_difference_instead_of_a_figure(repeated) -> None:
    proc = inspector_here("compare", "-o", str(repeated[0].parent / "t.html"),
                    *map(str, repeated))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:8] == ["recording", "wall", "(median,", "min-max)", "speed-up",
                                    "(range)", "predicted", "CPU%"]
    assert re.match(r"a-1\s+[\d.]+ s \([\d.]+-[\d.]+\)\s+1\.00x\s", lines[1]), lines
    assert re.match(r"b-1\s+[\d.]+ s \([\d.]+-[\d.]+\)\s+~1x \([\d.]+-[\d.]+\)\s", lines[2])
    assert re.match(r"c-1\s+[\d.]+ s \([\d.]+-[\d.]+\)\s+0\.\d\dx \([\d.]+-[\d.]+\)\s",
                    lines[3]), lines
    assert lines[4] == "b-1 vs a-1: no measurable difference " + lines[4].split("difference ")[1]
    assert len(lines) == 5


def test_page_draws_each_rows_range_as_an_error_bar(spread, chromium) -> None:
    _, page_path = spread
    with open_report(chromium, page_path) as (page, report):
        assert report.console_errors == [] and report.rendered == 3
        assert page.locator("table.runs tbody tr").count() == 3
        assert page.locator("table.runs tr.noise").count() == 1          # b
        assert page.locator("#chart-speed-up path.yerror").count() == 3
        assert "b-1 vs a-1: no measurable difference" in page.inner_text("#s-runs")


def test_table_compares_against_the_first_recording(recs) -> None:
    proc = run("compare", str(recs["sequential"]), str(recs["multiprocessing"]))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:6] == ["job", "variant", "wall", "(median,", "min-max)", "speed-up"]
    assert re.match(r"cpu\s+sequential\s+[\d.]+ s\s+1\.00x", lines[1]), lines
    assert re.match(r"cpu\s+multiprocessing\s+[\d.]+ s\s+[\d.]+x", lines[2]), lines
    page = proc.stderr.strip().rsplit(" ", 1)[-1]
    # without -o, the page lands beside the first recording
    assert Path(page).parent == recs["dir"] and Path(page).name.startswith("comparison-")


def test_json_rows_carry_the_measurements_and_the_verdict(recs, tmp_path: Path) -> None:
    proc = inspector_here("compare", "--json", "-o", str(tmp_path / "c.html"),
                    str(recs["sequential"]), str(recs["multiprocessing"]))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["rows"]
    seq, mp = rows
    assert (seq["job"], seq["variant"], mp["variant"]) == ("cpu", "sequential", "multiprocessing")
    assert seq["speedup"] == 1.0 and mp["baseline"] == "cpu sequential"
    assert mp["speedup"] == pytest.approx(seq["wall_s"] / mp["wall_s"], rel=0.01)
    assert seq["processes"] == 1 and mp["processes"] >= 1 + CPUS
    assert mp["cpu_s"] >= 0.5 * seq["cpu_s"]           # the same work, spread over processes
    assert seq["verdict"]["bound"] == "cpu"
    assert (tmp_path / "c.html").stat().st_size > 1_000_000


def test_wall_time_is_the_targets_life_not_the_recorders(recs) -> None:
    rec = inspector.load(recs["sequential"])
    job_s = float(recs["sequential-stdout"].split()[-2])   # "..., 0.512 s" printed by the job
    interval = rec.interval_s
    assert wall_s(rec) >= job_s - interval            # the process lived through its work
    assert wall_s(rec) < rec.duration_s               # without the recorder's start and stop


def test_page_shows_hostile_names_as_text(recs, tmp_path: Path, chromium) -> None:
    page_path = tmp_path / "hostile.html"
    proc = inspector_here("compare", "-o", str(page_path), str(recs["hostile"]),
                    str(recs["sequential"]))
    assert proc.returncode == 0, proc.stderr
    assert HOSTILE_FILE in proc.stdout                 # the terminal shows it as it is
    with open_report(chromium, page_path) as (page, report):
        assert report.console_errors == []
        assert report.dialogs == []                    # nothing ran
        assert report.requests == []
        assert report.rendered == 3
        table = page.locator("table.runs")
        assert table.locator("img, script").count() == 0
        text = table.inner_text()
        assert HOSTILE_FILE in text and HOSTILE_ARG in text
        # plotly draws the labels as text too: the bar's category is the file name
        ticks = page.locator("#chart-speed-up .xtick text").all_text_contents()
        assert HOSTILE_FILE in ticks
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "compare-hostile.png"), full_page=True)


@pytest.mark.parametrize("args, status, message", [
    (["one.sqlite"], 2, "inspector: compare: give at least two recordings"),
    (["missing.sqlite", "missing2.sqlite"], 1, "inspector: missing.sqlite: no such file"),
    (["notes.txt", "notes.txt"], 1,
     "inspector: notes.txt: not an inspector recording (not an SQLite file)"),
])
def test_bad_input_is_one_clear_line(tmp_path: Path, args: list[str], status: int,
                                     message: str, monkeypatch) -> None:
    # in this process: the unwritable page below is the one-line error run as a program
    (tmp_path / "notes.txt").write_text("not a recording\n")
    monkeypatch.chdir(tmp_path)
    proc = inspector_here("compare", *args)
    assert proc.returncode == status
    assert proc.stderr.strip().splitlines() == [message]


def test_unwritable_page_is_one_clear_line(recs, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = run("compare", "-o", str(blocker / "page.html"), str(recs["sequential"]),
               str(recs["multiprocessing"]))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"inspector: cannot write {blocker}")


def test_job_against_no_server_is_one_clear_line() -> None:
    import socket

    with socket.socket() as s:       # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        proc = subprocess.run([PY, "-m", "inspector.jobs", "io", "threading", "--size", "3",
                               "--url", f"http://127.0.0.1:{port}"],
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("inspector.jobs: io threading:"), lines
    assert "refused" in lines[0].lower()
