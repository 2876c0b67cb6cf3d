"""Hostile paths and a killed recorder's file (issue 24 items 1 and 7), run as root as a
ptrace tool's users run it: every file inspector writes is created exclusively, never
through a link, private (0600) whatever the umask, and nothing that is not ours is replaced
or emptied; a missing recording whose PATH.partial exists is named, with whether a recorder
is still writing it or one was killed.

Real files, real links, FIFOs and folders, the real recorder (`python -m inspector`), a real
Dask cluster of two worker processes. The readers' and writers' refusals run by the CLI's
main() in this process (tests/in_process.py), each kind once by the real command line too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from in_process import inspector_here
from machine import skip_or_fail

import inspector
from inspector.recording.merge import parts

PY = sys.executable
WORKLOADS = Path(__file__).parent / "workloads"
TIMEOUT_S = 120  # a hang guard: nothing here takes more than a few seconds

# What root's files look like, in a folder of their own: the targets of the planted links.
PASSWD = "root:x:0:0:root:/root:/bin/bash\n"


def inspector_run(*args: str, umask: int = -1) -> subprocess.CompletedProcess[str]:
    """`python -m inspector ARGS`; umask -1: this process's."""
    return subprocess.run([PY, "-m", "inspector", *args], capture_output=True, text=True,
                          timeout=TIMEOUT_S, umask=umask)


def first_by_the_command_line(*argvs: Sequence[str]) -> list[subprocess.CompletedProcess[str]]:
    """The first `inspector ARGV` by the real command line, the others by main() here."""
    return [inspector_run(*argvs[0]), *(inspector_here(*argv) for argv in argvs[1:])]


def record(out: Path, command: Sequence[str], *extra: str,
           umask: int = -1) -> subprocess.CompletedProcess[str]:
    return inspector_run("record", "-q", "--no-stacks", "-o", str(out), *extra, "--",
                         *command, umask=umask)


