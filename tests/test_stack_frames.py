"""Format 5 keeps Python stacks as a dictionary of frames and a tree of nodes (each distinct
frame once; a stack the node of its leaf frame, sharing its first frames' nodes with the
stacks that start alike; docs/recording-format.md): stacks round-trip through the writer
and the reader text for text, cost a fraction of their texts, a killed writer leaves every
committed stack, a version-4 file (whole texts) still loads and summarises identically, and
a tree that lies (a missing frame, a cycle, an id twice) is refused in one line."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest
from v1 import as_version_4

import inspector
from inspector.recording import RecordingError, RecordingWriter
from inspector.recording.schema import FORMAT_VERSION, OLDER_TABLES

PY = sys.executable
TIMEOUT_S = 120
THREAD = "/usr/lib/python3.11/threading.py"
ROOT = [f"Thread._bootstrap ({THREAD}:1002)", f"Thread._bootstrap_inner ({THREAD}:1045)",
        f"Thread.run ({THREAD}:982)", "main (/srv/app/main.py:61)"]
# Stacks as py-spy gives them, root first: some extend others, some differ in a line only,
# one is the stack of another less its leaf, one repeats, odd frames stay as they are.
TEXTS = [
    ";".join([*ROOT, "work (/srv/app/w.py:10)"]),
    ";".join([*ROOT, "work (/srv/app/w.py:11)"]),
    ";".join([*ROOT, "work (/srv/app/w.py:11)", "leaf (/srv/app/l.py:3)"]),
    ";".join(ROOT),
    ";".join([*ROOT, "work (/srv/app/w.py:10)"]),
    "<module> (/srv/ünï/cödé.py:1)",
    "",
    "a;;b",
    "f (x.py:1);" * 3,
]


def _write(path: Path, texts: list[str], per_commit: int = 3) -> Path:
    w = RecordingWriter(path)
    w.set_meta({"command": ["x"], "cpu_count": 2, "duration_s": float(len(texts))})
    for lo in range(0, len(texts), per_commit):
        w.add_stacks([(float(i), 0.5, 1, 10, 11, "worker", text, 50, None)
                      for i, text in enumerate(texts[lo:lo + per_commit], start=lo)])
        w.flush()
    w.close()
    return path


def _sql(path: Path, query: str) -> list[tuple]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(query).fetchall()


def test_stacks_round_trip_through_the_writer_text_for_text(tmp_path: Path) -> None:
    path = _write(tmp_path / "stacks.sqlite", TEXTS)
    stacks = inspector.load(path).stacks
    assert stacks["stack"].astype(str).tolist() == TEXTS
    assert stacks["t_s"].tolist() == [float(i) for i in range(len(TEXTS))]
    # one id per distinct text, the same one each time it comes back
    assert stacks.groupby("stack", observed=True)["stack_id"].nunique().eq(1).all()
    assert stacks["stack_id"].nunique() == len(set(TEXTS))
    assert not _sql(path, "SELECT 1 FROM sqlite_master WHERE name = 'stack_texts'")
    assert inspector.load(path).meta.format_version == FORMAT_VERSION == 5


def test_each_frame_is_stored_once_and_stacks_share_their_first_frames(tmp_path: Path) -> None:
    """A busy thread's stacks: 200 that differ in the leaf's line, under 16 frames."""
    middle = [f"step_{d} (/srv/app/stage{d}.py:{10 + d})" for d in range(12)]
    texts = [";".join([*ROOT, *middle, f"crunch (/srv/app/crunch.py:{i})"]) for i in range(200)]
    path = _write(tmp_path / "busy.sqlite", texts, per_commit=20)
    assert inspector.load(path).stacks["stack"].astype(str).tolist() == texts
    frames = {f for t in texts for f in t.split(";")}
    assert _sql(path, "SELECT count(*), count(DISTINCT text) FROM stack_frames") == [
        (len(frames), len(frames))]
    assert _sql(path, "SELECT count(*), count(stack_id), max(stack_id) FROM stack_nodes") == [
        (len(ROOT) + len(middle) + 200, 200, 200)]
    stored = _sql(path, "SELECT sum(pgsize) FROM dbstat WHERE name IN"
                        " ('stack_frames', 'stack_nodes')")[0][0]
    whole = sum(len(t.encode()) for t in texts)
    assert stored * 5 < whole, (stored, whole)


def test_masked_frames_are_stored_masked_and_stacks_the_mask_makes_alike_share_an_id(
        tmp_path: Path) -> None:
    class Mask:
        def text(self, value: str) -> str:
            return value.replace("secret1", "***").replace("secret2", "***")

        def command(self, argv: list[str]) -> list[str]:
            return list(argv)

    w = RecordingWriter(tmp_path / "masked.sqlite", mask=Mask())
    w.set_meta({"command": ["x"], "cpu_count": 2})
    w.add_stacks([(0.0, 0.5, 1, 10, 11, "t", "main (a.py:1);f (/home/secret1/b.py:2)", 1, None),
                  (1.0, 0.5, 1, 10, 11, "t", "main (a.py:1);f (/home/secret2/b.py:2)", 1, None)])
    w.close()
    stacks = inspector.load(w.path).stacks
    assert stacks["stack"].astype(str).tolist() == ["main (a.py:1);f (/home/***/b.py:2)"] * 2
    assert stacks["stack_id"].nunique() == 1
    assert not _sql(w.path, "SELECT 1 FROM stack_frames WHERE text LIKE '%secret%'")


_KILLED_WRITER = """
import os, signal, sys
from inspector.recording import RecordingWriter
w = RecordingWriter(sys.argv[1])
w.set_meta({"command": ["x"], "cpu_count": 2})
for i in range(6):
    w.add_stacks([(float(i), 0.5, 1, 10, 11, "t", f"main (a.py:1);f (b.py:{i})", 1, None)])
    w.flush()
