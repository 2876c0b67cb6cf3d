"""load() reads the big tables column by column (numbers fetched by Python, integers and
few-valued texts by SQLite in a second thread, matched up by rowid). Whatever route a column
takes, the frames must hold exactly what the file holds: checked here against a plain
SELECT, on files written through the recorder's own writer and then bent out of the usual
shape (a view, rows stored out of time order, more thread names than are read as codes).
Samples and spans are checked in a version-1 file (rows in thread_samples, process_samples
and stacks, as the writer put them before blocks), and the blocks of the same rows against
it."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from v1 import as_version_2, with_thread_rows

import inspector
from inspector.recording import (
    PROCESS_SAMPLE_COLUMNS,
    THREAD_SAMPLE_COLUMNS,
    ProcessRecord,
    RecordingError,
    RecordingWriter,
)
from inspector.recording.schema import BLOCK_NUMBERS, PROCESS_BLOCKS, STACK_COLUMNS

THREADS = 300  # more distinct thread names than the reader turns into codes in SQLite
TICKS = 12


@pytest.fixture(scope="module")
def written(written_v2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same recording in version 1: its thread samples rows of thread_samples, as the
    writer gave them (times not rounded to the microsecond), its process samples and spans
    rows as load() gives them."""
    path = tmp_path_factory.mktemp("columns") / "base-v1.sqlite"
    return with_thread_rows(as_version_2(written_v2, path), _THREAD_ROWS)


_THREAD_ROWS: list[tuple] = []
_PROCESS_ROWS: list[tuple] = []
_STACK_ROWS: list[tuple] = []


