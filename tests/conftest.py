"""What the test modules share: the `inspector` command run as a user runs it, and the
recordings that several modules read, made once per session (a recording takes seconds;
reading it again costs nothing)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any


def inspector_cli(*args: str, timeout: float = 120, text: bool = True,
                  **kw: Any) -> subprocess.CompletedProcess[Any]:
    """`python -m inspector ARGS` with this interpreter, its output captured (as text
    unless text=False: an export to stdout is bytes); keyword arguments go to
    subprocess.run (env, cwd, preexec_fn)."""
    return subprocess.run([sys.executable, "-m", "inspector", *args], capture_output=True,
                          text=text, timeout=timeout, **kw)