def refused(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    """One line on stderr, naming what it was about, and a failure status."""
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("inspector: "), \
        proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A folder standing for /etc: what a link may point into."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "passwd").write_text(PASSWD)
    return folder


@pytest.fixture(scope="module")
def a_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("source") / "source.sqlite"
    proc = record(out, [PY, "-c", "import time; time.sleep(0.3)"])
    assert proc.returncode == 0, proc.stderr
    return out


def copy_of(recording: Path, to: Path) -> Path:
    shutil.copyfile(recording, to)
    return to


# -- the recording and the files beside it -----------------------------------------------------

@pytest.mark.parametrize("points_to", ["nothing", "a recording", "an empty file"])
def test_a_link_at_partial_is_refused_and_nothing_is_made_through_it(
        tmp_path: Path, elsewhere: Path, a_recording: Path, points_to: str) -> None:
    out, marker = tmp_path / "run.sqlite", tmp_path / "target-ran"
    victim = elsewhere / "victim"
    if points_to == "a recording":
        copy_of(a_recording, victim)
    elif points_to == "an empty file":
        victim.touch()
    before = victim.read_bytes() if victim.exists() else None
    link = tmp_path / "run.sqlite.partial"
    link.symlink_to(victim)
    proc = record(out, ["touch", str(marker)])
    refused(proc, str(link))
    assert not marker.exists(), "refused before the command ran"
    assert link.is_symlink() and os.readlink(link) == str(victim)
    assert (victim.read_bytes() if victim.exists() else None) == before
    assert listing(elsewhere) == sorted({"passwd", *(["victim"] if before is not None else [])})
    assert listing(tmp_path) == ["elsewhere", "run.sqlite.partial"]


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_fifo_or_folder_at_partial_is_left_alone(tmp_path: Path, kind: str) -> None:
    out, marker = tmp_path / "run.sqlite", tmp_path / "target-ran"
    partial = tmp_path / "run.sqlite.partial"
    if kind == "fifo":
        os.mkfifo(partial)
    else:
        partial.mkdir()
        (partial / "keep").write_text("precious")
    refused(record(out, ["touch", str(marker)]), str(partial))
    assert not marker.exists()
    assert partial.is_fifo() if kind == "fifo" else (partial / "keep").read_text() == "precious"


@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
def test_a_link_beside_partial_is_refused_and_left(tmp_path: Path, elsewhere: Path,
                                                   suffix: str) -> None:
    out, marker = tmp_path / "run.sqlite", tmp_path / "target-ran"
    link = tmp_path / f"run.sqlite.partial{suffix}"
    link.symlink_to(elsewhere / "victim")
    refused(record(out, ["touch", str(marker)]), str(link))
    assert not marker.exists()
    assert link.is_symlink() and not (elsewhere / "victim").exists()
    assert listing(tmp_path) == ["elsewhere", link.name]


@pytest.mark.parametrize("kind", ["link", "directory", "notes"])
def test_what_is_at_old_and_not_a_recording_is_never_replaced(
        tmp_path: Path, elsewhere: Path, a_recording: Path, kind: str) -> None:
    out, marker = copy_of(a_recording, tmp_path / "run.sqlite"), tmp_path / "target-ran"
    old = tmp_path / "run.sqlite.old"
    if kind == "link":
        old.symlink_to(elsewhere / "passwd")
    elif kind == "directory":
        old.mkdir()
        (old / "keep").write_text("precious")
    else:
        old.write_text("precious")
    before = out.read_bytes()
    refused(record(out, ["touch", str(marker)]), str(old))
    assert not marker.exists(), "refused before the command ran"
    assert out.read_bytes() == before
    if kind == "link":
        assert old.is_symlink() and (elsewhere / "passwd").read_text() == PASSWD
    else:
        assert (old / "keep" if kind == "directory" else old).read_text() == "precious"
    assert listing(tmp_path) == ["elsewhere", "run.sqlite", "run.sqlite.old"]


def test_an_older_recording_at_old_makes_way_for_the_newer_one(tmp_path: Path,
                                                               a_recording: Path) -> None:
    out = copy_of(a_recording, tmp_path / "run.sqlite")
    copy_of(a_recording, tmp_path / "run.sqlite.old")
    proc = record(out, ["echo", "newest"])
    assert proc.returncode == 0, proc.stderr
    assert inspector.load(out).meta.command == ("echo", "newest")
    assert (tmp_path / "run.sqlite.old").read_bytes() == a_recording.read_bytes()
    assert listing(tmp_path) == ["run.sqlite", "run.sqlite.old"]


def test_a_folder_anyone_may_write_is_refused_unless_sticky(tmp_path: Path) -> None:
    # anyone who may rename entries in it could swap our file for a link between two calls
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    marker = tmp_path / "target-ran"
    refused(record(shared / "run.sqlite", ["touch", str(marker)]), str(shared))
    assert not marker.exists() and listing(shared) == []
    shared.chmod(0o1777)  # like /tmp: only an entry's owner may rename or remove it
    proc = record(shared / "run.sqlite", ["true"])
    assert proc.returncode == 0, proc.stderr
    assert mode(shared / "run.sqlite") == 0o600


# -- reports, exports, comparisons -------------------------------------------------------------

def page_commands(source: Path, out: Path) -> dict[str, list[str]]:
    return {"report": ["report", str(source), "-o", str(out)],
            "export": ["export", str(source), "-f", "perfetto", "-o", str(out)],
            "compare": ["compare", str(source), str(source), "-o", str(out)]}


@pytest.mark.parametrize("command", ["report", "export", "compare"])
def test_a_page_onto_a_link_is_refused_and_what_it_points_to_kept(
        tmp_path: Path, elsewhere: Path, a_recording: Path, command: str) -> None:
    link = tmp_path / "out.html"
    link.symlink_to(elsewhere / "passwd")
    run = inspector_run if command == "report" else inspector_here  # one by the command line
    refused(run(*page_commands(a_recording, link)[command]), str(link))
    assert link.is_symlink() and os.readlink(link) == str(elsewhere / "passwd")
    assert (elsewhere / "passwd").read_text() == PASSWD
    assert listing(tmp_path) == ["elsewhere", "out.html"], "no temp file left either"


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_page_onto_a_fifo_or_folder_is_refused(tmp_path: Path, a_recording: Path,
                                                 kind: str) -> None:
    target = tmp_path / "out.html"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    refused(inspector_here(*page_commands(a_recording, target)["report"]), str(target))
    assert target.is_fifo() if kind == "fifo" else target.is_dir()
    assert listing(tmp_path) == ["out.html"]


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o777])
def test_every_file_made_is_private_whatever_the_umask(tmp_path: Path, a_recording: Path,
                                                       umask: int) -> None:
    rec = tmp_path / "rec.sqlite"
    assert record(rec, ["true"], umask=umask).returncode == 0
    pages = (("report", tmp_path / "rec.html"), ("export", tmp_path / "rec.json"),
             ("compare", tmp_path / "cmp.html"))
    merged = tmp_path / "merged.sqlite"
    # an existing page is replaced (it is ours: a regular file), and private too
    (tmp_path / "again.html").write_text("an older report")
    (tmp_path / "again.html").chmod(0o644)
    made = [rec, *(out for _, out in pages), merged, tmp_path / "again.html"]
    for argv in (*(page_commands(rec, out)[command] for command, out in pages),
                 ["merge", str(rec), str(a_recording), "-o", str(merged)],
                 page_commands(rec, tmp_path / "again.html")["report"]):
        # made under that umask by main() here (the recording by the command line)
        proc = inspector_here(*argv, umask=umask)
        assert proc.returncode == 0, proc.stderr
    assert {p.name: oct(mode(p)) for p in made} == {p.name: oct(0o600) for p in made}
    assert "an older report" not in (tmp_path / "again.html").read_text()
    assert sorted(listing(tmp_path)) == sorted(p.name for p in made)


