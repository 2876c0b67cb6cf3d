"""Issue 14: the recorder never hangs, never destroys what is not its own, never trusts a
file and never leaks a secret. Real processes throughout: the recorder as `python -m
inspector record`, daemons that double-fork, targets that ignore signals, a second user.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from machine import skip_or_fail
from test_faults import (
    FAULT_EXIT,
    TIMEOUT_S,
    fill,
    in_a_session_of_its_own,
    inspector_lines,
    mounted_tmpfs,
    no_core_dumps,
    record_argv,
)

import inspector
from inspector.cli import main as cli_main
from inspector.recording import Meta, RecordingError, RecordingWriter, untrusted

PY = sys.executable
REPO = Path(__file__).resolve().parent.parent

# A daemon as `daemon(3)` makes one: fork, setsid, fork again, stdio to /dev/null; the
# grandchild writes its pid to argv[1] and sleeps; the command itself exits after a moment.
DAEMON = ("import os, signal, sys, time\n"
          "if os.fork() == 0:\n"
          "    os.setsid()\n"
          "    if os.fork() == 0:\n"
          "        null = os.open(os.devnull, os.O_RDWR)\n"
          "        for fd in (0, 1, 2): os.dup2(null, fd)\n"
          "        if len(sys.argv) > 2: signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
          "        with open(sys.argv[1] + '.tmp', 'w') as f: f.write(str(os.getpid()))\n"
          "        os.rename(sys.argv[1] + '.tmp', sys.argv[1])\n"
          "        time.sleep(120)\n"
          "    os._exit(0)\n"
          "time.sleep(0.5)\n")
# Notes each SIGINT/SIGTERM on stdout and carries on: only SIGKILL ends it.
STUBBORN = ("import os, signal, sys, time\n"
            "def note(sig, frame): print(f'got {sig}', flush=True)\n"
            "signal.signal(signal.SIGINT, note); signal.signal(signal.SIGTERM, note)\n"
            "print(os.getpid(), flush=True)\n"
            "while True: time.sleep(1)\n")


def kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for_file(path: Path, proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + 60  # a hang guard, not a timing
    while not path.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    return path.read_text()


def signal_when_taken(proc: subprocess.Popen, sig: int) -> None:
    """Sends `sig` once the recorder has taken the last one it was sent (no longer pending):
    two of the same signal sent at once would be delivered as one."""
    deadline = time.monotonic() + 60  # a hang guard, not a timing
    bit = 1 << (sig - 1)
    while True:
        with open(f"/proc/{proc.pid}/status") as f:
            pending = next(int(line.split()[1], 16) for line in f if line.startswith("ShdPnd"))
        if not pending & bit:
            break
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(sig)


# -- never hang ---------------------------------------------------------------------------

def test_a_daemonizing_target_is_followed_for_linger_s_then_named_and_left_running(
        tmp_path: Path) -> None:
    out, pidfile = tmp_path / "daemon.sqlite", tmp_path / "daemon.pid"
    try:
        proc = subprocess.run(record_argv(out, [PY, "-c", DAEMON, str(pidfile)],
                                          ("-q", "--linger", "1")),
                              capture_output=True, text=True, timeout=TIMEOUT_S)
        daemon = int(pidfile.read_text())
        assert proc.returncode == 0, proc.stderr
        lines = inspector_lines(proc.stderr)
        assert len(proc.stderr.splitlines()) == len(lines) == 2, proc.stderr
        assert f"{daemon} (python" in lines[0] and "left running" in lines[0], lines
        assert "--linger" in lines[0]
        assert alive(daemon), "left running, not killed"
        rec = inspector.load(out)
        assert rec.meta.complete is True and rec.meta.exit_code == 0
        assert [p.pid for p in rec.meta.left_running] == [daemon]
        target = rec.processes[rec.processes.is_target].iloc[0]
        followed = rec.processes[rec.processes.pid == daemon].iloc[0]
        samples = rec.process_samples[rec.process_samples.proc_id == followed.proc_id]
        # followed after the command exited, for the --linger second
        assert samples.t_s.max() > target.end_s + 0.5
    finally:
        if pidfile.exists():
            kill_quietly(int(pidfile.read_text()))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_target_that_ignores_the_first_signal_is_left_on_the_second(
        tmp_path: Path, sig: signal.Signals) -> None:
    out, err = tmp_path / "stubborn.sqlite", tmp_path / "stderr"
    # stderr to a file: the target, left running, keeps its copy of the recorder's stderr
    with open(err, "w") as stderr_file:
        proc = subprocess.Popen(record_argv(out, [PY, "-c", STUBBORN], ("-q",)),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=stderr_file, text=True, start_new_session=True)
    target = 0
    try:
        assert proc.stdout is not None
        target = int(proc.stdout.readline())
        proc.send_signal(sig)
        assert proc.stdout.readline().strip() == f"got {int(sig)}", "the first is passed on"
        signal_when_taken(proc, sig)
        proc.wait(timeout=TIMEOUT_S)
        stderr = err.read_text()
        assert proc.returncode == 128 + sig, stderr
        lines = inspector_lines(stderr)
        assert len(stderr.splitlines()) == len(lines) == 2, stderr
        assert f"{target} (python" in lines[0] and "told twice to stop" in lines[0]
        assert alive(target), "left running, not killed"
        rec = inspector.load(out)
        assert rec.meta.complete is True and rec.meta.exit_code is None
        assert [p.pid for p in rec.meta.left_running] == [target]
    finally:
        proc.kill()
        if target:
            kill_quietly(target)


def test_a_second_sigterm_ends_the_wait_for_a_daemon_with_no_linger_limit(
        tmp_path: Path) -> None:
    out, pidfile = tmp_path / "forever.sqlite", tmp_path / "daemon.pid"
    proc = subprocess.Popen(record_argv(out, [PY, "-c", DAEMON, str(pidfile), "ignore-term"],
                                        ("-q", "--no-stacks", "--linger", "inf")),
                            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        daemon = int(wait_for_file(pidfile, proc))
        proc.send_signal(signal.SIGTERM)  # passed on to the daemon, which ignores it
        signal_when_taken(proc, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=TIMEOUT_S)
        assert "Traceback" not in stderr, stderr
        assert any(f"{daemon} (python" in line for line in inspector_lines(stderr)), stderr
        assert inspector.load(out).meta.complete is True
        assert alive(daemon)
    finally:
        proc.kill()
        if pidfile.exists():
            kill_quietly(int(pidfile.read_text()))


def test_attach_ends_when_its_process_goes_and_follows_descendants_for_linger_s(
        tmp_path: Path) -> None:
    # A child that outlives the attached process (no subreaper in attach mode: it must be
    # seen before it is orphaned, so it is started once the recorder has opened its file,
    # however long a busy machine took to start the recorder, and its parent waits a moment).
    out, pidfile, go = tmp_path / "attached.sqlite", tmp_path / "daemon.pid", tmp_path / "go"
    parent = subprocess.Popen([PY, "-c", "import os, subprocess, sys, time\n"
                               f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
                               "subprocess.Popen(['sh', '-c', 'sleep 60 >/dev/null 2>&1 &"
                               f" echo $! > {pidfile}; sleep 1']); time.sleep(2)"])
    try:
        recorder = subprocess.Popen([PY, "-m", "inspector", "record", "-q", "--no-stacks",
                                     "--linger", "0.5", "-o", str(out), "--pid",
                                     str(parent.pid)], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + TIMEOUT_S  # a hang guard, not a timing
        while not Path(f"{out}.partial").exists():
            assert time.monotonic() < deadline and recorder.poll() is None, recorder.poll()
            time.sleep(0.01)
        go.touch()
        _, stderr = recorder.communicate(timeout=TIMEOUT_S)
        proc = subprocess.CompletedProcess(recorder.args, recorder.returncode, "", stderr)
        parent.wait(timeout=TIMEOUT_S)
        assert proc.returncode == 0, proc.stderr
        daemon = int(pidfile.read_text())
        assert any(f"{daemon} (sleep" in line for line in inspector_lines(proc.stderr)), \
            proc.stderr
        assert inspector.load(out).meta.complete is True
    finally:
        parent.kill()
        if pidfile.exists():
            kill_quietly(int(pidfile.read_text()))


def test_a_sigint_at_any_moment_of_the_start_never_orphans_the_target(tmp_path: Path) -> None:
    # SIGINT sent ever later into the recorder's start: before the target exists, while it
    # starts, once it runs (until it has been reached 3 times: the start's length depends on
    # the machine's load). Whenever the target ran, it got the signal (it ends on it), and
    # the recorder ended too.
    hits = 0
    for i in range(80):
        if hits >= 3:
            break
        pidfile = tmp_path / f"target-{i}.pid"
        command = [PY, "-c", "import os, sys, time\n"
                   "with open(sys.argv[1] + '.tmp', 'w') as f: f.write(str(os.getpid()))\n"
                   "os.rename(sys.argv[1] + '.tmp', sys.argv[1])\n"
                   "time.sleep(30)\n", str(pidfile)]
        proc = subprocess.Popen(record_argv(tmp_path / f"r{i}.sqlite", command,
                                            ("-q", "--no-stacks")),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, preexec_fn=in_a_session_of_its_own)
        time.sleep(0.05 * i)  # a sweep of moments, not a timing assertion
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=TIMEOUT_S)
            if pidfile.exists():
                hits += 1
                target = int(pidfile.read_text())
                deadline = time.monotonic() + 60  # a hang guard, not a timing
                while alive(target) and time.monotonic() < deadline:
                    time.sleep(0.02)
                assert not alive(target), f"target orphaned by a SIGINT after {0.05 * i} s"
        finally:
            proc.kill()
            if pidfile.exists():
                kill_quietly(int(pidfile.read_text()))
    assert hits > 0, "the sweep reached the target's life"


def test_zombies_of_the_target_neither_hang_it_nor_count_as_running(tmp_path: Path) -> None:
    # The target leaves 3 children unreaped (zombies) and exits: they are re-parented to
    # the recorder, which reaps them; none is "left running".
    out = tmp_path / "zombies.sqlite"
    command = [PY, "-c", "import os, time\n"
               "for _ in range(3):\n"
               "    if os.fork() == 0: os._exit(7)\n"
               "time.sleep(0.5)\n"]
    proc = subprocess.run(record_argv(out, command, ("-q", "--no-stacks", "--linger", "inf")),
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    rec = inspector.load(out)
    assert rec.meta.left_running == ()
    children = rec.processes[~rec.processes.is_target]
    assert len(children) == 3 and (children.exit_code == 7).all(), children


# -- attach to another user's process ------------------------------------------------------

OTHER_USER = "inspector-test-other"


@pytest.fixture(scope="module")
def other_user() -> Iterator[pwd.struct_passwd]:
    created = False
    try:
        user = pwd.getpwnam(OTHER_USER)
    except KeyError:
        proc = subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                               "/usr/sbin/nologin", OTHER_USER], capture_output=True, text=True)
        if proc.returncode != 0:
            skip_or_fail(f"cannot create a user here: {proc.stderr.strip()}")
        created = True
        user = pwd.getpwnam(OTHER_USER)
    try:
        yield user
    finally:
        if created:
            subprocess.run(["userdel", OTHER_USER], check=False)


def as_user(user: pwd.struct_passwd) -> dict:
    def drop() -> None:
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    return {"preexec_fn": drop}


def test_attach_to_another_users_process(tmp_path: Path,
                                         other_user: pwd.struct_passwd) -> None:
    if os.geteuid() != 0:
        skip_or_fail("needs root to run a process as another user")
    theirs = subprocess.Popen(["/usr/bin/python3", "-c", "import time; time.sleep(60)"],
                              **as_user(other_user))
    mine = subprocess.Popen(["sleep", "60"])
    tmp_path.chmod(0o1777)  # the other user writes here too: sticky, as /tmp (0777 is refused)
    try:
        # root records another user's process
        out = tmp_path / "theirs.sqlite"
        proc = subprocess.run([PY, "-m", "inspector", "record", "-q", "-d", "1", "-o",
                               str(out), "--pid", str(theirs.pid)],
                              capture_output=True, text=True, timeout=TIMEOUT_S)
        assert proc.returncode == 0, proc.stderr
        rec = inspector.load(out)
        assert rec.meta.complete is True and not rec.thread_samples.empty
        # that user may not record root's process: one line, no file. Debian's python3 (the
        # venv's lies under /root, closed to other users) with the worktree and the venv's
        # packages on its path.
        site = next((REPO / ".venv" / "lib").glob("python3*/site-packages"))
        denied = tmp_path / "mine.sqlite"
        proc = subprocess.run(["/usr/bin/python3", "-m", "inspector", "record", "-q", "-o",
                               str(denied), "--pid", str(mine.pid)],
                              capture_output=True, text=True, timeout=TIMEOUT_S,
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": f"{REPO}:{site}"},
                              **as_user(other_user))
        assert proc.returncode != 0
        assert proc.stderr.startswith("inspector: not permitted") and \
            len(proc.stderr.splitlines()) == 1, proc.stderr
        assert not list(tmp_path.glob("mine.sqlite*"))
    finally:
        theirs.kill()
        mine.kill()
        theirs.wait()
        mine.wait()


# -- never destroy --------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["true"], ["no-such-command-x9"]])
def test_a_file_that_is_not_a_recording_is_refused_and_left_intact(
        tmp_path: Path, command: list[str]) -> None:
    notes, marker = tmp_path / "notes.txt", tmp_path / "ran"
    notes.write_text("precious")
    proc = subprocess.run(record_argv(notes, ["sh", "-c", f"touch {marker}"]
                                      if command == ["true"] else command, ("-q",)),
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"inspector: cannot write recording {notes}: exists and is not an inspector recording"
        " (left as it is; choose another -o)"]
    assert notes.read_text() == "precious"
    assert not marker.exists(), "refused before the command starts"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_an_existing_recording_is_kept_as_old_and_the_new_one_is_private(
        tmp_path: Path) -> None:
    out = tmp_path / "rec.sqlite"
    for word in ("first", "second"):
        proc = subprocess.run(record_argv(out, ["echo", word], ("-q", "--no-stacks")),
                              capture_output=True, text=True, timeout=TIMEOUT_S)
        assert proc.returncode == 0, proc.stderr
    assert inspector.load(out).meta.command == ("echo", "second")
    assert inspector.load(tmp_path / "rec.sqlite.old").meta.command == ("echo", "first")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.sqlite", "rec.sqlite.old"]


def test_an_empty_file_at_the_output_is_replaced(tmp_path: Path) -> None:
    out = tmp_path / "made-by-mktemp"
    out.touch()
    proc = subprocess.run(record_argv(out, ["true"], ("-q", "--no-stacks")),
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    assert inspector.load(out).meta.complete is True


def test_a_missing_command_leaves_an_existing_recording_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "rec.sqlite"
    subprocess.run(record_argv(out, ["true"], ("-q", "--no-stacks")), check=True,
                   capture_output=True, timeout=TIMEOUT_S)
    before = out.read_bytes()
    proc = subprocess.run(record_argv(out, ["no-such-command-x9"], ("-q",)),
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 127
    assert proc.stderr.splitlines() == ["inspector: command not found: no-such-command-x9"]
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.sqlite"]


# -- never leak a secret --------------------------------------------------------------------

SECRETS = ("hunter2x", "tok-5ec7", "k3y-abc", "pw-9d1", "bear-77q")
SECRET_ARGS = ["--password=hunter2x", "--token", "tok-5ec7", "API_KEY=k3y-abc",
               "https://bob:pw-9d1@example.com/x", "Authorization: Bearer bear-77q"]
SECRET_TARGET = ("import subprocess, sys, threading, time\n"
                 "threading.current_thread().name = 'main ' + sys.argv[1]\n"
                 "t = threading.Thread(target=time.sleep, args=(2.0,), name=sys.argv[1])\n"
                 "t.start()\n"
                 "subprocess.run([sys.executable, '-c', 'import time; time.sleep(0.5)',"
                 " *sys.argv[1:]])\n"
                 "t.join()\n")


def test_secrets_are_masked_by_default_in_the_file_and_everything_read_from_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "secrets.sqlite"
    proc = subprocess.run(record_argv(out, [PY, "-c", SECRET_TARGET, *SECRET_ARGS], ("-q",)),
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    for secret in SECRETS:
        assert secret.encode() not in data, secret
    rec = inspector.load(out)
    assert rec.meta.command[3:] == (
        "--password=***", "--token", "***", "API_KEY=***", "https://bob:***@example.com/x",
        "Authorization: Bearer ***")
    assert len(rec.processes) == 2
    assert "--password=***" in set(rec.threads["name"].dropna())  # thread names too
    html = tmp_path / "secrets.html"  # the report and summary: the CLI, in this process
    assert cli_main(["report", "-o", str(html), str(out)]) == 0, capsys.readouterr().err
    assert cli_main(["summary", str(out)]) == 0, capsys.readouterr().err
    shown = html.read_text() + capsys.readouterr().out
    assert "--password=***" in shown
    for secret in SECRETS:
        assert secret not in shown, secret


def test_redact_masks_every_text_field_names_paths_and_stacks_included(
        tmp_path: Path) -> None:
    folder = tmp_path / "acme-corp-work"
    folder.mkdir()
    script = folder / "acme-corp-job.py"
    script.write_text("import threading, time\n"
                      "def acme_corp_spin():\n"
                      "    end = time.monotonic() + 2.0\n"
                      "    while time.monotonic() < end: pass\n"
                      "t = threading.Thread(target=acme_corp_spin, name='acme-corp-thread')\n"
                      "t.start(); t.join()\n")
    out = tmp_path / "redacted.sqlite"
    proc = subprocess.run(record_argv(out, [PY, str(script)], ("-q", "--redact", "acme.corp")),
                          capture_output=True, text=True, timeout=TIMEOUT_S, cwd=folder)
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    for word in (b"acme-corp", b"acme_corp"):
        assert word not in data
    rec = inspector.load(out)
    assert rec.meta.cwd.endswith("/***-work")
    assert "***-thread" in set(rec.threads["name"].dropna())
    stacks = rec.stacks["stack"].astype(str)
    assert stacks.str.contains("***_spin (", regex=False).any()
    assert stacks.str.contains("/***-work/***-job.py:", regex=False).any()


# -- every writer error takes one path ------------------------------------------------------

@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    yield from mounted_tmpfs(tmp_path / "small", "size=1m")


def test_a_failed_commit_loses_its_batch_and_no_stack_points_at_nothing(
        small_tmpfs: Path) -> None:
    path = small_tmpfs / "rec.sqlite"
    writer = RecordingWriter(path)
    writer.set_meta({"complete": True, "duration_s": 1.0, "command": ["x"]})

    def spans(texts: list[str], t_s: float) -> list[tuple]:
        return [(t_s, 0.01, 1, 1, 1, "main", text, 1, None) for text in texts]

    writer.add_stacks(spans(["f (a.py:1)"], 0.0))
    writer.flush()
    assert writer.error is None
    fill(small_tmpfs, 0)
    big = [f"g{i} (b.py:{i});" + "x" * 4000 for i in range(100)]
    writer.add_stacks(spans(big, 1.0))  # its stack texts cannot all be written
    writer.flush()
    assert writer.error is not None and "full" in writer.error
    (small_tmpfs / "filler").unlink()
    writer.add_stacks(spans(big[:3], 2.0))  # the same texts again: written now
    writer.flush()
    writer.close()
    rec = inspector.load(path)
    assert rec.stacks["stack"].notna().all(), "every span has its stack text"
    assert set(rec.stacks.t_s) == {0.0, 2.0}, "the failed batch is gone, all of it"


def test_a_full_disk_at_the_end_is_one_warning_and_a_readable_recording(
        small_tmpfs: Path) -> None:
    # the target fills the disk just before it exits: the recorder's last writes, its
    # finish and its index building fail
    out = small_tmpfs / "rec.sqlite"
    command = [PY, "-c", "import sys, time\ntime.sleep(0.5)\n"
               "with open(sys.argv[1], 'wb') as f:\n"
               "    try: f.write(b'\\0' * (8 << 20))\n"
               "    except OSError: pass\n", str(small_tmpfs / "filler")]
    proc = subprocess.run(record_argv(out, command, ("-q",)), capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0
    lines = proc.stderr.splitlines()
    assert lines[0] == "inspector: could not write all of the recording: database or disk is full"
    assert len(lines) == 2 and lines[1].startswith("inspector: recording written to"), lines
    assert not inspector.load(out).thread_samples.empty


# -- the reader trusts nothing --------------------------------------------------------------

@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("good") / "good.sqlite"
    subprocess.run(record_argv(out, [PY, FAULT_EXIT, "0.5", "exit:0"], ("-q",)), check=True,
                   capture_output=True, timeout=TIMEOUT_S, preexec_fn=no_core_dumps)
    return out


def altered(good: Path, tmp_path: Path, name: str, sql: str) -> Path:
    path = tmp_path / name
    path.write_bytes(good.read_bytes())
    db = sqlite3.connect(path)
    db.executescript(sql)
    db.commit()
    db.close()
    return path


ENDLESS_VIEW = ("DROP TABLE thread_samples; CREATE VIEW thread_samples AS"
                " WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r)"
                " SELECT x AS t_s, 1 AS proc_id, 1 AS pid, 1 AS tid, 0.0 AS cpu_user_s,"
                " 0.0 AS cpu_system_s, 'R' AS state, -1 AS syscall, 'running' AS syscall_name,"
                " 0.0 AS on_cpu_s, 0.0 AS runqueue_s, NULL AS futex_kind FROM r;")
FINITE_VIEW = ENDLESS_VIEW.replace("FROM r)", "FROM r WHERE x < 50)")


@pytest.mark.parametrize("name, sql", [
    ("endless-view", ENDLESS_VIEW),
    ("finite-view", FINITE_VIEW),
    ("virtual-table", "DROP TABLE problems; CREATE VIRTUAL TABLE problems USING"
                      " fts5(t_s, source, pid, tid, kind, detail);"),
])
def test_a_reader_table_that_is_not_a_plain_table_is_refused(
        good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str,
        sql: str) -> None:
    path = altered(good, tmp_path, f"{name}.sqlite", sql)
    with pytest.raises(RecordingError, match="not an inspector recording .* not a table"):
        inspector.load(path)
    # and the commands say so in one line: the endless view's as its own process, within
    # the hang guard; the others' through the same main(), in this process
    if name == "endless-view":
        proc = subprocess.run([PY, "-m", "inspector", "summary", str(path)],
                              capture_output=True, text=True, timeout=TIMEOUT_S)
        status, err = proc.returncode, proc.stderr
    else:
        status, err = cli_main(["summary", str(path)]), capsys.readouterr().err
    assert status == 1 and len(err.splitlines()) == 1, err


def test_column_names_from_the_file_are_data_not_sql(good: Path, tmp_path: Path) -> None:
    hostile = 'x" FROM meta; --'
    quoted = '"' + hostile.replace('"', '""') + '"'
    path = altered(good, tmp_path, "odd-column.sqlite",
                   f"ALTER TABLE thread_samples ADD COLUMN {quoted};"
                   'ALTER TABLE stacks ADD COLUMN "odd, name";')
    rec = inspector.load(path)
    assert hostile in rec.thread_samples.columns
    assert len(rec.thread_samples) == len(inspector.load(good).thread_samples)


def test_no_statement_runs_unbounded_on_a_reader_connection(good: Path) -> None:
    db = untrusted.connect(good)
    try:
        with pytest.raises(sqlite3.OperationalError, match="interrupted"):
            db.execute("WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r)"
                       " SELECT count(*) FROM r").fetchone()
        with pytest.raises(sqlite3.OperationalError):
            db.execute("CREATE TABLE t (x)")  # and it writes nothing
    finally:
        db.close()


def test_a_wal_beside_a_recording_is_read_and_neither_is_changed(good: Path,
                                                                 tmp_path: Path) -> None:
    path = tmp_path / "walled.sqlite"
    path.write_bytes(good.read_bytes())
    # a writer that dies with its last commit still in the -wal, as a killed recorder does
    subprocess.run([PY, "-c", "import os, sqlite3, sys\n"
                    "db = sqlite3.connect(sys.argv[1])\n"
                    "db.execute('PRAGMA journal_mode=WAL')\n"
                    "db.execute('UPDATE meta SET value = ? WHERE key = ?',"
                    " ('\"walled\"', 'hostname'))\n"
                    "db.commit()\n"
                    "os._exit(0)\n", str(path)], check=True, timeout=TIMEOUT_S)
    files = {p.name: p.read_bytes() for p in tmp_path.glob("walled.sqlite*")
             if not p.name.endswith("-shm")}
    assert "walled.sqlite-wal" in files
    assert inspector.load(path).meta.hostname == "walled"
    assert files == {p.name: p.read_bytes() for p in tmp_path.glob("walled.sqlite*")
                     if not p.name.endswith("-shm")}


# -- truncation: at 8, 64, 256 bytes, 75% and every page boundary; load() and every command

def cuts(size: int, page: int) -> list[int]:
    return sorted({8, 64, 256, size * 3 // 4, *range(page, size, page)})


def test_a_truncated_recording_is_one_line_and_nonzero_everywhere(
        good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = good.read_bytes()
    page = int.from_bytes(data[16:18], "big")
    page = 65536 if page == 1 else page
    offsets = cuts(len(data), page)
    assert len(offsets) >= 8
    commands = {
        "summary": lambda p: ["summary", str(p)],
        "report": lambda p: ["report", "-o", str(p) + ".html", str(p)],
        "explain": lambda p: ["explain", str(p)],
        "compare": lambda p: ["compare", "-o", str(p) + ".cmp.html", str(good), str(p)],
        "export": lambda p: ["export", "-f", "speedscope", "-o", str(p) + ".json", str(p)],
    }
    for offset in offsets:
        path = tmp_path / f"cut-{offset}.sqlite"
        path.write_bytes(data[:offset])
        with pytest.raises(RecordingError) as caught:
            inspector.load(path)
        assert "\n" not in str(caught.value) and str(path) in str(caught.value)
        for name, argv in commands.items():
            status = cli_main(argv(path))  # the real CLI, in this process: 5 x 30 runs
            err = capsys.readouterr().err
            assert status == 1, (offset, name, err)
            assert err.count("\n") == 1 and err.startswith("inspector: "), (offset, name, err)


# -- the compare page: names from recordings are text in plotly's pseudo-HTML too ------------

def test_compare_subplot_titles_from_recordings_are_shown_as_text(good: Path,
                                                                  tmp_path: Path) -> None:
    from browser import browser, open_report

    jobs = ["<b>bold</b>", "<a href='javascript:alert(1)'>link</a>"]
    paths = []
    for i, job in enumerate(jobs):
        command = json.dumps([PY, "-m", "inspector.jobs", job, "sequential"])
        paths.append(altered(good, tmp_path, f"job{i}.sqlite",
                             f"UPDATE meta SET value = '{command.replace(chr(39), chr(39) * 2)}'"
                             " WHERE key = 'command';"))
    page_path = tmp_path / "compare.html"
    proc = subprocess.run([PY, "-m", "inspector", "compare", "-o", str(page_path),
                           *map(str, paths)], capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    with browser() as b, open_report(b, page_path) as (page, report):
        assert report.dialogs == [] and report.console_errors == []
        titles = page.locator(".annotation-text").all_text_contents()
        for job in jobs:
            assert job in titles, titles
        assert page.locator("svg a, svg b").count() == 0


# -- a fuzz run of load() over real recordings whose schema was tampered with ---------------

TAMPERINGS = [
    "ALTER TABLE {t} RENAME TO {t}_kept; CREATE VIEW {t} AS SELECT * FROM {t}_kept;",
    'ALTER TABLE {t} ADD COLUMN "x"" FROM meta; --";',
    'ALTER TABLE {t} ADD COLUMN "select";',
    "ALTER TABLE {t} ADD COLUMN g INTEGER AS (length(zeroblob(1000000)));",
    "DROP TABLE {t}; CREATE TABLE {t} (t_s REAL);",
    "DROP TABLE {t};",
    "CREATE TRIGGER tr_{t} AFTER INSERT ON {t} BEGIN SELECT 1; END;",
    "CREATE INDEX ix_odd_{t} ON {t} (rowid);",
    "UPDATE {t} SET rowid = -rowid;",
]
READ_TABLES = ["meta", "processes", "threads", "process_samples", "thread_samples", "stacks",
               "stack_texts", "stack_frames", "stack_nodes", "problems", "gil_samples",
               "machine_samples", "thread_blocks",
               "process_blocks", "stack_blocks", "machine_blocks"]


def test_loading_survives_any_tampering_with_the_schema(good: Path, tmp_path: Path) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=40, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.tuples(st.sampled_from(TAMPERINGS), st.sampled_from(READ_TABLES)),
                    min_size=1, max_size=3))
    def tamper(edits: list[tuple[str, str]]) -> None:
        path = tmp_path / "tampered.sqlite"
        path.write_bytes(good.read_bytes())
        db = sqlite3.connect(path)
        for sql, table in edits:
            try:
                db.executescript(sql.format(t=table))
            except sqlite3.Error:
                pass  # not applicable to this table: the others still are
        db.commit()
        db.close()
        try:
            rec = inspector.load(path)
        except RecordingError as e:
            assert "\n" not in str(e) and str(path) in str(e)
            return
        assert isinstance(rec.meta, Meta) and "cpu_percent" in rec.thread_samples.columns

    tamper()