w.add_stacks([(9.0, 0.5, 1, 10, 11, "t", "main (a.py:1);never (c.py:1)", 1, None)])
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_writer_killed_after_a_commit_leaves_every_committed_stack(tmp_path: Path) -> None:
    out = tmp_path / "killed.sqlite"
    proc = subprocess.run([PY, "-c", _KILLED_WRITER, str(out)], timeout=TIMEOUT_S)
    assert proc.returncode == -signal.SIGKILL
    live = out  # the writer's own path (the recorder's is PATH.partial), a -wal beside it
    assert Path(f"{live}-wal").exists()
    stacks = inspector.load(live).stacks
    assert stacks["stack"].astype(str).tolist() == [f"main (a.py:1);f (b.py:{i})"
                                                    for i in range(6)]
    assert not _sql(live, "SELECT 1 FROM stack_frames WHERE text LIKE 'never%'")


def _summary(path: Path, *pythonpath: str) -> bytes:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)} if pythonpath else None
    proc = subprocess.run([PY, "-m", "inspector", "summary", "--json", str(path)],
                          capture_output=True, timeout=TIMEOUT_S, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_version_4_file_loads_and_summarises_as_its_version_5_original(
        two_process_recording: Path, tmp_path: Path) -> None:
    """A real recording with stacks, and the same with each stack a whole text."""
    new = inspector.load(two_process_recording)
    assert not new.stacks.empty and _sql(two_process_recording,
                                         "SELECT count(*) FROM stack_nodes")[0][0] > 0
    old_path = as_version_4(two_process_recording, tmp_path / "v4.sqlite")
    assert _sql(old_path, "SELECT count(*) FROM stack_texts")[0][0] > 0
    old = inspector.load(old_path)
    assert old.meta.format_version == 4
    for table in ("stacks", "thread_samples", "process_samples", "threads"):
        pd.testing.assert_frame_equal(getattr(old, table), getattr(new, table))
    assert _summary(old_path) == _summary(two_process_recording)


# -- a tree that lies ------------------------------------------------------------------------

LAST = "(SELECT max(node_id) FROM stack_nodes)"


@pytest.mark.parametrize("sql, said", [
    (f"UPDATE stack_nodes SET frame_id = 9999 WHERE node_id = {LAST}", "names no frame 9999"),
    (f"UPDATE stack_nodes SET parent_id = node_id WHERE node_id = {LAST}",
     "is no smaller node"),
    ("UPDATE stack_nodes SET parent_id = (SELECT max(node_id) FROM stack_nodes)"
     " WHERE parent_id IS NULL", "is no smaller node"),                  # a cycle of two
    ("DELETE FROM stack_nodes WHERE node_id = 1", "is no smaller node"),  # an orphan
    (f"UPDATE stack_nodes SET frame_id = 1.5 WHERE node_id = {LAST}", "not an id"),
    (f"UPDATE stack_nodes SET parent_id = 'x' WHERE node_id = {LAST}", "non-numeric"),
    ("UPDATE stack_nodes SET stack_id = 1 WHERE stack_id IS NOT NULL",
     "stack_nodes holds a stack twice"),
    (f"{OLDER_TABLES} INSERT INTO stack_texts (stack_id, text) VALUES (1, 'f (a.py:1)')",
     "is both a text and a node"),
    ("CREATE TABLE f2 AS SELECT * FROM stack_frames; DROP TABLE stack_frames;"
     " CREATE TABLE stack_frames (frame_id, text); INSERT INTO stack_frames SELECT * FROM f2;"
     " INSERT INTO stack_frames SELECT * FROM f2", "stack_frames holds a frame twice"),
    (f"UPDATE stack_nodes SET frame_id = NULL WHERE node_id = {LAST}",
     "NULL in stack_nodes.frame_id"),
])
def test_a_tree_that_lies_is_refused_in_one_line(tmp_path: Path, sql: str, said: str) -> None:
    path = _write(tmp_path / "lies.sqlite", TEXTS)
    with closing(sqlite3.connect(path)) as db:
        if "NULL WHERE" in sql:  # NOT NULL: the table made again without it
            db.executescript("CREATE TABLE n2 AS SELECT * FROM stack_nodes;"
                             " DROP TABLE stack_nodes; ALTER TABLE n2 RENAME TO stack_nodes;")
        db.executescript(sql)
        db.commit()
    with pytest.raises(RecordingError, match="corrupt recording") as e:
        inspector.load(path)
    assert said in str(e.value) and "\n" not in str(e.value)
    proc = subprocess.run([PY, "-m", "inspector", "summary", str(path)], capture_output=True,
                          text=True, timeout=TIMEOUT_S)
    assert proc.returncode != 0 and said in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_small_file_whose_stacks_chain_deep_is_refused_before_their_texts_are_made(
        tmp_path: Path) -> None:
    """2,000 stacks each one frame deeper than the one before: 2,000 nodes in a few KB,
    2 M frames of text."""
    texts = [";".join(f"f{d} (r.py:{d})" for d in range(depth)) for depth in range(1, 2001)]
    path = _write(tmp_path / "deep.sqlite", texts, per_commit=500)
    assert path.stat().st_size < 500_000
    with pytest.raises(RecordingError, match="stack frames in its stacks, more than a file"):
        inspector.load(path)


def test_stack_texts_beyond_the_characters_a_file_allows_are_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The characters bound, made small: 20 stacks of ~700 characters from a few frames."""
    from inspector.recording import limits

    texts = [";".join([*ROOT, f"work (/srv/app/w.py:{i})", "x" * 400]) for i in range(20)]
    path = _write(tmp_path / "long.sqlite", texts)
    assert len(inspector.load(path).stacks) == 20
    monkeypatch.setattr(limits, "BASE_STACK_CHARS", 10_000)
    monkeypatch.setattr(limits, "STACK_CHARS_PER_FILE_BYTE", 0)
    with pytest.raises(RecordingError, match="characters of stack text, more than a file"):
        inspector.load(path)
