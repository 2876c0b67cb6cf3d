"""`Recording.meta` is one typed record, read once from the file's untrusted JSON: a key
load() cannot do without, of the wrong kind or not finite, is a RecordingError naming it;
any other reads as None, and every consumer (summary, report, exports, merged parts) copes;
keys it does not know are kept; `meta_to_json` writes back what reads as the same Meta."""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
import sys
from contextlib import closing
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

import inspector
from inspector.cli import main as cli_main
from inspector.recording import Meta, RateChange, RecorderCpu, RecordingError
from inspector.recording.merge import Source, merge, parts
from inspector.recording.meta_json import REQUIRED_KEYS, meta_to_json, parse_meta

PY = sys.executable

# Every key a consumer may read without load() checking it first.
OPTIONAL_KEYS = ("mode", "cwd", "hostname", "platform", "machine", "recorder_python",
                 "inspector_version", "recorder_cpu", "interpreters", "left_running", "ticks",
                 "lagged_ticks", "ptrace_scope", "clk_tck", "target_pid", "target_start_s",
                 "target_exit_s", "backend")
STACKS_KEYS = ("enabled", "reason", "sampler", "py_spy_version", "mode", "chunk_s",
               "run_lengths_s", "budget_cores", "rate_hz_used", "rates_hz_used", "gil_rate_hz")
# JSON that is of the wrong kind, or not finite, for one key or another (Python's json module
# reads NaN and Infinity, so a file may hold them)
ODD_JSON = ["null", '"text"', "true", "-1", "NaN", "Infinity", "[1, \"a\"]", '{"a": 1}']


@pytest.fixture(scope="module")
def recording(two_process_recording: Path) -> Path:
    """A real recording (the session's, read and never changed: with_meta() copies it)."""
    return two_process_recording


def with_meta(source: Path, path: Path, **values: str) -> Path:
    """A copy of `source` whose meta keys are set to these JSON texts, as a hand-edited or
    damaged file may have them."""
    shutil.copy(source, path)
    with closing(sqlite3.connect(path)) as db:
        db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                       list(values.items()))
        db.commit()
    return path


def stored_meta(path: Path) -> dict[str, Any]:
    with closing(sqlite3.connect(path)) as db:
        return {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta")}


# The typed meta of every file every_consumer_runs has gone through in this module, by repr
# (which tells True from 1 and 1.0 from 1, as a consumer's text would).
COPED_WITH: set[str] = set()


def every_consumer_runs(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                        ) -> None:
    """summary (text and JSON), the report, compare and the three exports, through the
    CLI, on a file whose typed meta they have not yet read. A consumer reads the file's meta
    only as load() typed it (recording/reader.py: what is not the format's own checks goes
    through parse_meta), and these files differ from their source in meta alone: one whose
    meta reads as one already read through them (null, NaN and Infinity all read as None)
    would take the same path through every consumer again."""
    meta = repr(inspector.load(path).meta)
    if meta in COPED_WITH:
        return
    for argv in (["summary", str(path)], ["summary", "--json", str(path)],
                 ["report", str(path), "-o", str(tmp_path / "page.html")],
                 ["compare", str(path), str(path), "-o", str(tmp_path / "compare.html")],
                 *(["export", "-f", fmt, str(path), "-o", str(tmp_path / f"out.{fmt}")]
                   for fmt in ("perfetto", "speedscope", "pprof"))):
        status = cli_main(argv)
        err = capsys.readouterr().err
        assert status == 0, (argv, err)
        assert "Traceback" not in err
    COPED_WITH.add(meta)


def test_a_recording_reads_as_typed_fields(recording: Path) -> None:
    rec = inspector.load(recording)
    meta = rec.meta
    assert meta.mode == "launch" and meta.command[0] == PY and meta.complete is True
    assert meta.exit_code == 0 and meta.cpu_count == rec.cpu_count and meta.backend == "procfs"
    assert meta.stacks.enabled is True and meta.stacks.sampler == "py-spy"
    assert meta.settings.interval_s == rec.interval_s == 0.1
    assert meta.recorder_cpu is not None and meta.recorder_cpu.over_s is not None
    assert [i.gil for i in meta.interpreters] == ["enabled"]
    assert meta.target_pid == int(rec.processes[rec.processes.is_target].pid.iloc[0])
    assert meta.extra == {} and meta.merge is None


def test_what_is_written_back_reads_as_the_same_meta(recording: Path, tmp_path: Path) -> None:
    rec = inspector.load(recording)
    assert parse_meta(meta_to_json(rec.meta), recording) == rec.meta
    # and it is the JSON the recorder wrote, every key of it (null values aside)
    written = {k: v for k, v in stored_meta(recording).items() if v is not None}
    assert json.loads(json.dumps(meta_to_json(rec.meta))) == written


def test_keys_a_newer_recorder_adds_are_kept(recording: Path, tmp_path: Path) -> None:
    stacks = stored_meta(recording)["stacks"]
    path = with_meta(recording, tmp_path / "newer.sqlite", gpu='{"count": 2}',
                     stacks=json.dumps({**stacks, "native": True}),
                     settings=json.dumps({"interval_s": 0.1, "rate_hz": 100, "stacks": True,
                                          "gpu_hz": 5}))
    meta = inspector.load(path).meta
    assert meta.extra == {"gpu": {"count": 2}}
    assert meta.stacks.extra == {"native": True} and meta.settings.extra == {"gpu_hz": 5}
    written = meta_to_json(meta)
    assert written["gpu"] == {"count": 2} and written["stacks"]["native"] is True
    assert written["settings"]["gpu_hz"] == 5


@pytest.mark.parametrize("key, value", [
    ("duration_s", "NaN"), ("duration_s", "-1"), ("duration_s", '"long"'),
    ("cpu_count", "0"), ("cpu_count", "2.5"), ("cpu_count", "true"), ("cpu_count", "null"),
    ("start_time_unix", "Infinity"), ("start_time_unix", '"noon"'), ("complete", "1"),
    ("exit_code", "1.5"), ("exit_code", '"0"'), ("command", '"python x.py"'),
    ("command", '["python", 3]'), ("settings", '{"interval_s": NaN}'),
    ("settings", '{"stacks": "yes"}'), ("stacks", "[]"), ("interval_s", "-Infinity"),
    ("merge", "[]"), ("merge", '{"sources": 3}'), ("merge", '{"sources": [1]}'),
    ("merge", '{"sources": [{"meta": []}]}'),
    ("merge", '{"sources": [{"meta": {"cpu_count": "x"}}]}'),
])
def test_what_load_cannot_do_without_is_refused_in_one_line(
        recording: Path, tmp_path: Path, key: str, value: str) -> None:
    assert key in REQUIRED_KEYS
    path = with_meta(recording, tmp_path / "bad.sqlite", **{key: value})
    with pytest.raises(RecordingError, match=f"corrupt recording \\(meta .*{key}") as e:
        inspector.load(path)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("odd", ODD_JSON)
def test_any_other_key_of_the_wrong_kind_reads_as_unknown_and_every_consumer_copes(
        recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], odd: str
) -> None:
    stacks = "{" + ", ".join(f'"{k}": {odd}' for k in STACKS_KEYS) + "}"
    path = with_meta(recording, tmp_path / "odd.sqlite", stacks=stacks,
                     **{key: odd for key in OPTIONAL_KEYS})
    meta = inspector.load(path).meta
    value = json.loads(odd)
    for f in fields(Meta):
        if f.name in OPTIONAL_KEYS:
            got = getattr(meta, f.name)
            # the value itself where it is of the key's kind (a text for a text), else None
            assert got in (None, (), "procfs", RecorderCpu()) or got == value, (f.name, got)
            assert not (isinstance(got, float) and not math.isfinite(got)), f.name
    assert meta.stacks.enabled in (None, True)
    every_consumer_runs(path, tmp_path, capsys)


