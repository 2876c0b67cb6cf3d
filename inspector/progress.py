"""A progress line on the terminal for work that takes more than a few seconds (reading a
long recording, writing its report or an export): on stderr, only when stderr is a terminal,
and only once the work has lasted `SHOW_AFTER_S`; quiet otherwise, so scripts and pipes see
nothing. The line is erased when the work ends.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TextIO

from inspector.text.terminal import clean

SHOW_AFTER_S = 2.0  # quicker work shows nothing: a line that flashes by is noise
REDRAW_S = 0.5


class Progress:
    """`with Progress("report") as p: p.step("reading X"); ...; p.step("drawing")`: shows
    "inspector: report: reading X  (12 s)", the step and the time so far."""

    def __init__(self, task: str, stream: TextIO | None = None) -> None:
        self.task = task
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_terminal(self.stream)
        self._step = ""
        self._t0 = time.monotonic()
        self._done = threading.Event()
        self._shown = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="inspector-progress",
                                        daemon=True)

    def __enter__(self) -> Progress:
        if self.enabled:
            self._thread.start()
        return self

    def step(self, text: str) -> None:
        self._step = clean(text)  # it names files: shown as text, never as terminal control

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._done.set()
        if self.enabled:
            self._thread.join()
        with self._lock:
            if self._shown:
                self.stream.write("\r\x1b[2K")
                self.stream.flush()

    def _run(self) -> None:
        if self._done.wait(SHOW_AFTER_S):
            return
        while not self._done.is_set():
            elapsed = time.monotonic() - self._t0
            with self._lock:
                if self._done.is_set():
                    return
                step = f": {self._step}" if self._step else ""
                self.stream.write(f"\r\x1b[2Kinspector: {self.task}{step}  ({elapsed:.0f} s)")
                self.stream.flush()
                self._shown = True
            self._done.wait(REDRAW_S)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
