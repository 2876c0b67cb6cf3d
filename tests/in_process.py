"""`inspector ARGS` run by the CLI's own main() in the test's process, its output captured as
tests/conftest.py inspector_cli captures a subprocess's: for what is ours to check (argument
checks, refusals, what is printed and written) without the second or so a new interpreter
spends importing pandas. Each behaviour keeps one real `python -m inspector` run too (exit
status, no traceback, the real entry point)."""

from __future__ import annotations

import io
import os
import subprocess
from contextlib import redirect_stderr, redirect_stdout

from inspector.cli import main


def inspector_here(*args: str, umask: int | None = None) -> subprocess.CompletedProcess[str]:
    """main(ARGS) with sys.stdout and sys.stderr captured, as a CompletedProcess; umask: this
    process's for the call (files are made as under that umask)."""
    out, err = io.StringIO(), io.StringIO()
    before = os.umask(umask) if umask is not None else None
    try:
        with redirect_stdout(out), redirect_stderr(err):
            status = main(list(args))
    finally:
        if before is not None:
            os.umask(before)
    return subprocess.CompletedProcess(["inspector", *args], status, out.getvalue(),
                                       err.getvalue())
