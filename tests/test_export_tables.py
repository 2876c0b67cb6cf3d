"""`inspector export --format csv|parquet`: a real recording of four GIL-bound threads
(tests/workloads/gil_threads.py, with Python stacks) exported both ways and read back by
DuckDB, polars and pandas: every table's rows, its values and types, and the recipes of
docs/export.md, run exactly as that file writes them and checked against load() and the
diagnosis.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import shutil
import sqlite3
import stat
import sys
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest

import inspector
from inspector.analyze import diagnose
from inspector.cli import main
from inspector.export.tables import TABLES, file_names, write_tables
from inspector.recording.meta_json import meta_to_json

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "export.md"
RECIPES_HEADING = "## csv and parquet: the tables, for SQL and DataFrames"
FORMATS = ("csv", "parquet")
# What each recipe of docs/export.md computes (the name its block binds), by its first line.
RECIPES = {
    "# DuckDB: CPU seconds per thread (Parquet)": "cpu",
    "# DuckDB: the syscalls each thread was sampled in (CSV)": "waits",
    "# polars: the Python frames the threads were seen in longest (Parquet)": "leaves",
    "# polars: each process's peak memory (CSV)": "peak",
    "# pandas: the tables as load() gives them (Parquet)": "stacks",
    "# pandas: the command lines, the meta and wall-clock times (CSV)": "samples",
}


def _export(*args: str) -> tuple[int, str]:
    """`inspector export ARGS` run by the CLI's own main() here (a new interpreter would
    spend a second importing pandas): its exit status and what it printed on stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main(["export", *args])
    return status, err.getvalue()


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory, gil_threads_recording: Path) -> Path:
    """x.sqlite, named as the recipes of docs/export.md name it (a copy of the session's
    recording of gil_threads.py), exported both ways to where `inspector export` puts them by
    default: x-csv/ and x-parquet/ beside it."""
    path = Path(shutil.copy2(gil_threads_recording, tmp_path_factory.mktemp("tables") / "x.sqlite"))
    for fmt in FORMATS:
        status, err = _export(str(path), "--format", fmt)
        assert status == 0, err
        assert err == f"inspector: {fmt} export written to {path.parent / ('x-' + fmt)}/ " \
                      f"(10 files, {_size(path.parent / ('x-' + fmt)):,} bytes)\n"
    return path


def _size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir())


@pytest.fixture(scope="module")
def rec(recording: Path) -> inspector.Recording:
    return inspector.load(recording)


def _out(recording: Path, fmt: str) -> Path:
    return recording.with_name(f"x-{fmt}")


def _file(recording: Path, fmt: str, table: str) -> str:
    return str(_out(recording, fmt) / f"{table}.{fmt}")


def _sql(query: str) -> list[tuple[Any, ...]]:
    relation = duckdb.sql(query)
    assert relation is not None
    return relation.fetchall()


