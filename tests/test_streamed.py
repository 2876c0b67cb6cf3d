"""A recording larger than the memory allowed is streamed by windows of time and folded into
bins (inspector/bounded.py): `summary` and `report` succeed under a real memory limit on the
child where reading the file whole fails, and say what the whole read says; a recording that
fits is read whole, its `summary --json` unchanged.

The large recording is synthetic (benchmarks/report_scale.py: written through the recorder's
RecordingWriter, then its blocks repeated later in time); the small ones are real.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import WORKLOADS, inspector_cli, report_scale_module

from inspector.cli import main

# What the limit allows beyond a run of the same command on a small file: the whole read of
# the large file needs ~110 MB more (~0.5 M rows at ~200-240 B a row; the report's ~105), a
# streamed one 10-20 MB.
ALLOWANCE_BYTES = 60 << 20
VERDICT_FIELDS = ("bound", "gil_limited", "parallel_threads", "oversubscribed", "advice")
# The whole read forced: a budget no file here reaches.
NEVER_STREAM = ("--memory-budget", "1000000")

# Runs the CLI in this interpreter and writes its peak data size (what RLIMIT_DATA bounds:
# private writable mappings, which the address space's reservations are not) to the file
# named first, as a thread polling /proc/self/status sees it.
_PEAK = r"""
import sys, threading, time
from inspector.cli import main
out, args = sys.argv[1], sys.argv[2:]
peak = [0]
def data_kb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmData:"))
def poll():
    while True:
        peak[0] = max(peak[0], data_kb())
        time.sleep(0.002)
threading.Thread(target=poll, daemon=True).start()
try:
    rc = main(args)
finally:
    peak[0] = max(peak[0], data_kb())
    with open(out, "w") as f:
        f.write(str(peak[0] * 1024))
sys.exit(rc)
"""


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(small, large): 8 threads in 2 processes for 240 s, and the same 12 times over (0.8 h,
    ~0.5 M rows: a stream's windows and bins are planned as for any size; only the limit and
    the whole read's need scale with it)."""
    rs = report_scale_module()
    folder = tmp_path_factory.mktemp("streamed")
    small = rs.write_synthetic(folder / "small.sqlite", 240.0, processes=2,
                               threads_per_process=4)
    large = rs.repeat_in_time(small, folder / "large.sqlite", 12)
    return small, large


def _run(folder: Path, *args: str, limit: int | None = None
         ) -> tuple[subprocess.CompletedProcess[str], int]:
    """The CLI in a child, under a data-size limit if given; and its peak."""
    peak_file = folder / "peak"
    peak_file.unlink(missing_ok=True)

    def limited() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

    proc = subprocess.run([sys.executable, "-c", _PEAK, str(peak_file), *args],
                          capture_output=True, text=True, timeout=600, preexec_fn=limited,
                          env={**os.environ, "INSPECTOR_MEMORY_BUDGET_MB": ""})
    peak = int(peak_file.read_text()) if peak_file.exists() else 0
    return proc, peak


def _verdict(stdout: str) -> dict[str, Any]:
    verdict = json.loads(stdout)["verdict"]
    return {k: verdict[k] for k in VERDICT_FIELDS}


def test_summary_streams_under_a_limit_the_whole_read_exceeds(
        recordings: tuple[Path, Path], tmp_path: Path) -> None:
    small, large = recordings
    tiny, tiny_peak = _run(tmp_path, "summary", "--json", str(small))
    assert tiny.returncode == 0, tiny.stderr
    assert "streamed" not in json.loads(tiny.stdout)
    limit = tiny_peak + ALLOWANCE_BYTES

    whole, whole_peak = _run(tmp_path, "summary", "--json", str(large))  # no limit
    assert whole.returncode == 0, whole.stderr
    assert whole_peak > limit, "the large file must need more than the limit allows"

    refused, _ = _run(tmp_path, "summary", "--json", *NEVER_STREAM, str(large), limit=limit)
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr, refused.stderr[-2000:]

    streamed, streamed_peak = _run(tmp_path, "summary", "--json", str(large), limit=limit)
    assert streamed.returncode == 0, streamed.stderr[-2000:]
    assert "inspector: streamed" in streamed.stderr
    data = json.loads(streamed.stdout)
    assert data["streamed"]["streamed"] is True and data["streamed"]["bin_s"] > 0.1
    assert _verdict(streamed.stdout) == _verdict(whole.stdout)
    assert data["duration_s"] == json.loads(whole.stdout)["duration_s"]
    assert streamed_peak <= limit


