"""The HTML report, loaded in a real headless Chromium: every figure drawn without a console
error, nothing fetched, hover shows the stack sampled there, names from the target shown as
text and never run, and a recording without samples still renders and says so.

Recordings are real (the recorder on short real programs), made once per module; their pages
are built by the `report` command in this process (`record --report` and two of the refusals
run it as a program). Screenshots go to tests/artifacts/ for a person to look at.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import PageReport, browser, chromium_available, open_report
from conftest import inspector_cli, inspector_clis
from in_process import inspector_here

from inspector.cli import main

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
HOSTILE = "<img src=x onerror=alert(1)>"

# A thread, a function and a coroutine named HOSTILE, and HOSTILE in the command line; the
# coroutine blocks its event loop with time.sleep so the blocked-loop table names it too.
HOSTILE_WORKLOAD = '''
import asyncio, sys, threading, time

HOSTILE = sys.argv[1]


def spin(seconds):
    end = time.monotonic() + seconds
    total = 0
    while time.monotonic() < end:
        for i in range(2000):
            total += i * i
    return total


async def blocker():
    await asyncio.sleep(0.2)
    time.sleep(0.6)   # blocks the loop
    await asyncio.sleep(0.2)


def rename(fn):
    names = {"co_name": HOSTILE}
    if sys.version_info >= (3, 11):
        names["co_qualname"] = HOSTILE
    fn.__code__ = fn.__code__.replace(**names)
    return fn


rename(spin)
rename(blocker)
worker = threading.Thread(target=spin, args=(2.0,), name=HOSTILE)
worker.start()
asyncio.run(blocker())
worker.join()
'''


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    assert chromium_available(), "Debian's chromium must be installed (.ci/run installs it)"
    with browser() as b:
        yield b


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four GIL-bound threads, a sleeper and a 2-worker process pool, recorded with
    `inspector record --report` (so that path is covered too)."""
    recording = tmp_path_factory.mktemp("mixed") / "mixed.sqlite"
    result = inspector_cli("record", "-q", "--report", "-o", str(recording), "--", sys.executable,
                           "-m", "inspector.examples.threads_and_processes", "--seconds", "1.5")
    assert result.returncode == 0, result.stderr
    html = recording.with_suffix(".html")
    assert f"report written to {html}" in result.stderr
    return html


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    script = d / "hostile.py"
    script.write_text(HOSTILE_WORKLOAD)
    recording = d / "hostile.sqlite"
    result = inspector_cli("record", "-q", "-o", str(recording), "--", sys.executable,
                           str(script), HOSTILE)
    assert result.returncode == 0, result.stderr
    assert main(["report", str(recording)]) == 0
    return recording.with_suffix(".html")     # the default: beside the recording


@pytest.fixture(scope="module")
def instant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`true` exits within milliseconds: seen, and sampled once or not at all."""
    d = tmp_path_factory.mktemp("instant")
    recording = d / "true.sqlite"
    result = inspector_cli("record", "-q", "-o", str(recording), "--", "true")
    assert result.returncode == 0, result.stderr
    html = d / "true-report.html"
    assert main(["report", str(recording), "-o", str(html)]) == 0
    return html


@pytest.fixture(scope="module")
def no_samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recording whose process was seen but never sampled, written as the recorder
    writes one when its target exits before the first sampling round (which `true` does
    only sometimes: on a busy machine it may get one round)."""
    from inspector.recording import ProcessRecord, RecordingWriter

    d = tmp_path_factory.mktemp("empty")
    recording = d / "empty.sqlite"
    w = RecordingWriter(recording)
    w.set_meta({"mode": "launch", "command": ["true"], "cwd": str(d), "cpu_count": 2,
                "interval_s": 0.1, "settings": {"interval_s": 0.1, "rate_hz": 100,
                                                 "stacks": True},
                "stacks": {"enabled": True, "sampler": "py-spy", "rate_hz": 100},
                "start_time_unix": 1_800_000_000.0})
    w.add_process(ProcessRecord(proc_id=1, pid=4242, ppid=1, parent_proc_id=None, name="true",
                                cmdline=["true"], exe="/usr/bin/true",
                                create_time=1_800_000_000.0, start_s=0.0, is_target=True))
    w.update_process(1, end_s=0.004, exit_code=0)
    w.add_problem(0.001, "py-spy", "permission", detail=f"cannot attach to {HOSTILE}", pid=4242)
    w.set_meta({"duration_s": 0.02, "exit_code": 0, "complete": True, "ticks": 0})
    w.close()
    html = d / "empty.html"
    assert main(["report", str(recording), "-o", str(html)]) == 0
    return html