@pytest.mark.parametrize("odd", ["null", '"text"', "NaN", "-1", "[]"])
def test_odd_entries_inside_lists_and_objects_are_left_out(
        recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], odd: str) -> None:
    stacks = stored_meta(recording)["stacks"]
    stacks.update(run_lengths_s=[1], rates_hz_used=[[0.1, 42, 100]])
    stacks_json = json.dumps(stacks)[:-1] + (
        f', "run_lengths_s": [1, {odd}], "rates_hz_used": [{odd}, [{odd}, 42, 50],'
        f' [0.1, 42, 100]]}}')
    path = with_meta(
        recording, tmp_path / "entries.sqlite", stacks=stacks_json,
        recorder_cpu=f'{{"mean_cores": {odd}, "own_cores": 0.01, "py_spy_cores": {odd}}}',
        interpreters=f'[{odd}, {{"exe": {odd}, "version": "3.11.7", "gil": {odd}}}]',
        left_running=f'[{odd}, {{"pid": {odd}, "name": "daemon"}}]')
    meta = inspector.load(path).meta
    assert meta.stacks.run_lengths_s == (1,)
    assert RateChange(0.1, 42, 100) in meta.stacks.rates_hz_used
    assert all(math.isfinite(c.t_s) and c.rate_hz > 0 for c in meta.stacks.rates_hz_used)
    assert meta.recorder_cpu is not None and meta.recorder_cpu.own_cores == 0.01
    assert meta.recorder_cpu.mean_cores is None and meta.recorder_cpu.py_spy_cores is None
    assert [i.version for i in meta.interpreters] == ["3.11.7"]
    assert [p.name for p in meta.left_running] == ["daemon"]
    every_consumer_runs(path, tmp_path, capsys)


def test_a_file_from_before_the_settings_record_reads_the_same(recording: Path,
                                                               tmp_path: Path) -> None:
    settings = stored_meta(recording)["settings"]
    stacks = {**stored_meta(recording)["stacks"], "rate_hz": settings["rate_hz"]}
    path = with_meta(recording, tmp_path / "old.sqlite", settings="{}",
                     interval_s=json.dumps(settings["interval_s"]), stacks=json.dumps(stacks))
    old, new = inspector.load(path).meta, inspector.load(recording).meta
    assert old.settings.interval_s == new.settings.interval_s
    assert old.settings.rate_hz == new.settings.rate_hz
    assert old.extra == {} and old.stacks.extra == {}


def test_merged_parts_get_typed_meta_of_their_own(recording: Path, tmp_path: Path) -> None:
    b = with_meta(recording, tmp_path / "b.sqlite", hostname='"host-b"')
    out = tmp_path / "merged.sqlite"
    merge([Source(recording), Source(b)], out)
    rec = inspector.load(out)
    assert rec.meta.mode == "merged" and rec.meta.merge is not None
    assert parse_meta(meta_to_json(rec.meta), out) == rec.meta
    own = inspector.load(recording).meta
    assert rec.meta.merge.sources[0].meta == own
    assert rec.meta.merge.cpu_count_by_host == {own.hostname: own.cpu_count,
                                                "host-b": own.cpu_count}
    first, second = parts(rec)
    assert isinstance(second.recording.meta, Meta)
    assert second.recording.meta.hostname == "host-b" == second.host
    assert second.recording.meta.duration_s == pytest.approx(own.duration_s + second.shift_s)
    assert first.recording.meta.command == own.command
