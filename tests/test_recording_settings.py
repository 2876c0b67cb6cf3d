"""How a recording was sampled is stored once, in meta `settings`, and read through
`Recording.settings` (`meta.settings`), `interval_s` and `stack_rate_hz`; files written before
kept copies at the top level and under meta `stacks`, and still load the same."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import inspector
from inspector.recording import RecordingError, RecordingWriter, Settings

PY = sys.executable


def record(out: Path, script: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "inspector", "record", "-q", "-o", str(out), *options,
                           "--", PY, "-c", textwrap.dedent(script)],
                          capture_output=True, text=True, timeout=120)


def test_a_recording_stores_each_setting_once(tmp_path: Path) -> None:
    out = tmp_path / "r.sqlite"
    proc = record(out, "import time; time.sleep(0.5)", "--interval", "0.05", "--rate", "50")
    assert proc.returncode == 0, proc.stderr
    rec = inspector.load(out)
    assert rec.meta.settings == Settings(interval_s=0.05, rate_hz=50, stacks=True)
    assert rec.settings == rec.meta.settings
    assert "interval_s" not in rec.meta.extra
    assert "rate_hz" not in rec.meta.stacks.extra
    assert rec.interval_s == 0.05
    assert rec.stack_rate_hz == 50
    assert rec.meta.stacks.rate_hz_used == 50


def test_many_threads_give_the_rate_py_spy_really_used(tmp_path: Path) -> None:
    # 120 threads at 100 Hz would exceed py-spy's budget of thread samples per second:
    # the recorder lowers the rate, and the recording says which rate it used.
    out = tmp_path / "many.sqlite"
    proc = record(out, """
        import threading, time
        threads = [threading.Thread(target=time.sleep, args=(2.5,)) for _ in range(120)]
        for t in threads: t.start()
        for t in threads: t.join()
    """, "--rate", "100")
    assert proc.returncode == 0, proc.stderr
    rec = inspector.load(out)
    if not rec.meta.stacks.enabled:
        pytest.fail(f"stacks were not sampled: {rec.meta.stacks}")
    assert rec.settings.rate_hz == 100
    assert rec.stack_rate_hz < 100
    assert rec.stack_rate_hz == rec.meta.stacks.rate_hz_used
    lowered = rec.problems[rec.problems.kind == "rate-lowered"]
    assert f"sampled at {int(rec.stack_rate_hz)} Hz" in " ".join(lowered.detail)


def write_old_style(path: Path, meta: dict) -> None:
    writer = RecordingWriter(path)
    writer.set_meta({"command": ["python", "x.py"], "cpu_count": 2, "duration_s": 1.0,
                     "complete": True, **meta})
    writer.close()


def test_a_file_from_before_one_settings_record_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    write_old_style(path, {
        "interval_s": 0.2,
        "settings": {"interval_s": 0.2, "rate_hz": 40, "stacks": True},
        "stacks": {"enabled": True, "sampler": "py-spy", "rate_hz": 40, "gil_rate_hz": 20}})
    rec = inspector.load(path)
    assert rec.interval_s == 0.2 and rec.stack_rate_hz == 40
    assert rec.settings == Settings(interval_s=0.2, rate_hz=40, stacks=True)
    assert "interval_s" not in rec.meta.extra and "rate_hz" not in rec.meta.stacks.extra
    assert rec.meta.stacks.gil_rate_hz == 20


def test_an_older_file_with_settings_only_at_the_top_and_under_stacks(tmp_path: Path) -> None:
    path = tmp_path / "older.sqlite"
    write_old_style(path, {"interval_s": 0.25,
                           "stacks": {"enabled": True, "rate_hz": 30}})
    rec = inspector.load(path)
    assert rec.settings == Settings(interval_s=0.25, rate_hz=30)
    assert rec.interval_s == 0.25 and rec.stack_rate_hz == 30


def test_a_file_without_settings_gets_the_recorders_defaults(tmp_path: Path) -> None:
    path = tmp_path / "bare.sqlite"
    write_old_style(path, {})
    rec = inspector.load(path)
    assert rec.settings == Settings()
    assert rec.interval_s == 0.1 and rec.stack_rate_hz == 100


@pytest.mark.parametrize("meta", [
    {"settings": ["interval_s", 0.1]},
    {"settings": {"interval_s": "fast"}},
    {"settings": {"rate_hz": True}},
    {"stacks": "py-spy"},
    {"settings": {"interval_s": float("nan")}},
    {"interval_s": float("inf")},
    {"settings": {"rate_hz": -5}},
])
def test_settings_of_the_wrong_kind_are_a_bad_file(tmp_path: Path, meta: dict) -> None:
    path = tmp_path / "bad.sqlite"
    write_old_style(path, meta)
    with pytest.raises(RecordingError, match="corrupt recording"):
        inspector.load(path)
