"""The progress line: shown on a terminal (tmux) once work lasts a few seconds, erased when
it ends; nothing at all when stderr is not a terminal."""

from __future__ import annotations

import subprocess
import sys
import time

from inspector.progress import SHOW_AFTER_S


def slow_work(seconds: float) -> str:
    """A program whose work shows a progress line for `seconds`, then says it is done."""
    return ("import time\n"
            "from inspector.progress import Progress\n"
            "with Progress('export perfetto') as p:\n"
            "    p.step('reading big.sqlite')\n"
            f"    time.sleep({seconds})\n"
            "print('WORK-DONE')\n")


def test_progress_shows_on_a_terminal_and_is_erased_when_done() -> None:
    socket = f"inspector-progress-{time.monotonic_ns()}"
    tmux = ["tmux", "-L", socket, "-f", "/dev/null"]
    subprocess.run([*tmux, "new-session", "-d", "-s", "p", "-x", "120", "-y", "10",
                    # the line shows after SHOW_AFTER_S: 2 s of it, read every 0.2 s
                    f"{sys.executable} -c \"{slow_work(SHOW_AFTER_S + 2)}\"; sleep 30"],
                   check=True)
    try:
        seen = done = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "WORK-DONE" not in done:
            pane = subprocess.run([*tmux, "capture-pane", "-p", "-t", "p"],
                                  capture_output=True, text=True, check=True).stdout
            if "inspector: export perfetto: reading big.sqlite" in pane:
                seen = pane
            done = pane
            time.sleep(0.2)
        assert "s)" in seen  # the time so far
        assert "WORK-DONE" in done and "reading big.sqlite" not in done  # erased
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


def test_progress_is_quiet_when_stderr_is_not_a_terminal() -> None:
    out = subprocess.run([sys.executable, "-c", slow_work(SHOW_AFTER_S + 0.5)],
                         capture_output=True, text=True, check=True)
    assert out.stdout == "WORK-DONE\n" and out.stderr == ""
