"""The recording reader on damaged files: truncated, bytes flipped, pages overwritten, values
of the wrong type. `inspector.load` must return a Recording or raise RecordingError with a
one-line message; nothing else may come out of it (issue 7)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

import inspector
from inspector.recording import Meta, RecordingError

PY = sys.executable
WORKLOADS = Path(__file__).parent / "workloads"
EXAMPLES = 150  # each example loads a ~100 KB file in ~20 ms: a few seconds per test
PAGE = 4096


@pytest.fixture(scope="module")
def recording(two_process_recording: Path) -> bytes:
    """A real recording: two processes, threads, stacks, problems."""
    return two_process_recording.read_bytes()


def check(path: Path) -> None:
    try:
        rec = inspector.load(path)
    except RecordingError as e:
        assert "\n" not in str(e), str(e)
        return
    # what loads must be usable as documented
    assert isinstance(rec.meta, Meta)
    float(rec.duration_s)
    for frame in (rec.process_samples, rec.thread_samples):
        assert "cpu_percent" in frame.columns


SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@SETTINGS
@given(cut=st.floats(min_value=0.0, max_value=1.0))
def test_truncated_files(tmp_path: Path, recording: bytes, cut: float) -> None:
    path = tmp_path / "truncated.sqlite"
    path.write_bytes(recording[: int(len(recording) * cut)])
    check(path)


@SETTINGS
@given(flips=st.lists(st.tuples(st.floats(min_value=0.0, max_value=1.0),
                                st.integers(min_value=1, max_value=255)),
                      min_size=1, max_size=12))
def test_flipped_bytes(tmp_path: Path, recording: bytes,
                       flips: list[tuple[float, int]]) -> None:
    data = bytearray(recording)
    for where, mask in flips:
        i = min(int(where * len(data)), len(data) - 1)
        data[i] ^= mask
    path = tmp_path / "flipped.sqlite"
    path.write_bytes(bytes(data))
    check(path)


@SETTINGS
@given(page=st.integers(min_value=0, max_value=200), offset=st.integers(0, PAGE - 1),
       junk=st.binary(min_size=1, max_size=512))
def test_overwritten_runs_of_bytes(tmp_path: Path, recording: bytes, page: int, offset: int,
                                   junk: bytes) -> None:
    data = bytearray(recording)
    start = min(page * PAGE + offset, len(data) - 1)
    data[start:start + len(junk)] = junk
    path = tmp_path / "overwritten.sqlite"
    path.write_bytes(bytes(data[: len(recording)]))
    check(path)


TABLE_COLUMNS = {
    "meta": ["value"],
    "processes": ["pid", "cmdline", "start_s", "is_python", "is_target", "exit_code"],
    "threads": ["tid", "name", "start_s"],
    "process_samples": ["t_s", "cpu_user_s", "rss_bytes", "num_threads"],
    "thread_samples": ["t_s", "cpu_user_s", "cpu_system_s", "syscall", "tid"],
    "thread_blocks": ["rows", "texts", "data", "t_first_s"],   # format 2's samples
    "process_blocks": ["rows", "texts", "data", "t_last_s"],  # format 3's (4: keys in data)
    "stack_blocks": ["rows", "texts", "data", "t_first_s"],
    "machine_blocks": ["rows", "texts", "data"],
    "stacks": ["t_s", "duration_s", "stack_id", "samples"],
    "stack_frames": ["text", "frame_id"],                      # format 5's stacks
    "stack_nodes": ["node_id", "parent_id", "frame_id", "stack_id"],
    "problems": ["t_s", "kind"],
}
ODD_VALUES = st.one_of(
    st.none(), st.integers(min_value=-2**63, max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.binary(max_size=20), st.sampled_from(["[]", "{}", "[1, 2]", "null", '"x"', "1e999",
                                             "[\"a\", 3]", "true"]),
)


@SETTINGS
@given(table=st.sampled_from(sorted(TABLE_COLUMNS)), data=st.data())
def test_values_of_the_wrong_type(tmp_path: Path, recording: bytes, table: str,
                                  data: st.DataObject) -> None:
    # SQLite keeps any value in any column: a damaged or hand-edited file may hold text
    # where a number belongs, or JSON of the wrong shape.
    column = data.draw(st.sampled_from(TABLE_COLUMNS[table]))
    value = data.draw(ODD_VALUES)
    path = tmp_path / "odd.sqlite"
    path.write_bytes(recording)
    with closing(sqlite3.connect(path)) as db:
        try:
            db.execute(f"UPDATE {table} SET {column} = ? WHERE rowid IN "
                       f"(SELECT rowid FROM {table} LIMIT 3)", (value,))
        except sqlite3.IntegrityError:
            reject()  # NOT NULL, UNIQUE: SQLite itself keeps such values out of the file
        db.commit()
    check(path)


@pytest.mark.parametrize("key, value", [
    ("format_version", "2.5"), ("format_version", '"1"'), ("format_version", "true"),
    ("format_version", "null"), ("format", "null"), ("duration_s", '"long"'),
    ("duration_s", "[1]"), ("cpu_count", '"many"'), ("cpu_count", "0"), ("complete", "1"),
])
def test_meta_values_of_the_wrong_type(tmp_path: Path, recording: bytes, key: str,
                                       value: str) -> None:
    path = tmp_path / "meta.sqlite"
    path.write_bytes(recording)
    with closing(sqlite3.connect(path)) as db:
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        db.commit()
    check(path)


def test_a_recording_left_in_wal_mode_by_a_killed_recorder_loads(tmp_path: Path,
                                                                 recording: bytes) -> None:
    # What a SIGKILLed recorder leaves: the main file plus a -wal holding the last commits.
    path = tmp_path / "wal.sqlite"
    path.write_bytes(recording)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('marker', ?)",
               (json.dumps("in the wal"),))
    db.commit()
    shutil.copy(path, tmp_path / "copy.sqlite")
    shutil.copy(str(path) + "-wal", str(tmp_path / "copy.sqlite") + "-wal")
    db.close()
    assert inspector.load(tmp_path / "copy.sqlite").meta.extra["marker"] == "in the wal"