# -- merge -------------------------------------------------------------------------------------

def test_merge_onto_a_file_that_is_not_a_recording_is_refused_and_leaves_it(
        tmp_path: Path, a_recording: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("precious")
    refused(inspector_here("merge", str(a_recording), str(a_recording), "-o", str(notes)),
            str(notes))
    assert notes.read_text() == "precious"
    assert listing(tmp_path) == ["notes.txt"]


def test_merge_onto_a_link_is_refused_and_nothing_is_made_through_it(
        tmp_path: Path, elsewhere: Path, a_recording: Path) -> None:
    link = tmp_path / "merged.sqlite"
    link.symlink_to(elsewhere / "victim")
    refused(inspector_run("merge", str(a_recording), str(a_recording), "-o", str(link)),
            str(link))
    assert link.is_symlink() and listing(elsewhere) == ["passwd"]
    assert listing(tmp_path) == ["elsewhere", "merged.sqlite"]


def test_merge_onto_a_recording_keeps_it_as_old(tmp_path: Path, a_recording: Path) -> None:
    out = copy_of(a_recording, tmp_path / "merged.sqlite")
    proc = inspector_here("merge", str(a_recording), str(a_recording), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert inspector.load(out).meta.merge is not None
    assert (tmp_path / "merged.sqlite.old").read_bytes() == a_recording.read_bytes()
    assert listing(tmp_path) == ["merged.sqlite", "merged.sqlite.old"]


def test_a_merge_that_fails_midway_leaves_nothing_behind(tmp_path: Path,
                                                         a_recording: Path) -> None:
    broken = copy_of(a_recording, tmp_path / "broken.sqlite")
    db = sqlite3.connect(broken)
    db.execute("DROP TABLE processes")  # its meta reads; its processes do not
    db.commit()
    db.close()
    out = tmp_path / "merged.sqlite"
    refused(inspector_here("merge", str(a_recording), str(broken), "-o", str(out)),
            str(broken))
    assert listing(tmp_path) == ["broken.sqlite"], "no half-written recording"


# -- top's log ---------------------------------------------------------------------------------

@pytest.mark.parametrize("recording_there", ["nothing", "notes"])
def test_top_never_empties_a_log_it_did_not_write(tmp_path: Path,
                                                  recording_there: str) -> None:
    out, log = tmp_path / "seen.sqlite", tmp_path / "seen.log"
    log.write_text("precious")
    if recording_there == "notes":
        out.write_text("precious too")
    marker = tmp_path / "target-ran"
    proc = inspector_run("top", "--once", "-o", str(out), "--", "touch", str(marker))
    refused(proc, str(out if recording_there == "notes" else log))
    assert log.read_text() == "precious"
    assert not marker.exists()
    assert listing(tmp_path) == sorted(["seen.log", *(["seen.sqlite"]
                                                       if recording_there == "notes" else [])])


def test_tops_log_is_private(tmp_path: Path) -> None:
    out = tmp_path / "seen.sqlite"
    proc = inspector_run("top", "--once", "-d", "1.5", "--no-stacks", "-o", str(out), "--",
                         PY, "-c", "print('said', flush=True); import time; time.sleep(30)",
                         umask=0)
    assert proc.returncode == 0, proc.stderr
    assert "said" in (tmp_path / "seen.log").read_text()
    assert mode(tmp_path / "seen.log") == 0o600  # the recording's: as record's, tested above


# -- Dask workers' files -----------------------------------------------------------------------

def test_dask_workers_with_clashing_names_keep_a_private_file_each(tmp_path: Path,
                                                                   elsewhere: Path) -> None:
    try:
        import distributed  # noqa: F401  (the test extra installs it)
    except ImportError:
        skip_or_fail("Dask is not installed: pip install -e '.[test]'")
    out = tmp_path / "cluster.sqlite"
    workers = tmp_path / "cluster-workers"
    workers.mkdir()
    (workers / "worker-w_1.sqlite").symlink_to(elsewhere / "victim")  # both names clean to it
    proc = subprocess.run([PY, str(WORKLOADS / "dask_named_workers.py"), str(out)],
                          capture_output=True, text=True, timeout=240, umask=0)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == [], "every worker's recorder started"
    assert listing(elsewhere) == ["passwd"]
    assert (workers / "worker-w_1.sqlite").is_symlink()
    files = sorted(p for p in workers.iterdir() if not p.is_symlink())
    assert len(files) == 2, listing(workers)
    assert all(mode(p) == 0o600 for p in [*files, out])
    assert sorted(p.label for p in parts(inspector.load(out))) == ["w/1", "w:1"]
    sources = {inspector.load(p).meta.start_time_unix for p in files}
    assert len(sources) == 2, "two recordings, not one written twice"


# -- a killed recorder (item 7) ----------------------------------------------------------------

READERS = ("summary", "report", "export", "explain", "compare")


def reader_argv(command: str, path: Path, tmp_path: Path) -> list[str]:
    return {"summary": ["summary", str(path)],
            "report": ["report", str(path), "-o", str(tmp_path / "page.html")],
            "export": ["export", str(path), "-f", "perfetto", "-o",
                       str(tmp_path / "trace.json")],
            "explain": ["explain", str(path)],
            "compare": ["compare", str(path), str(path), "-o",
                        str(tmp_path / "compared.html")]}[command]


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A recorder writing run.sqlite(.partial) of a long sleep, in a session of its own."""
    out = tmp_path / "run.sqlite"
    proc = subprocess.Popen([PY, "-m", "inspector", "record", "-q", "--no-stacks", "-i", "0.1",
                             "-o", str(out), "--", PY, "-c", "import time; time.sleep(120)"],
                            start_new_session=True, stderr=subprocess.PIPE)
    partial = tmp_path / "run.sqlite.partial"
    try:
        deadline = time.monotonic() + 60  # a hang guard, not a timing
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            try:
                if not inspector.load(partial).thread_samples.empty:
                    break
            except inspector.RecordingError:
                pass
            time.sleep(0.1)
        yield proc, out
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(TIMEOUT_S)


def test_every_reader_of_a_missing_recording_names_its_partial_being_written(
        recorder: tuple[subprocess.Popen[bytes], Path], tmp_path: Path) -> None:
    proc, out = recorder
    partial = Path(f"{out}.partial")
    *readers, merged, meanwhile = first_by_the_command_line(
        *(reader_argv(command, out, tmp_path) for command in READERS),
        ["merge", str(out), str(out), "-o", str(tmp_path / "m.sqlite")],
        ["summary", str(partial)])
    for done in readers:
        refused(done, str(out), str(partial), "still writing")
    refused(merged, str(partial), "still writing")
    assert meanwhile.returncode == 0, "it reads meanwhile"
    assert proc.poll() is None


def test_a_second_recorder_never_replaces_the_partial_one_is_writing(
        recorder: tuple[subprocess.Popen[bytes], Path], tmp_path: Path) -> None:
    proc, out = recorder
    partial = Path(f"{out}.partial")
    marker = tmp_path / "target-ran"
    refused(record(out, ["touch", str(marker)]), str(partial))
    assert not marker.exists()
    assert proc.poll() is None
    os.killpg(proc.pid, signal.SIGINT)  # the first one finishes its file as it would have
    proc.wait(TIMEOUT_S)
    rec = inspector.load(out)
    assert rec.meta.complete is True and not rec.thread_samples.empty


def test_every_reader_of_a_missing_recording_names_a_killed_recorders_partial(
        recorder: tuple[subprocess.Popen[bytes], Path], tmp_path: Path) -> None:
    proc, out = recorder
    partial = Path(f"{out}.partial")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(TIMEOUT_S)
    for done in first_by_the_command_line(*(reader_argv(command, out, tmp_path)
                                            for command in READERS)):
        refused(done, str(out), str(partial), "killed")
        assert "still writing" not in done.stderr
    rec = inspector.load(partial)
    assert rec.meta.complete is False and not rec.thread_samples.empty
    # the next recorder at the path takes the killed one's place
    assert record(out, ["true"]).returncode == 0
    assert inspector.load(out).meta.complete is True
    assert not any(p.name.startswith("run.sqlite.partial") for p in tmp_path.iterdir())


def test_a_missing_recording_with_no_partial_is_no_such_file(tmp_path: Path) -> None:
    done = inspector_here("summary", str(tmp_path / "nope.sqlite"))
    refused(done, "no such file")
    assert ".partial" not in done.stderr
