"""Reads py-spy stack texts ('func (file:line);...' root first): which frames are the
standard library, which wait on another thread or process, which are an asyncio loop, and
which a forked child merely inherited from its parent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# A frame's line number: py-spy's are a few digits; more is no line (int() of 4,300 digits
# raises, and a longer text is work for nothing).
MAX_LINE_DIGITS = 18
# The standard library lives in .../lib/pythonX.Y[t]/ (site-packages below it is not stdlib).
_STDLIB = re.compile(r"/lib/python\d+\.\d+t?/(?!(site|dist)-packages/)")

# Standard-library modules whose blocking calls wait for another thread or process: a lock,
# condition, event, semaphore, queue, join, future, pool result, or a child's pipe.
# A thread blocked (in any syscall) under one of these frames waits on the program itself.
SYNC_WAIT_FILES = ("threading.py", "queue.py", "subprocess.py")
SYNC_WAIT_DIRS = ("/multiprocessing/", "/concurrent/futures/")
# Functions of those modules that run the user's code (a thread's or worker's entry): when
# one is the top Python frame the thread is in native code it called, not waiting on a peer.
RUNNER_FUNCS = frozenset({"run", "_bootstrap", "_bootstrap_inner", "worker", "mapstar",
                          "starmapstar", "_worker", "_process_worker", "_launch"})

# Frames that are the asyncio machinery itself rather than the user's coroutines.
ASYNCIO_DIR = "/asyncio/"
LOOP_FUNCS = ("run_forever", "_run_once")
SELECTOR_FILE = "selectors.py"
# Where a child process of multiprocessing (any start method; so also ProcessPoolExecutor)
# starts its own work: a child forked from a thread running a loop keeps that thread's frames
# below this one, but no loop runs in the child (issue 22). (file suffix, function)
PROCESS_BOOTSTRAPS = (("/multiprocessing/process.py", "_bootstrap"),
                      ("/concurrent/futures/process.py", "_process_worker"))


@dataclass(frozen=True)
class Frame:
    func: str
    file: str
    line: int

    @property
    def text(self) -> str:
        return f"{self.func} ({self.file}:{self.line})" if self.file else self.func

    @property
    def is_stdlib(self) -> bool:
        return bool(_STDLIB.search(self.file)) or self.file.startswith("<frozen")

    @property
    def is_sync_wait(self) -> bool:
        if not self.is_stdlib:
            return False
        base = self.file.rsplit("/", 1)[-1]
        return base in SYNC_WAIT_FILES or any(d in self.file for d in SYNC_WAIT_DIRS)

    @property
    def is_loop(self) -> bool:
        return (self.file.endswith("/base_events.py") and ASYNCIO_DIR in self.file
                and self.func.rsplit(".", 1)[-1] in LOOP_FUNCS)

    @property
    def is_process_bootstrap(self) -> bool:
        func = self.func.rsplit(".", 1)[-1]
        return self.is_stdlib and any(self.file.endswith(suffix) and func == name
                                      for suffix, name in PROCESS_BOOTSTRAPS)

    @property
    def is_selector(self) -> bool:
        return self.file.endswith("/" + SELECTOR_FILE) or self.file == SELECTOR_FILE

    @property
    def is_user(self) -> bool:
        """Code of the program (or its libraries), not the standard library."""
        return bool(self.file) and not self.is_stdlib


def parse_frame(text: str) -> Frame:
    """'func (file:line)' -> Frame(func, file, line): the function ends at the first ' (',
    the line is the digits after the last ':'; anything else is a frame of that text alone.
    Linear in the text: the regex this replaces (`(.*?) \\((.*):(\\d+)\\)$`) backtracked
    quadratically on a text such as 'a (' repeated, which a hostile stack can hold."""
    body = text[:-1] if text.endswith("\n") else text  # as the regex's `$` allowed
    if "\n" in body or not body.endswith(")"):
        return Frame(text, "", 0)
    head, colon, line = body[:-1].rpartition(":")
    func, paren, file = head.partition(" (")
    if not colon or not paren or not line.isdecimal() or len(line) > MAX_LINE_DIGITS:
        return Frame(text, "", 0)
    return Frame(func, file, int(line))


@lru_cache(maxsize=65536)
def parse_stack(text: str | None) -> tuple[Frame, ...]:
    """Frames root first, leaf last; () for no stack."""
    if not text or not isinstance(text, str):
        return ()
    return tuple(parse_frame(part) for part in text.split(";"))


def own_frames(frames: tuple[Frame, ...]) -> tuple[Frame, ...]:
    """The frames this process runs itself: those above the last process bootstrap. Below it
    lie the frames a forked child copied from its parent's thread, which never resume here."""
    for i in range(len(frames) - 1, -1, -1):
        if frames[i].is_process_bootstrap:
            return frames[i + 1:]
    return frames


@dataclass(frozen=True)
class StackFacts:
    """What one stack says about the thread that was in it."""

    leaf: str | None            # the frame on top, as text
    waits_on_program: bool      # under a lock/condition/queue/join/pool frame
    in_loop: bool               # an asyncio event loop is running on this thread (not
                                # one a forked child inherited: see own_frames)
    in_selector: bool           # ...and it is waiting in its selector
    user_leaf: str | None       # leaf-most frame of the program's own code


@lru_cache(maxsize=65536)
def stack_facts(text: str | None) -> StackFacts:
    frames = parse_stack(text)
    if not frames:
        return StackFacts(None, False, False, False, None)
    waits = False
    # Leaf to root through standard-library frames only: a lock taken by library code called
    # from the user's code counts, but the user's own code above it decides nothing here.
    for frame in reversed(frames):
        if not frame.is_stdlib or frame.func.rsplit(".", 1)[-1] in RUNNER_FUNCS:
            break
        if frame.is_sync_wait:
            waits = True
            break
    own = own_frames(frames)
    in_loop = any(f.is_loop for f in own)
    in_selector = in_loop and any(f.is_selector for f in own)
    user_leaf = next((f for f in reversed(frames) if f.is_user), None)
    return StackFacts(frames[-1].text, waits, in_loop, in_selector,
                      user_leaf.text if user_leaf else None)


def function_name(frame_text: str | None) -> str | None:
    """'work (/x/y.py:7)' -> 'work'."""
    if frame_text is None:
        return None
    return parse_frame(frame_text).func
