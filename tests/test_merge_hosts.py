"""Merging recordings made on hosts whose clocks disagree: two real recordings of one moment,
the second as if its host's clock ran SKEW_S ahead, merged and aligned by the offset (or not),
their colliding pids moved, and every reader of the merged file naming each host."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import turns
from conftest import inspector_cli
from in_process import inspector_here
from machine import for_the_recording

import inspector
from inspector.recording.merge import PID_SPACE, hosts_of, parts

PY = sys.executable

SKEW_S = 37.0  # host B's clock runs this far ahead of host A's

# Says it is ready (creates argv[1]), waits for the file argv[2] to name a wall-clock time T
# on this machine, waits until T, then computes for a second: the same real moment on both
# "hosts", however long each recorder took to start its target.
AT_T_COMPUTE = ("import os, sys, time\n"
                "open(sys.argv[1], 'w').close()\n"
                "while not os.path.exists(sys.argv[2]): time.sleep(0.01)\n"
                "with open(sys.argv[2]) as f: at = float(f.read())\n"
                "time.sleep(max(0.0, at - time.time()))\n"
                "end = time.time() + 1.0\n"
                "while time.time() < end: pass\n")


def _as_if_recorded_on(path: Path, host: str, skew_s: float) -> None:
    """What the same recording would hold had its host's clock run skew_s ahead: every wall
    time in it (the start, each process's creation) later by skew_s, and another hostname."""
    db = sqlite3.connect(path)
    with db:
        meta = dict(db.execute("SELECT key, value FROM meta"))
        start = json.loads(meta["start_time_unix"]) + skew_s
        db.execute("UPDATE meta SET value = ? WHERE key = 'start_time_unix'", (json.dumps(start),))
        db.execute("UPDATE meta SET value = ? WHERE key = 'hostname'", (json.dumps(host),))
        db.execute("UPDATE processes SET create_time = create_time + ?", (skew_s,))
    db.close()


def _onset_s(rec: inspector.Recording) -> float:
    """When the target began its second of computing: the first of ONSET_SAMPLES samples in
    a row at half a core or more (its own start-up may show one or two such samples)."""
    ps = rec.process_samples
    target = rec.processes[rec.processes["is_target"]]["proc_id"].iloc[0]
    mine = ps[ps["proc_id"] == target].sort_values("t_s")
    busy = (mine["cpu_percent"] >= 50).astype(int)
    held = busy[::-1].rolling(ONSET_SAMPLES, min_periods=ONSET_SAMPLES).min()[::-1]
    onsets = mine["t_s"][held == 1]
    assert not onsets.empty
    return float(onsets.iloc[0])


ONSET_SAMPLES = 5  # of 0.05 s: a quarter of the second of computing


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("hosts")
    paths = [tmp / "a.sqlite", tmp / "b.sqlite"]
    ready, go = [p.with_suffix(".ready") for p in paths], tmp / "go"
    with turns.alone():  # each samples the onset in time (tests/turns.py)
        recorders = [subprocess.Popen([PY, "-m", "inspector", "record", "-q", "-i", "0.05",
                                       "--no-stacks", "-o", str(p), "--", PY, "-c",
                                       AT_T_COMPUTE, str(r), str(go)],
                                      preexec_fn=for_the_recording())
                     for p, r in zip(paths, ready)]
        deadline = time.monotonic() + 120  # a hang guard, not a timing
        while not all(r.exists() for r in ready):
            assert time.monotonic() < deadline and all(r.poll() is None for r in recorders)
            time.sleep(0.02)
        (tmp / "go.tmp").write_text(repr(time.time() + 0.5))  # both recorders sampling by then
        (tmp / "go.tmp").rename(go)
        assert [r.wait(60) for r in recorders] == [0, 0]
    _as_if_recorded_on(paths[1], "host-b", SKEW_S)
    return paths[0], paths[1]


def test_two_hosts_merged_with_the_measured_offset_are_aligned(
        two_hosts: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = two_hosts
    out = tmp_path / "aligned.sqlite"
    done = inspector_cli("merge", str(a), str(b), "-o", str(out), "--offset", f"{b}={SKEW_S}")
    assert done.returncode == 0, done.stderr
    merged = inspector.load(out)
    ps = parts(merged)
    assert [p.host for p in ps] == [inspector.load(a).meta.hostname, "host-b"]
    assert set(hosts_of(merged)) == {ps[0].host, "host-b"}
    # the same real moment lands at the same merged time, to within a sampling interval or
    # two (each recorder saw it at its own next sample)
    assert abs(_onset_s(ps[0].recording) - _onset_s(ps[1].recording)) < 0.3
    # and where each host's own timeline had it, shifted by the difference of the starts
    for part, path in zip(ps, (a, b)):
        own = inspector.load(path)
        assert _onset_s(part.recording) == pytest.approx(_onset_s(own) + part.shift_s,
                                                         abs=1e-6)
    # create_time is back on the reference clock: each target's, as this machine had it
    created = merged.processes.groupby(hosts_of(merged).to_numpy())["create_time"].min()
    own = [float(inspector.load(p).processes["create_time"].min()) for p in (a, b)]
    assert created[ps[0].host] == pytest.approx(own[0], abs=1e-3)
    assert created["host-b"] == pytest.approx(own[1] - SKEW_S, abs=1e-3)


def test_without_the_offset_the_skew_shows_as_time_apart(two_hosts: tuple[Path, Path],
                                                        tmp_path: Path) -> None:
    a, b = two_hosts
    out = tmp_path / "skewed.sqlite"
    assert inspector_here("merge", str(a), str(b), "-o", str(out)).returncode == 0
    ps = parts(inspector.load(out))
    apart = _onset_s(ps[1].recording) - _onset_s(ps[0].recording)
    assert apart == pytest.approx(SKEW_S, abs=0.3)


def test_merge_renumbers_proc_ids_and_moves_colliding_pids(two_hosts: tuple[Path, Path],
                                                          tmp_path: Path) -> None:
    a, _b = two_hosts
    copy = tmp_path / "same-pids.sqlite"
    copy.write_bytes(a.read_bytes())
    _as_if_recorded_on(copy, "host-c", 0.0)  # the same pids on another host: a collision
    out = tmp_path / "collide.sqlite"
    assert inspector_here("merge", str(a), str(copy), "-o", str(out)).returncode == 0
    merged = inspector.load(out)
    original = inspector.load(a)
    assert len(merged.processes) == 2 * len(original.processes)
    assert merged.processes["proc_id"].is_unique
    assert merged.processes["pid"].is_unique
    moved = parts(merged)[1].recording
    assert set(moved.processes["pid"]) == {p + PID_SPACE for p in original.processes["pid"]}
    assert len(moved.thread_samples) == len(original.thread_samples)
    assert set(moved.thread_samples["tid"]) == {t + PID_SPACE
                                               for t in original.thread_samples["tid"]}


def test_an_older_file_without_the_host_column_reads_as_its_hostname(
        two_hosts: tuple[Path, Path], tmp_path: Path) -> None:
    a, _b = two_hosts
    old = tmp_path / "old.sqlite"
    old.write_bytes(a.read_bytes())
    db = sqlite3.connect(old)
    with db:  # the tables as a file written before the column had them
        for table in ("processes", "machine_samples"):
            columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})") if r[1] != "host"]
            db.execute(f"CREATE TABLE old_{table} AS SELECT {', '.join(columns)} FROM {table}")
            db.execute(f"DROP TABLE {table}")
            db.execute(f"ALTER TABLE old_{table} RENAME TO {table}")
    db.close()
    rec = inspector.load(old)
    assert "host" not in rec.processes.columns
    assert set(hosts_of(rec)) == {rec.meta.hostname}