def _recipes() -> dict[str, str]:
    """The Python blocks of docs/export.md's csv and parquet section, by their first line."""
    section = DOCS.read_text().split(RECIPES_HEADING, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```python\n(.*?)^```$", section, flags=re.S | re.M)
    return {block.splitlines()[0]: block for block in blocks}


@pytest.fixture(scope="module")
def recipes(recording: Path) -> dict[str, Any]:
    """What each recipe computed, run where the exports are (their paths are relative)."""
    found = _recipes()
    assert set(found) == set(RECIPES), "docs/export.md's recipes and this test's list differ"
    results = {}
    here = os.getcwd()
    os.chdir(recording.parent)
    try:
        for title, code in found.items():
            namespace: dict[str, Any] = {}
            exec(compile(code, f"docs/export.md: {title}", "exec"), namespace)
            results[title] = namespace[RECIPES[title]]
    finally:
        os.chdir(here)
    return results


def test_an_export_is_every_table_and_meta_json_private(recording: Path,
                                                        rec: inspector.Recording) -> None:
    assert not rec.stacks.empty and not rec.thread_samples.empty
    for fmt in FORMATS:
        out = _out(recording, fmt)
        assert sorted(os.listdir(out)) == sorted(file_names(fmt))
        assert stat.S_IMODE(out.stat().st_mode) == 0o700
        for name in os.listdir(out):
            assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
        assert json.loads((out / "meta.json").read_text()) == meta_to_json(rec.meta)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("table", TABLES)
def test_duckdb_polars_and_pandas_read_every_row(recording: Path, rec: inspector.Recording,
                                                 fmt: str, table: str) -> None:
    path = _file(recording, fmt, table)
    rows = len(getattr(rec, table))
    assert _sql(f"SELECT count(*) FROM '{path}'") == [(rows,)]
    polars = pl.read_parquet(path) if fmt == "parquet" else pl.read_csv(path)
    assert polars.height == rows
    pandas = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)
    assert len(pandas) == rows
    assert list(pandas.columns) == list(getattr(rec, table).columns)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_threads_tid_and_name_and_a_samples_time_read_back_exactly(
        recording: Path, rec: inspector.Recording, fmt: str) -> None:
    arith = rec.threads[rec.threads["name"] == "arith-2"].iloc[0]
    sql = f"SELECT tid FROM '{_file(recording, fmt, 'threads')}' WHERE name = 'arith-2'"
    assert _sql(sql) == [(int(arith["tid"]),)]
    sample = rec.thread_samples[rec.thread_samples["tid"] == arith["tid"]].iloc[3]
    read = pl.read_parquet if fmt == "parquet" else pl.read_csv
    samples = read(_file(recording, fmt, "thread_samples")).filter(pl.col("tid") == arith["tid"])
    assert samples["t_s"][3] == sample["t_s"]      # bit-identical, CSV too
    assert samples["on_cpu_s"][3] == sample["on_cpu_s"]
    assert samples["state"][3] == sample["state"]


def test_parquet_keeps_every_type(recording: Path) -> None:
    described = _sql(f"DESCRIBE SELECT * FROM '{_file(recording, 'parquet', 'processes')}'")
    types = {row[0]: row[1] for row in described}
    assert (types["pid"], types["parent_proc_id"], types["start_s"], types["is_python"],
            types["cmdline"], types["name"]) == (
        "BIGINT", "BIGINT", "DOUBLE", "BOOLEAN", "VARCHAR[]", "VARCHAR")
    samples = pl.read_parquet(_file(recording, "parquet", "thread_samples")).schema
    # futex_kind: NULL but in futex waits, an integer all the same; state a categorical in
    # load(), a plain string here (polars would read a dictionary type as a Categorical)
    assert (samples["futex_kind"], samples["state"], samples["t_s"]) == (
        pl.Int64, pl.String, pl.Float64)
    # an empty table keeps its types: gil_samples has no rows without --gil-check
    gil = pl.read_parquet(_file(recording, "parquet", "gil_samples")).schema
    assert (gil["t_s"], gil["samples"], gil["thread_name"]) == (pl.Float64, pl.Int64, pl.String)


@pytest.mark.parametrize("table", TABLES)
def test_pandas_reads_parquet_back_as_load_gives_it(recording: Path, rec: inspector.Recording,
                                                    table: str) -> None:
    expected = getattr(rec, table)
    texts = [c for c in expected.columns if isinstance(expected[c].dtype, pd.CategoricalDtype)]
    read = pd.read_parquet(_file(recording, "parquet", table), read_dictionary=texts or None)
    if "cmdline" in expected.columns:
        read["cmdline"] = [list(v) for v in read["cmdline"]]
    pd.testing.assert_frame_equal(_texts_as_objects(read), _texts_as_objects(expected),
                                  check_dtype=False, check_categorical=False)


