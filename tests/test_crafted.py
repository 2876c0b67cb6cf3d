"""Issue 24, item 3: a crafted recording gives one error line or a result, never a
traceback, a hang or memory out of proportion to its size (tests/crafted.py makes them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from crafted import (
    ColumnValue,
    ManyBlocks,
    ManySpans,
    MetaValue,
    crafted,
)
from v1 import as_version_1

import inspector
from inspector.recording import RecordingError

PY = sys.executable
HANG_S = 120          # no crafted file needs more than a few seconds: this is a hang guard
MAX_ROWS_ENV = "INSPECTOR_MAX_ROWS"  # lifts the size limits (recording/limits.py)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real recording: two processes, a named thread, stacks, thread blocks."""
    out = tmp_path_factory.mktemp("crafted") / "base.sqlite"
    proc = subprocess.run(
        [PY, "-m", "inspector", "record", "-q", "-o", str(out), "--", PY, "-c",
         "import subprocess, sys, threading, time\n"
         "t = threading.Thread(target=time.sleep, args=(0.5,), name='napper'); t.start()\n"
         "subprocess.run([sys.executable, '-c', 'import time; time.sleep(0.3)'])\n"
         "end = time.monotonic() + 0.4\n"
         "while time.monotonic() < end: pass\n"],
        capture_output=True, text=True, timeout=HANG_S)
    assert proc.returncode == 0, proc.stderr
    rec = inspector.load(out)
    assert len(rec.processes) == 2 and not rec.stacks.empty and not rec.thread_samples.empty
    return out


@pytest.fixture(scope="module")
def base_v1(base: Path) -> Path:
    """The same recording as version 1 wrote it: thread samples as rows."""
    return as_version_1(base, base.with_name("base-v1.sqlite"))


# -- item 3: the crafted recordings of the issue ---------------------------------------------

def _blocks_bomb(base: Path, path: Path) -> Path:
    """16 valid blocks of 65,536 rows that never change: a million rows in ~170 KB."""
    return crafted(base, path, [ManyBlocks(16)])


def test_blocks_claiming_more_rows_than_the_file_can_hold_are_refused_before_decoding(
        base: Path, tmp_path: Path) -> None:
    path = _blocks_bomb(base, tmp_path / "bomb.sqlite")
    with pytest.raises(RecordingError, match=f"would make 1,048,[0-9]+ thread samples .* more"
                                             f" than a file of [0-9,]+ bytes holds .*"
                                             f"{MAX_ROWS_ENV}=") as e:
        inspector.load(path)
    assert "\n" not in str(e.value)


def test_the_row_limit_can_be_lifted_and_must_be_a_number(
        base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _blocks_bomb(base, tmp_path / "bomb.sqlite")
    monkeypatch.setenv(MAX_ROWS_ENV, str(2 << 20))
    assert len(inspector.load(path).thread_samples) > 1 << 20
    monkeypatch.setenv(MAX_ROWS_ENV, "lots")
    with pytest.raises(RecordingError, match=f"{MAX_ROWS_ENV}='lots': give a whole number"):
        inspector.load(path)
    monkeypatch.setenv(MAX_ROWS_ENV, "5")
    with pytest.raises(RecordingError, match=f"more than {MAX_ROWS_ENV} \\(5\\)"):
        inspector.load(base)


def test_spans_naming_one_deep_stack_over_and_over_are_refused(base: Path,
                                                                tmp_path: Path) -> None:
    # 3,000 frames in 33 KB of text, named by 20,000 spans of ~40 bytes each: 60 M frames
    # for the exports to walk, from a file of under 1 MB
    path = crafted(base, tmp_path / "deep.sqlite",
                   [ColumnValue("stack_texts", "text", "f (x.py:1);" * 3000, 1),
                    ManySpans(20_000)])
    with pytest.raises(RecordingError, match="stack frames over its spans, more than a file"):
        inspector.load(path)


@pytest.mark.parametrize("value", [
    "[" * 100_000 + "]" * 100_000,               # deeper than json can go
    '{"a": ' * 5000 + "1" + "}" * 5000,
    "[" * 40 + "]" * 40,                         # deeper than any recorder writes
])
@pytest.mark.parametrize("key", ["duration_s", "hostname", "a_newer_key"])
def test_meta_nested_too_deep_is_refused(base: Path, tmp_path: Path, key: str,
                                         value: str) -> None:
    path = crafted(base, tmp_path / "deep-meta.sqlite", [MetaValue(key, value)])
    with pytest.raises(RecordingError, match=f"corrupt recording .*meta value for '{key}'"):
        inspector.load(path)


@pytest.mark.parametrize("key, value, said", [
    ("start_time_unix", "1e300", "meta start_time_unix is 1e+300"),
    ("start_time_unix", "-5", "meta start_time_unix is -5"),
    ("start_time_unix", "1e12", "meta start_time_unix is 1000000000000.0"),
    ("duration_s", "1e300", "meta duration_s is 1e+300"),
    ("duration_s", "NaN", "meta duration_s is nan"),
    ("duration_s", "Infinity", "meta duration_s is inf"),
    (("settings", "interval_s"), "1e300", "meta settings.interval_s is 1e+300"),
    ("cpu_count", "1" + "0" * 30, "meta cpu_count is too large"),
    ("cpu_count", "1" + "0" * 5000, "bad meta value for 'cpu_count'"),  # json refuses it
    ("exit_code", "-" + "9" * 30, "meta exit_code is too large"),
    ("format_version", "9" * 30, "format version too large is newer"),
])
def test_meta_numbers_out_of_range_are_refused_naming_the_key(
        base: Path, tmp_path: Path, key: str | tuple[str, str], value: str, said: str) -> None:
    path = crafted(base, tmp_path / "number.sqlite", [MetaValue(key, value)])
    with pytest.raises(RecordingError) as e:
        inspector.load(path)
    assert said in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("table, column", [
    (table, column) for table, columns in {
        "processes": ("pid", "proc_id"), "threads": ("proc_id", "pid", "tid"),
        "process_samples": ("t_s", "proc_id", "pid"),
        "thread_samples": ("t_s", "proc_id", "pid", "tid"),
        "stacks": ("t_s", "pid", "tid", "stack_id"), "stack_texts": ("stack_id", "text"),
    }.items() for column in columns])
def test_a_null_key_column_is_refused(base: Path, base_v1: Path, tmp_path: Path, table: str,
                                      column: str) -> None:
    source = base_v1 if table == "thread_samples" else base
    path = crafted(source, tmp_path / "null.sqlite", [ColumnValue(table, column, None)])
    with pytest.raises(RecordingError, match=f"NULL in {table}.{column}"):
        inspector.load(path)


@pytest.mark.parametrize("table, column, value", [
    ("process_samples", "t_s", float("inf")), ("thread_samples", "cpu_user_s", float("-inf")),
    ("stacks", "duration_s", float("inf")), ("processes", "start_s", float("inf")),
    ("processes", "pid", 1e300), ("threads", "tid", -1e300),
])
def test_numbers_no_column_can_use_are_refused(base: Path, base_v1: Path, tmp_path: Path,
                                               table: str, column: str, value: float) -> None:
    source = base_v1 if table == "thread_samples" else base
    path = crafted(source, tmp_path / "odd.sqlite", [ColumnValue(table, column, value)])
    with pytest.raises(RecordingError, match=f"corrupt recording .*{table}.{column}"):
        inspector.load(path)