@pytest.mark.parametrize("args, status, words", [
    (["merge", "A", "-o", "X"], 2, "at least two"),
    (["merge", "A", "B", "-o", "X", "--offset", "A"], 2, "FILE=SECONDS"),
    (["merge", "A", "B", "-o", "X", "--offset", "C=1"], 2, "not one of the recordings"),
    (["merge", "A", "NOPE", "-o", "X"], 1, "no such file"),
])
def test_merge_bad_input_is_one_line(two_hosts: tuple[Path, Path], tmp_path: Path,
                                     args: list[str], status: int, words: str) -> None:
    a, _b = two_hosts
    subst = {"A": str(a), "B": str(a), "X": str(tmp_path / "x.sqlite"),
             "NOPE": str(tmp_path / "nope.sqlite")}
    done = inspector_here(*[subst.get(x, x) for x in args])
    assert done.returncode == status
    assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_merge_bad_input_by_the_command_line_is_one_line(two_hosts: tuple[Path, Path],
                                                        tmp_path: Path) -> None:
    done = inspector_cli("merge", str(two_hosts[0]), "-o", str(tmp_path / "x.sqlite"))
    assert done.returncode == 2
    assert "at least two" in done.stderr and len(done.stderr.strip().splitlines()) == 1, \
        done.stderr


def test_report_compare_and_exports_show_each_host(two_hosts: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    a, b = two_hosts
    merged = tmp_path / "two.sqlite"
    assert inspector_here("merge", str(a), str(b), "-o", str(merged), "--offset",
                          f"{b}={SKEW_S}").returncode == 0
    host_a = inspector.load(a).meta.hostname
    page = tmp_path / "two.html"
    done = inspector_cli("report", str(merged), "-o", str(page))
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    assert "cluster: 2 of 2 workers on 2 hosts" in html
    assert html.index(f"<b>{host_a}</b>") < html.index("<b>host-b</b>")
    assert "worker a:" in html and "worker b:" in html
    trace = tmp_path / "two.json"
    assert inspector_here("export", str(merged), "-f", "perfetto", "-o",
                          str(trace)).returncode == 0
    names = {e["args"]["name"] for e in json.loads(trace.read_text())["traceEvents"]
             if e.get("name") == "process_name"}
    assert any(n.startswith(f"{host_a}: ") for n in names)
    assert any(n.startswith("host-b: ") for n in names)
    rows = json.loads(inspector_here("compare", str(a), str(merged), "--json", "-o",
                                     str(tmp_path / "cmp.html")).stdout)["rows"]
    assert rows[1]["verdict"]["evidence"][0].startswith("cluster: 2 of 2 workers")
    assert not rows[0]["verdict"]["evidence"][0].startswith("cluster:")

