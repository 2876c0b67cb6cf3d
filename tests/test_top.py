"""`inspector top`: one frame for scripts (--once), and the live view driven in a real
terminal (tmux: send-keys, capture-pane)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import turns
from conftest import inspector_cli, inspector_clis
from machine import for_the_recording

import inspector
from inspector.analyze.states import FUTEX_IN_INTERPRETER
from inspector.analyze.vocabulary import THREAD_STATES
from inspector.live.frame import build_frame

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ROOT / "tests" / "workloads"
INSPECTOR = [sys.executable, "-m", "inspector"]


def _top(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    # at raised priority (tests/machine.py): what a snapshot shows must not depend on
    # whether a busy machine let it sample in time; and so alone (tests/turns.py)
    with turns.alone():
        return subprocess.run([*INSPECTOR, "top", *args], capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT, preexec_fn=for_the_recording())


def test_once_shows_gil_threads_folded_under_their_process_with_the_holder(
        tmp_path: Path) -> None:
    out = _top("--once", "-d", "1", "-o", str(tmp_path / "seen.sqlite"), "--", sys.executable,
               str(WORKLOADS / "gil_threads.py"), "20")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("inspector top  pid ")
    assert lines[1].startswith("Verdict so far: CPU-bound")
    threads = [ln for ln in lines if "arith-" in ln]
    assert len(threads) == 4
    # the state words are the vocabulary's: threads that want the CPU (the GIL, or a core
    # when other programs keep the machine busy), never sleeping or waiting on a lock
    wanting = {THREAD_STATES[k].word for k in ("cpu", "gil", "runqueue")}
    assert all(any(w in ln for w in wanting) for ln in threads), threads
    # while threads wait for the GIL, the one on a CPU is named its holder: one at most, and
    # none when none waits (at a hand-off every thread can be in the futex at the sample)
    waiting_now = "waiting for the GIL now" in out.stdout
    holders = sum("holds the GIL" in ln for ln in threads)
    assert holders <= 1 and (waiting_now or holders == 0), out.stdout
    # one process row, its threads under it
    process_rows = [ln for ln in lines if "gil_threads.py" in ln]
    assert len(process_rows) == 1 and "5 threads" in process_rows[0]
    # top stopped the command it started, as Ctrl-C would, and kept what it saw
    assert "KeyboardInterrupt" in (tmp_path / "seen.log").read_text()
    seen = inspector.load(tmp_path / "seen.sqlite")
    assert set(seen.threads["name"]) >= {"arith-0"}
    # and at each sample it kept where a thread ran while another waited for the GIL, a frame
    # cut there names exactly one holder
    ts = seen.thread_samples
    kind = pd.to_numeric(ts["futex_kind"], errors="coerce")
    both = set(ts.loc[kind == FUTEX_IN_INTERPRETER, "t_s"]) & set(
        ts.loc[ts["syscall_name"].astype(object) == "running", "t_s"])
    # from the second sample on (a thread's state is a difference of two)
    both = {t for t in both if t > sorted(set(ts["t_s"]))[1]}
    assert both, "no sample caught a thread running while another waited for the GIL"
    for t in sorted(both):
        cut = dataclasses.replace(seen, thread_samples=ts[ts["t_s"] <= t],
                                  stacks=seen.stacks[seen.stacks["t_s"] <= t],
                                  process_samples=seen.process_samples[
                                      seen.process_samples["t_s"] <= t])
        frame = build_frame(cut, 1.0)
        holders = [th for p in frame.processes for th in p.threads if th.holds_gil]
        assert len(holders) == 1, (t, frame)


@pytest.mark.alone  # its program runs at raised priority (tests/turns.py)
def test_once_attaches_to_a_pid_and_shows_its_child_process() -> None:
    prog = subprocess.Popen([sys.executable, str(WORKLOADS / "live_threads_and_child.py")],
                            stdout=subprocess.PIPE, text=True, preexec_fn=for_the_recording())
    try:
        assert prog.stdout is not None
        _, pid, child = prog.stdout.readline().split()
        out = _top("--once", "--pid", pid, "--no-stacks")
        assert out.returncode == 0, out.stderr
        rows = out.stdout.splitlines()
        assert any(ln.split()[:1] == [pid] and "9 threads" in ln for ln in rows)
        assert any(ln.split()[:1] == [child] and "1 thread" in ln for ln in rows)
        assert any("lock/queue/join wait" in ln for ln in rows)  # the Event waiters
        assert prog.poll() is None  # top does not stop a program it only looked at
    finally:
        prog.kill()
        prog.wait()


def test_a_missing_pid_or_command_or_a_bad_output_is_one_line(tmp_path: Path) -> None:
    # refused before anything is sampled: beside the other tests, at their priority, all
    # at once
    cases = ((("--once", "--pid", "999999999"), 1),
             (("--once", "--", "/nonexistent/command"), 127),
             (("--once", "-o", str(tmp_path), "--", "true"), 2),
             (("--once", "-o", str(tmp_path / "no" / "x.sqlite"), "--", "true"), 1))
    done = inspector_clis(*(["top", *args] for args, _ in cases), timeout=60, cwd=ROOT)
    for (args, status), out in zip(cases, done):
        assert out.returncode == status, (args, out.stderr)
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("inspector: ")


def test_top_refuses_a_pipe_without_once() -> None:
    out = inspector_cli("top", "--pid", "1", timeout=60, cwd=ROOT)
    assert out.returncode == 2
    assert "--once" in out.stderr and "Traceback" not in out.stderr


# A server of the test's own (-L), with no user configuration (-f /dev/null).
_SOCKET = f"inspector-test-{time.monotonic_ns()}"


def _tmux(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", "-L", _SOCKET, "-f", "/dev/null", *args],
                          capture_output=True, text=True, check=True)


def _pane(session: str) -> str:
    return _tmux("capture-pane", "-p", "-t", session).stdout


def _wait_for(session: str, text: str, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    pane = ""
    while time.monotonic() < deadline:
        pane = _pane(session)
        if text in pane:
            return pane
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never showed; the pane:\n{pane}")


def test_live_view_in_tmux_sorts_folds_trees_quits_and_keeps_the_recording(
        tmp_path: Path) -> None:
    out = tmp_path / "top.sqlite"
    session = f"inspector-top-test-{time.monotonic_ns()}"
    command = " ".join([*INSPECTOR, "top", "-o", str(out), "--", sys.executable,
                        str(WORKLOADS / "live_threads_and_child.py")])
    _tmux("new-session", "-d", "-s", session, "-x", "180", "-y", "40",
          f"cd {ROOT} && {command}; echo TOP-EXITED $?; sleep 60")
    try:
        _tmux("resize-window", "-t", session, "-x", "180", "-y", "40")
        pane = _wait_for(session, "waiter-4")
        assert "Verdict so far:" in pane and "sort: CPU%" in pane
        assert "arith-0" in pane and "MainThread" in pane
        _tmux("send-keys", "-t", session, "N")
        _wait_for(session, "sort: PID")
        _tmux("send-keys", "-t", session, "t")
        pane = _wait_for(session, "sort: PID  tree")
        # in the tree the child process follows its parent's threads, indented
        child_row = next(ln for ln in pane.splitlines() if "time.sleep(60)" in ln)
        # its command indented below the parent's ("1 thread" before it once its row is
        # sampled; on a loaded machine the pane can show the row before that)
        command_at = child_row.find("/")
        assert command_at > 0 and child_row[command_at - 2:command_at] == "  ", pane
        _tmux("send-keys", "-t", session, "H")
        deadline = time.monotonic() + 10
        while "waiter-4" in _pane(session) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "waiter-4" not in _pane(session)  # threads folded away
        _tmux("send-keys", "-t", session, "q")
        _wait_for(session, "TOP-EXITED 0")
    finally:
        subprocess.run(["tmux", "-L", _SOCKET, "kill-server"], capture_output=True)
    rec = inspector.load(out)
    assert rec.meta.complete is True
    assert {"arith-0", "waiter-4"} <= set(rec.threads["name"])