def _shoot(page: Any, name: str, full_page: bool = True) -> Path:
    """A screenshot under tests/artifacts/: the whole page (from the top, so the sticky
    navigation bar sits where it belongs), or what the window shows now."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    if full_page:
        page.mouse.move(0, 0)
        page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 10_000
    return path


def _assert_clean(seen: PageReport) -> None:
    assert seen.console_errors == []
    assert seen.dialogs == []
    assert seen.requests == []          # self-contained: nothing fetched


def _assert_every_figure_drawn(page: Any, seen: PageReport, expected: set[str]) -> None:
    assert {f["id"] for f in seen.figures} == expected
    assert seen.rendered == len(expected)
    for fig in seen.figures:
        assert fig["plotly"] and fig["svg"] > 0, fig
        assert fig["traces"] > 0 and fig["marks"] > 0, fig
        assert fig["height"] > 100, fig
    assert "WebGL is not supported" not in page.inner_text("body")


def _hover_cell(page: Any, lane_match: str, frame_match: str) -> str:
    """Moves the real mouse over the middle one of the timeline cells of a lane whose label
    contains `lane_match` and whose sampled stack has a frame containing `frame_match`;
    returns the hover panel's text."""
    where = page.evaluate(
        """([laneMatch, frameMatch]) => {
          const d = JSON.parse(document.getElementById('timeline-data').textContent);
          const raw = atob(d.stack), bytes = new Uint8Array(raw.length);
          for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
          const stack = new Int32Array(bytes.buffer);
          for (let r = 0; r < d.rows; r++) {
            if (d.lanes[r].tid < 0 || !d.lanes[r].label.includes(laneMatch)) continue;
            const hits = [];
            for (let c = 0; c < d.cols; c++) {
              const sid = stack[r * d.cols + c];
              if (sid < 0) continue;
              if (d.stacks[sid].some(f => f >= 0 && d.frames[f].includes(frameMatch))) hits.push(c);
            }
            if (hits.length) {
              // the middle one: a thread's first cell is its birth, not yet a sampled stretch
              const c = hits[Math.floor(hits.length / 2)];
              const div = document.getElementById('timeline');
              div.scrollIntoView({block: 'center'});
              const fl = div._fullLayout, box = div.getBoundingClientRect();
              return {x: box.left + fl._size.l + fl.xaxis.l2p(d.x0 + (c + 0.5) * d.dx),
                      y: box.top + fl._size.t + fl.yaxis.l2p(r)};
            }
          }
          return null;
        }""", [lane_match, frame_match])
    assert where is not None, f"no timeline cell of {lane_match!r} with {frame_match!r}"
    page.mouse.move(where["x"], where["y"])
    page.wait_for_function("() => !document.getElementById('timeline-tip').hidden")
    return str(page.inner_text("#timeline-tip"))


def test_report_of_a_real_run_draws_every_figure_cleanly(chromium: Any, mixed: Path) -> None:
    with open_report(chromium, mixed) as (page, seen):
        _assert_clean(seen)
        _assert_every_figure_drawn(page, seen, {"timeline", "cpu", "memory", "hotspots"})
        _shoot(page, "report-threads-and-processes")


def test_report_answers_first_then_shows_the_real_processes_and_threads(
        chromium: Any, mixed: Path) -> None:
    import inspector

    rec = inspector.load(mixed.with_suffix(".sqlite"))
    with open_report(chromium, mixed) as (page, _seen):
        order = page.eval_on_selector_all("main > section", "els => els.map(e => e.id)")
        assert order == ["s-verdict", "s-tree", "s-timeline", "s-cpu", "s-memory", "s-hot",
                         "s-loops", "s-run"]
        assert page.inner_text("#s-verdict .verdict h2").strip()
        assert page.locator("#s-verdict ul.evidence li").count() >= 1
        # the answer says the cores the program could use and what other models would give
        assert re.search(r"\d+ cores on this machine", page.inner_text("#s-verdict p.cores"))
        assert page.locator("#s-verdict ul.predicted li").count() == 3
        # the run section says what the recorder itself cost
        assert re.search(r"recorder's own CPU\s+[\d.]+% of one core on average",
                         page.inner_text("#s-run"))
        tree = page.inner_text("#s-tree table.tree")
        for pid in rec.processes["pid"]:
            assert str(pid) in tree
        for name in ("cpu-0", "cpu-1", "cpu-2", "cpu-3", "sleeper", "MainThread"):
            assert name in tree
        assert re.search(r"htop .* would have shown \d+ rows", page.inner_text("#s-tree"))
        # The CPU chart draws one core (the GIL) and all cores as lines.
        cpu = page.inner_text("#cpu")
        assert "100% = one core" in cpu and f"= all {rec.cpu_count} cores" in cpu