def _texts_as_objects(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as objects, None where missing: load() gives a column without any text
    as objects (None), pandas reads it back as str (NaN); both mean NULL."""
    out = frame.copy()
    for name in out.columns:
        if pd.api.types.is_string_dtype(out[name].dtype) \
                and not isinstance(out[name].dtype, pd.CategoricalDtype):
            out[name] = out[name].astype(object).where(out[name].notna(), None)
    return out


def test_csv_reads_back_as_load_gives_it(recording: Path, rec: inspector.Recording) -> None:
    for table in TABLES:
        expected = getattr(rec, table)
        converters = {"cmdline": json.loads} if "cmdline" in expected.columns else None
        read = pd.read_csv(_file(recording, "csv", table), converters=converters)
        for column in expected.columns:
            want = expected[column].astype(object).where(expected[column].notna(), None)
            got = read[column].astype(object).where(read[column].notna(), None)
            assert [_plain(v) for v in got] == [_plain(v) for v in want], (table, column)


def _plain(value: Any) -> Any:
    if isinstance(value, (bool, str, list)) or value is None:
        return value
    f = float(value)
    return int(f) if f.is_integer() else f


def test_duckdb_recipe_gives_each_threads_cpu_seconds_as_the_diagnosis(
        rec: inspector.Recording, recipes: dict[str, Any]) -> None:
    cpu = recipes["# DuckDB: CPU seconds per thread (Parquet)"]
    diag = {t.tid: t.cpu_s for t in diagnose(rec).threads}
    assert sorted(cpu["tid"]) == sorted(diag)
    for tid, cpu_s in zip(cpu["tid"], cpu["cpu_s"]):
        # the diagnosis rounds to the millisecond (and caps an interval's CPU at its
        # length, which reads of a busy thread late in a sampling round overstep)
        assert math.isclose(cpu_s, diag[tid], abs_tol=0.005), (tid, cpu_s, diag)
    assert sorted(cpu["name"]) == ["MainThread", "arith-0", "arith-1", "arith-2", "arith-3"]
    assert list(cpu["cpu_s"]) == sorted(cpu["cpu_s"], reverse=True)


def test_duckdb_recipe_counts_every_thread_sample_by_syscall(
        rec: inspector.Recording, recipes: dict[str, Any]) -> None:
    waits = recipes["# DuckDB: the syscalls each thread was sampled in (CSV)"]
    expected = rec.thread_samples.groupby(["pid", "tid", "syscall_name"], observed=True).size()
    got = waits.set_index(["pid", "tid", "syscall_name"])["samples"]
    assert {k: int(v) for k, v in got.items()} == {k: int(v) for k, v in expected.items()}


def test_polars_recipe_sums_each_leaf_frames_seconds(rec: inspector.Recording,
                                                     recipes: dict[str, Any]) -> None:
    leaves = recipes["# polars: the Python frames the threads were seen in longest (Parquet)"]
    stacks = rec.stacks.assign(leaf=rec.stacks["stack"].astype(str).str.split(";").str[-1])
    expected = stacks.groupby("leaf")["duration_s"].sum()
    got = leaves.group_by("leaf").agg(pl.col("duration_s").sum())
    assert dict(zip(got["leaf"], got["duration_s"])) == pytest.approx(expected.to_dict())
    # sorted by time, a worker thread's first leaf is the loop the workload runs
    worker = leaves.filter(pl.col("thread_name") == "arith-0")
    assert worker["leaf"][0].startswith("arithmetic (")


def test_polars_recipe_gives_each_processes_peak_memory(rec: inspector.Recording,
                                                        recipes: dict[str, Any]) -> None:
    peak = recipes["# polars: each process's peak memory (CSV)"]
    expected = rec.process_samples.groupby("proc_id")["rss_bytes"].max()
    assert dict(zip(peak["proc_id"], peak["peak_rss_bytes"])) == expected.to_dict()
    assert list(peak["pid"]) == [int(rec.processes["pid"].iloc[0])]


def test_pandas_recipes_give_loads_frames_cmdlines_and_wall_clock(
        rec: inspector.Recording, recipes: dict[str, Any]) -> None:
    stacks = recipes["# pandas: the tables as load() gives them (Parquet)"]
    pd.testing.assert_frame_equal(stacks, rec.stacks, check_categorical=False)
    samples = recipes["# pandas: the command lines, the meta and wall-clock times (CSV)"]
    first = pd.Timestamp(rec.meta.start_time_unix + rec.thread_samples["t_s"].iloc[0],
                         unit="s", tz="UTC")
    assert abs(samples["time"].iloc[0] - first) < pd.Timedelta(microseconds=1)


def test_csv_written_in_chunks_is_the_same_file(tmp_path: Path, recording: Path,
                                                rec: inspector.Recording) -> None:
    write_tables(rec, "csv", tmp_path / "small", chunk_rows=7)
    for name in file_names("csv"):
        assert (tmp_path / "small" / name).read_bytes() \
            == (_out(recording, "csv") / name).read_bytes(), name
    write_tables(rec, "parquet", tmp_path / "groups", chunk_rows=7)
    path = tmp_path / "groups" / "thread_samples.parquet"
    assert pq.ParquetFile(path).num_row_groups == math.ceil(len(rec.thread_samples) / 7)
    pd.testing.assert_frame_equal(pd.read_parquet(path), pd.read_parquet(
        _file(recording, "parquet", "thread_samples")))


def test_an_earlier_export_is_replaced_anything_else_refused(tmp_path: Path,
                                                             recording: Path) -> None:
    out = tmp_path / "out"
    assert _export(str(recording), "-f", "csv", "-o", str(out))[0] == 0
    first = (out / "threads.csv").read_bytes()
    (out / "threads.csv").write_text("stale")
    assert _export(str(recording), "-f", "csv", "-o", str(out))[0] == 0
    assert (out / "threads.csv").read_bytes() == first

    # another format's export, a foreign file, a file where the directory goes: refused,
    # in one line, and left as they were
    assert _export(str(recording), "-f", "parquet", "-o", str(out)) == (1, (
        f"inspector: export: {out} is not empty and not a parquet export (it holds "
        "gil_samples.csv, machine_samples.csv, problems.csv, ...); left as it is: give a new "
        "or empty directory with -o\n"))
    assert sorted(os.listdir(out)) == sorted(file_names("csv"))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    status, err = _export(str(recording), "-f", "csv", "-o", str(mine))
    assert status == 1 and err.count("\n") == 1 and "(it holds notes.txt)" in err
    assert os.listdir(mine) == ["notes.txt"]
    (mine / "notes.txt").unlink()
    (mine / "meta.json").write_text('{"mine": true}')   # our name, not our file
    status, err = _export(str(recording), "-f", "csv", "-o", str(mine))
    assert status == 1 and "(no meta.json)" in err
    assert (mine / "meta.json").read_text() == '{"mine": true}'
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    status, err = _export(str(recording), "-f", "parquet", "-o", str(a_file))
    assert status == 1 and "exists and is not a directory" in err
    assert a_file.read_text() == "mine"


def test_no_stdout_for_a_directory_and_no_parquet_without_pyarrow(
        tmp_path: Path, recording: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    status, err = _export(str(recording), "-f", "csv", "-o", "-")
    assert status == 1 and capsys.readouterr().out == ""
    assert "writes a directory of files, not standard output" in err
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(recording.read_bytes()[:4096])
    status, err = _export(str(broken), "-f", "csv")
    assert status == 1 and err.count("\n") == 1 and str(broken) in err
    assert not (tmp_path / "broken-csv").exists()   # refused before anything is made
    monkeypatch.setitem(sys.modules, "pyarrow", None)   # `import pyarrow` fails from here on
    out = tmp_path / "p"
    assert _export(str(recording), "-f", "parquet", "-o", str(out)) == (1, (
        "inspector: export: --format parquet needs pyarrow: pip install 'inspector[parquet]'\n"))
    assert not out.exists()


def test_recording_format_says_which_tables_sql_reads(recording: Path,
                                                      rec: inspector.Recording) -> None:
    """docs/recording-format.md's table of tables, against the file: a table it calls rows
    holds in SQL every row load() gives; one it calls blocks holds fewer (none, here)."""
    section = (ROOT / "docs" / "recording-format.md").read_text() \
        .split("## Which tables SQL reads directly", 1)[1].split("\n## ", 1)[0]
    said = {m[0]: m[1] for m in re.findall(r"^\| `(\w+)` \| (\*\*blocks\*\*|rows)", section,
                                           flags=re.M)}
    assert set(said) == {*TABLES, "meta"}
    db = sqlite3.connect(f"file:{recording}?mode=ro", uri=True)
    try:
        for table, storage in said.items():
            in_sql = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            if table == "meta":   # one row per key: load() makes them one record
                assert storage == "rows" and in_sql > 0
                continue
            loaded = len(getattr(rec, table))
            if storage == "rows":
                assert in_sql == loaded, table
            else:
                assert in_sql < loaded, table
    finally:
        db.close()