def test_report_streams_under_a_limit_the_whole_read_exceeds(
        recordings: tuple[Path, Path], tmp_path: Path) -> None:
    small, large = recordings
    tiny, tiny_peak = _run(tmp_path, "report", "-o", str(tmp_path / "small.html"), str(small))
    assert tiny.returncode == 0, tiny.stderr
    limit = tiny_peak + ALLOWANCE_BYTES

    refused, _ = _run(tmp_path, "report", "-o", str(tmp_path / "whole.html"), *NEVER_STREAM,
                      str(large), limit=limit)
    assert refused.returncode != 0
    assert not (tmp_path / "whole.html").exists()

    page = tmp_path / "streamed.html"
    streamed, _ = _run(tmp_path, "report", "-o", str(page), str(large), limit=limit)
    assert streamed.returncode == 0, streamed.stderr[-2000:]
    assert "inspector: streamed" in streamed.stderr
    html = page.read_text()
    assert "CPU-bound" in html and "Timeline" in html
    assert "Read a window of time at a time (streamed" in html


def test_a_stream_at_full_resolution_says_what_the_whole_read_says(
        two_process_recording: Path, gil_threads_recording: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A stream asked for on a file whose rows fit folds nothing: the diagnosis is the whole
    read's, key for key, on real recordings (windows, carried samples and spans), in each
    format (version 1 and 2 keep samples, spans or both as rows, read by time). The command
    runs in this process (its output is what is compared; the tests above run it as a
    program)."""
    from v1 import as_version_1, as_version_2

    def summary_json(*args: str) -> dict[str, Any]:
        status = main(["summary", "--json", *args])
        out = capsys.readouterr()
        assert status == 0, out.err
        return dict(json.loads(out.out))

    older = (as_version_1(two_process_recording, tmp_path / "v1.sqlite"),
             as_version_2(gil_threads_recording, tmp_path / "v2.sqlite"))
    for recording in (two_process_recording, gil_threads_recording, *older):
        whole = summary_json(str(recording))
        data = summary_json("--stream", str(recording))
        plan = data.pop("streamed")
        assert plan["streamed"] is True and plan["bin_s"] == 0 and plan["stack_bin_s"] == 0
        assert data == whole, recording.name


def test_windows_of_half_a_second_fold_nothing_away(
        two_process_recording: Path, gil_threads_recording: Path, tmp_path: Path) -> None:
    """Many windows, bins as recorded: each thread's samples and spans carried across the
    seams give every interval, state and stack the whole read gives."""
    from v1 import as_version_1

    import inspector
    from inspector.analyze import diagnose
    from inspector.bounded import Plan, streamed
    from inspector.text.json import diagnosis_data

    older = as_version_1(two_process_recording, tmp_path / "v1.sqlite")
    for recording in (two_process_recording, gil_threads_recording, older):
        given = streamed(recording, Plan(True, 0, 0, window_s=0.5))
        whole = diagnose(inspector.load(recording))
        assert diagnosis_data(diagnose(given.recording, given.states, loops=given.loops)) \
            == diagnosis_data(whole), recording.name


def test_a_recording_that_fits_is_read_whole_as_before(two_process_recording: Path) -> None:
    import inspector
    from inspector.analyze import diagnose
    from inspector.text.json import DIAGNOSIS_JSON

    out = inspector_cli("summary", "--json", str(two_process_recording))
    assert out.returncode == 0 and "streamed" not in out.stderr
    assert out.stdout == DIAGNOSIS_JSON.render(diagnose(inspector.load(two_process_recording)))


def test_a_bad_memory_budget_is_one_line(two_process_recording: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    # an argument check, in this process (the refusal below runs as a program)
    status = main(["summary", "--memory-budget", "-5", str(two_process_recording)])
    err = capsys.readouterr().err
    assert status != 0
    assert err.strip().count("\n") == 0 and "memory budget" in err


def test_a_streamed_bomb_is_refused_as_the_whole_read_refuses_it(
        two_process_recording: Path, tmp_path: Path) -> None:
    """Blocks that claim a million rows in a small file, all of one time (one window): the
    stream refuses them before decoding, in the words load() uses."""
    from crafted import ManyBlocks, crafted

    bomb = crafted(two_process_recording, tmp_path / "bomb.sqlite", [ManyBlocks(16)])
    out = inspector_cli("summary", "--stream", str(bomb))
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "rows out of its blocks" in out.stderr and out.stderr.count("\n") == 1


def test_a_blocked_event_loop_cut_by_seams_is_found_once(tmp_path: Path) -> None:
    """Windows of 0.3-0.7 s cut asyncio_blocked.py's 0.4-s blocks (at ~0.5 and ~1.1 s): the
    streamed read finds each once, as the whole read does, with the same judgement. (In
    a format-1 copy: a format-4 file this short is one block a table, read in one window.)"""
    from v1 import as_version_1

    import inspector
    from inspector.analyze import diagnose
    from inspector.bounded import Plan, streamed

    out = tmp_path / "loop.sqlite"
    proc = subprocess.run([sys.executable, "-m", "inspector", "record", "-q", "-o", str(out),
                           "--", sys.executable, str(WORKLOADS / "asyncio_blocked.py")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    older = as_version_1(out, tmp_path / "v1.sqlite")
    read = diagnose(inspector.load(older))
    # (on a busy machine the computing block can be judged starved instead: both are kept)
    whole = (read.event_loop_blocks, read.loop_starved)
    assert whole[0], "no blocked loop found: the test proves nothing"
    windows = (0.3, 0.5, 0.7)
    assert any(b.start_s < w * k < b.start_s + b.duration_s for w in windows
               for k in range(1, 10) for b in whole[0] + whole[1]), \
        "no seam cuts a block: the test proves nothing"
    for window_s in windows:
        given = streamed(older, Plan(True, 0, 0, window_s=window_s))
        found = diagnose(given.recording, given.states, loops=given.loops)
        assert (found.event_loop_blocks, found.loop_starved) == whole, window_s


def test_windows_whose_text_columns_hold_different_kinds_of_categories_join() -> None:
    """A window whose text column held nothing has categories of another dtype (float, for a
    column of NaN): the windows still join, as one categorical of every window's texts. Seen
    once in the seam test above, as `TypeError: dtype of categories must be the same`."""
    import importlib

    import numpy as np
    import pandas as pd

    fold = importlib.import_module("inspector.analyze.fold")
    texts = pd.DataFrame({"stack": pd.Categorical(["a", "b"]), "n": [1, 2]})
    empty = pd.DataFrame({"stack": pd.Categorical([np.nan], categories=pd.Index([], dtype=float)),
                          "n": [3]})
    more = pd.DataFrame({"stack": pd.Categorical(["c", "a"]), "n": [4, 5]})
    joined = fold._joined(texts, empty, more)
    assert isinstance(joined["stack"].dtype, pd.CategoricalDtype)
    assert joined["stack"].tolist()[:2] + joined["stack"].tolist()[3:] == ["a", "b", "c", "a"]
    assert pd.isna(joined["stack"].iloc[2]) and joined["n"].tolist() == [1, 2, 3, 4, 5]