@pytest.fixture(scope="module")
def written_v2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two processes, THREADS threads, NULLs where the recorder writes them."""
    path = tmp_path_factory.mktemp("columns") / "base.sqlite"
    rng = np.random.default_rng(7)
    w = RecordingWriter(path)
    w.set_meta({"command": ["python", "x.py"], "cpu_count": 2, "interval_s": 0.1})
    for proc_id in (1, 2):
        w.add_process(ProcessRecord(proc_id, 100 * proc_id, None, None, "python", ["python"],
                                    None, 0.0, 0.0, is_python=True))
    tids = [(1 + t % 2, 100 * (1 + t % 2) + t) for t in range(THREADS)]
    for proc_id, tid in tids:
        w.upsert_thread(proc_id, 100 * proc_id, tid, "python", 0.0)
        w.name_thread(proc_id, tid, f"worker-{tid} ‹{tid % 7}›")
    cpu = np.zeros(THREADS)
    for tick in range(1, TICKS + 1):
        t_s = tick * 0.1 + 1e-9 * tick  # not a round number: exactness is checked
        cpu += rng.random(THREADS) * 0.05
        rows = [
            (t_s, proc_id, 100 * proc_id, tid, round(cpu[i], 2), 0.01 * tick,
             "R" if i % 3 else "S", None if i % 5 == 0 else 202,
             None if i % 5 == 0 else ("futex" if i % 3 == 0 else "running"),
             float(cpu[i]) + 1e-7, None if i % 4 == 0 else 0.001 * tick,
             (1 if i % 2 else 2) if i % 3 == 0 and i % 5 else None)
            for i, (proc_id, tid) in enumerate(tids)]
        _THREAD_ROWS.extend(rows)
        w.add_thread_samples(rows)
        processes = [
            (t_s, proc_id, 100 * proc_id, 0.1 * tick, 0.0, 2**40 + tick,
             None if tick % 2 else 7 * tick, THREADS // 2, tick, 0, 2**53 + tick, 0, "R")
            for proc_id in (1, 2)]
        _PROCESS_ROWS.extend(processes)
        w.add_process_samples(processes)
        spans = [
            (t_s - 0.05, 0.05, proc_id, 100 * proc_id, tid, f"worker-{tid} ‹{tid % 7}›",
             f"main (/a.py:1);work_{i % 9} (/a.py:{i % 4 + 2})", 5, None)
            for i, (proc_id, tid) in enumerate(tids)]
        _STACK_ROWS.extend(spans)
        w.add_stacks(spans)
    w.set_meta({"duration_s": TICKS * 0.1, "complete": True})
    w.close()
    return path


def _plain(path: Path, sql: str) -> pd.DataFrame:
    with closing(sqlite3.connect(path)) as db:
        cur = db.execute(sql)
        return pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description],
                            dtype=object)


def _as_plain(df: pd.DataFrame) -> pd.DataFrame:
    """Values as Python objects, NaN as None: what a plain SELECT gives."""
    out = df.astype(object)
    return out.where(df.notna(), None).reset_index(drop=True)


def _same_values(loaded: pd.DataFrame, plain: pd.DataFrame) -> None:
    """Equal value for value (an integer column with NULLs loads as floats: 202.0 == 202)."""
    assert list(loaded.columns) == list(plain.columns)
    for name in plain.columns:
        assert _as_plain(loaded[[name]])[name].tolist() == plain[name].tolist(), name


def _check_against_file(path: Path) -> None:
    rec = inspector.load(path)
    samples = ", ".join(THREAD_SAMPLE_COLUMNS)
    _same_values(rec.thread_samples[list(THREAD_SAMPLE_COLUMNS)],
                 _plain(path, f"SELECT {samples} FROM thread_samples"
                              " ORDER BY proc_id, tid, t_s, rowid"))
    _same_values(rec.process_samples[list(PROCESS_SAMPLE_COLUMNS)],
                 _plain(path, f"SELECT {', '.join(PROCESS_SAMPLE_COLUMNS)} FROM process_samples"
                              " ORDER BY proc_id, t_s, rowid"))
    _same_values(rec.stacks,
                 _plain(path, "SELECT s.*, t.text AS stack FROM stacks s LEFT JOIN"
                              " stack_texts t USING (stack_id) ORDER BY s.t_s, s.rowid"))


def _copy(written: Path, tmp_path: Path, sql: str) -> Path:
    path = tmp_path / "variant.sqlite"
    shutil.copy(written, path)
    with closing(sqlite3.connect(path)) as db:
        db.executescript(sql)
        db.commit()
    return path


def test_every_column_holds_what_the_file_holds(written: Path) -> None:
    _check_against_file(written)
    rec = inspector.load(written)
    # numbers keep their kind: NULLs make a column of integers float64, never text
    assert rec.thread_samples["tid"].dtype == np.int64
    assert rec.thread_samples["syscall"].dtype == np.float64
    assert rec.process_samples["read_bytes"].dtype == np.int64
    assert rec.process_samples["read_bytes"].max() == 2**53 + TICKS  # past float64's ints
    assert rec.thread_samples["t_s"].dtype == np.float64


def test_blocks_load_as_the_version_1_rows_to_the_stored_precision(
        written: Path, written_v2: Path) -> None:
    """Version 2 keeps t_s to the microsecond and the cumulative seconds to the nanosecond;
    every other value, every type and the row order are as version 1 gives them."""
    v1, v2 = inspector.load(written).thread_samples, inspector.load(written_v2).thread_samples
    assert list(v2.columns) == list(v1.columns) and len(v2) == len(v1) == TICKS * THREADS
    assert (v2.dtypes == v1.dtypes).all(), (v1.dtypes, v2.dtypes)
    for name, scale in BLOCK_NUMBERS:
        a, b = v1[name].to_numpy(dtype=float), v2[name].to_numpy(dtype=float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), name
        assert np.nanmax(np.abs(a - b), initial=0.0) <= 0.5 / scale + 1e-12, name
    for name in ("proc_id", "pid", "tid", "state", "syscall_name"):
        pd.testing.assert_series_equal(v1[name], v2[name])
    # the cumulative CPU is whole clock ticks, as the sampler reads them: exact
    assert v2["cpu_user_s"].equals(v1["cpu_user_s"])
    assert np.allclose(v1["cpu_percent"], v2["cpu_percent"], equal_nan=True, atol=1e-3)
    with closing(sqlite3.connect(written_v2)) as db:
        assert db.execute("SELECT count(*) FROM thread_samples").fetchone() == (0,)
        blocks, rows = db.execute("SELECT count(*), sum(rows) FROM thread_blocks").fetchone()
    assert rows == TICKS * THREADS and blocks == 1  # every thread's in one once closed


def test_process_samples_and_spans_in_blocks_load_as_they_were_written(
        written_v2: Path) -> None:
    """Version 3's process and stack blocks give back the rows the writer was given: times
    to the microsecond, CPU seconds to the nanosecond, every other value exact (2**53 + k
    included), NULLs as NULLs."""
    rec = inspector.load(written_v2)
    ps = rec.process_samples
    given = pd.DataFrame(_PROCESS_ROWS, columns=list(PROCESS_BLOCKS.columns)).sort_values(
        ["proc_id", "t_s"], kind="stable").reset_index(drop=True)
    assert len(ps) == len(given)
    assert np.abs(ps["t_s"] - given["t_s"]).max() <= 0.5e-6
    for name, scale in PROCESS_BLOCKS.numbers[1:]:  # seconds to the nanosecond
        got, want = _as_plain(ps[[name]])[name].tolist(), _as_plain(given[[name]])[name].tolist()
        if scale == 1:
            assert got == want, name
        else:
            assert np.allclose(got, want, rtol=0, atol=0.5 / scale), name
    for name in ("proc_id", "pid", "state"):
        assert ps[name].astype(object).tolist() == given[name].tolist(), name
    assert ps["read_bytes"].dtype == np.int64 and ps["read_bytes"].max() == 2**53 + TICKS
    # in time order (spans at one time: by thread, as their blocks are, not as given)
    assert rec.stacks["t_s"].is_monotonic_increasing
    spans = rec.stacks.sort_values(["t_s", "tid"], kind="stable")
    by_time = sorted(_STACK_ROWS, key=lambda r: (round(r[0], 6), r[4]))
    assert len(spans) == len(by_time)
    assert np.abs(spans["t_s"].to_numpy() - [r[0] for r in by_time]).max() <= 0.5e-6
    assert spans["stack"].tolist() == [r[6] for r in by_time]
    assert spans["thread_name"].tolist() == [r[5] for r in by_time]
    assert spans["samples"].tolist() == [5] * len(by_time)
    assert spans["owns_gil"].isna().all() and list(spans.columns) == [*STACK_COLUMNS, "stack"]
    with closing(sqlite3.connect(written_v2)) as db:
        for table in ("process_samples", "stacks", "machine_samples"):
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table


def test_text_columns_are_categoricals_that_behave_like_strings(written: Path) -> None:
    ts = inspector.load(written).thread_samples
    assert isinstance(ts["syscall_name"].dtype, pd.CategoricalDtype)
    assert (ts["state"] == "S").sum() == TICKS * len(range(0, THREADS, 3))
    assert ts["syscall_name"].isna().sum() == TICKS * len(range(0, THREADS, 5))
    assert ts["syscall_name"].str.startswith("fu", na=False).sum() > 0


def test_rows_stored_out_of_time_order_load_the_same(written: Path, tmp_path: Path) -> None:
    _check_against_file(_copy(written, tmp_path, """
        CREATE TABLE shuffled AS SELECT * FROM thread_samples ORDER BY random();
        DELETE FROM thread_samples;
        INSERT INTO thread_samples SELECT * FROM shuffled;
        CREATE TABLE spans AS SELECT * FROM stacks ORDER BY random();
        DELETE FROM stacks;
        INSERT INTO stacks SELECT * FROM spans;
        DROP TABLE shuffled; DROP TABLE spans;"""))


def test_a_view_in_place_of_a_table_is_refused(written: Path, tmp_path: Path) -> None:
    # issue 14: a view is a query the file chooses (it could run without end): never run
    path = _copy(written, tmp_path, """
        ALTER TABLE thread_samples RENAME TO samples_stored;
        CREATE VIEW thread_samples AS SELECT * FROM samples_stored;""")
    with pytest.raises(inspector.RecordingError, match="thread_samples is not a table"):
        inspector.load(path)


def test_values_of_the_wrong_kind_take_the_checking_read(written: Path, tmp_path: Path) -> None:
    path = _copy(written, tmp_path,
                 "UPDATE thread_samples SET tid = 'eleven' WHERE rowid = 5;"
                 "UPDATE stacks SET thread_name = x'00ff' WHERE rowid = 3;")
    with pytest.raises(RecordingError, match="non-numeric values in tid"):
        inspector.load(path)
    path = _copy(written, tmp_path, "UPDATE thread_samples SET pid = 100.5 WHERE rowid = 5")
    assert 100.5 in set(inspector.load(path).thread_samples["pid"])


def test_no_reader_thread_outlives_load(written: Path, tmp_path: Path) -> None:
    inspector.load(written)
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(written.read_bytes()[:20000])
    with pytest.raises(RecordingError):
        inspector.load(bad)
    assert not [t for t in threading.enumerate() if t.name == "inspector-load"]