def test_hovering_the_timeline_shows_the_stack_sampled_there(chromium: Any,
                                                             mixed: Path) -> None:
    with open_report(chromium, mixed) as (page, _seen):
        tip = _hover_cell(page, "cpu-2", "sum_of_squares")
        assert tip.splitlines()[0].startswith("cpu-2 (")
        assert "sum_of_squares" in tip and "spin" in tip
        assert "%" in tip          # the state split of that stretch
        _shoot(page, "report-timeline-hover", full_page=False)


def test_hostile_names_are_shown_as_text_and_never_run(chromium: Any, hostile: Path) -> None:
    page_source = hostile.read_text()
    # Everything from the target is escaped: as HTML text, or as JSON inside a script.
    assert HOSTILE not in page_source
    with open_report(chromium, hostile) as (page, seen):
        _assert_clean(seen)
        _assert_every_figure_drawn(page, seen, {"timeline", "cpu", "memory", "hotspots"})
        assert page.evaluate("document.querySelectorAll('img').length") == 0
        assert HOSTILE in page.inner_text("header.top")              # the command line
        assert HOSTILE in page.inner_text("#s-run")
        assert HOSTILE in page.inner_text("#s-tree")                 # the thread's name
        assert HOSTILE in page.inner_text("#s-hot table.hot")        # the function's name
        assert HOSTILE in page.inner_text("#s-loops")                # the blocking coroutine
        ticks = page.eval_on_selector_all("#timeline .ytick text",
                                          "els => els.map(e => e.textContent)")
        assert any(t.startswith(HOSTILE) for t in ticks)             # drawn by plotly
        slices = page.eval_on_selector_all("#hotspots text.slicetext",
                                           "els => els.map(e => e.textContent)")
        assert HOSTILE in slices
        tip = _hover_cell(page, HOSTILE, HOSTILE)
        assert tip.splitlines()[0].startswith(HOSTILE)                # the thread
        assert any(line.startswith(HOSTILE + " ·") for line in tip.splitlines())  # its frame
        _shoot(page, "report-hostile-hover", full_page=False)
        _shoot(page, "report-hostile-names")
        assert seen.dialogs == []


def test_a_recording_without_samples_renders_and_says_so(chromium: Any,
                                                         no_samples: Path) -> None:
    with open_report(chromium, no_samples) as (page, seen):
        _assert_clean(seen)
        assert seen.rendered == 0 and seen.figures == []
        assert "No samples in this recording" in page.inner_text("#s-verdict")
        assert "No timeline" in page.inner_text("#s-timeline")
        assert "No CPU samples" in page.inner_text("#s-cpu")
        assert "true" in page.inner_text("#s-tree")
        problems = page.inner_text("#s-run table.problems")
        assert "permission" in problems and f"cannot attach to {HOSTILE}" in problems
        assert page.evaluate("document.querySelectorAll('img').length") == 0
        _shoot(page, "report-no-samples")


def test_a_real_program_gone_before_sampling_still_renders(chromium: Any,
                                                           instant: Path) -> None:
    with open_report(chromium, instant) as (page, seen):
        _assert_clean(seen)
        assert seen.rendered == len(seen.figures)
        for fig in seen.figures:
            assert fig["plotly"] and fig["svg"] > 0, fig
        assert "true" in page.inner_text("#s-tree")
        for key in ("timeline", "cpu", "memory", "hot"):
            section = page.inner_text(f"#s-{key}")
            # Each part either is drawn or says why not.
            assert page.locator(f"#s-{key} .figure").count() == 1 or section.count("No ") >= 1


def test_report_command_refuses_bad_input_in_one_line(tmp_path: Path, mixed: Path) -> None:
    text = tmp_path / "notes.sqlite"
    text.write_text("not a recording")
    recording = mixed.with_suffix(".sqlite")
    # Two as programs (the exit status and stderr of the real entry point, argparse's
    # included); the others' refusals are the command's own, run in this process.
    missing, bare = inspector_clis(["report", str(tmp_path / "nope.sqlite")], ["report"])
    assert "no such file" in _one_line_error(missing)
    assert bare.returncode == 2

    def here(*args: str) -> subprocess.CompletedProcess[str]:
        return inspector_here("report", *args)

    assert "not an inspector recording" in _one_line_error(here(str(text)))
    assert "no such directory" in _one_line_error(
        here(str(recording), "-o", str(tmp_path / "no" / "such" / "dir" / "r.html")))
    assert "recording itself" in _one_line_error(here(str(recording), "-o", str(recording)))


def test_commands_load_plotly_only_to_draw_a_page() -> None:
    """The CLI imports every command and the report's errors for any command, `--help`
    included; the page's plotly and pandas load when a page is drawn."""
    code = ("import sys; from inspector.cli import build_parser; build_parser(); "
            "from inspector.commands.report import ReportError; "
            "from inspector.report.build import build_report; "
            "print(sorted(m for m in ('plotly', 'pandas') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
