"""A look at a running program for `inspector top`: the ordinary recorder attached to it in a
thread of its own, writing a recording (a temp file, or `-o`) that `latest()` reads back.

Reading the file back, rather than rows kept in memory, keeps one reader (`load()`, with its
checks) and one analysis for the live view and for the recording it leaves: what top showed
is what `summary` will say of the file. A frame only analyses its last seconds (frame.recent).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from inspector.errors import InspectorError, RecordingError

if TYPE_CHECKING:
    from inspector.record import RecordResult
    from inspector.recording import Recording

STOP_GRACE_S = 2.0  # a command top started gets this long after SIGINT, then SIGTERM, SIGKILL


class LiveSession:
    """Starts `command` (its output to `log_path`) or looks at `pid`, and records it."""

    def __init__(self, *, pid: int | None, command: Sequence[str] | None,
                 output: Path | None, interval_s: float, stacks: bool) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix="inspector-top-"))
        self.path = output or self._tmp / "top.sqlite"
        self.log_path = (output.with_suffix(".log") if output else self._tmp / "output.log")
        self.interval_s = interval_s
        self.stacks = stacks
        self.command = list(command) if command else None
        self.pid = pid
        self.proc: subprocess.Popen[bytes] | None = None
        self._made_log = False  # the log is ours: made by this look, exclusively
        self.stop = threading.Event()
        self.result: RecordResult | None = None
        self.error: InspectorError | None = None
        self._thread = threading.Thread(target=self._record, name="inspector-top-recorder",
                                        daemon=True)

    def start(self) -> None:
        if self.command is not None:
            from inspector.errors import OutputError, TargetNotFound
            from inspector.files import create_private
            from inspector.recording.partial import check

            if self.path.parent != self._tmp:  # refused before the log is made, if it is
                try:
                    check(self.path)
                except OutputError:
                    self.close()
                    raise
            try:
                # made, never emptied: a file at the log's path stays as it is
                with os.fdopen(create_private(self.log_path), "wb") as log:
                    self._made_log = True
                    try:
                        # its own session: the terminal's keys are top's, not the command's
                        self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL,
                                                     stdout=log, stderr=subprocess.STDOUT,
                                                     start_new_session=True)
                    except OSError as e:
                        code = 127 if isinstance(e, FileNotFoundError) else 126
                        raise TargetNotFound(f"cannot run {self.command[0]}: "
                                             f"{e.strerror or e}", code) from None
            except FileExistsError:
                self.close()
                raise OutputError(f"cannot write {self.log_path}: exists (left as it is; remove"
                                  " it or choose another -o)") from None
            except OSError as e:
                self.close()
                raise OutputError(f"cannot write {self.log_path}: {e.strerror or e}") from None
            except TargetNotFound:
                self.close()
                raise
            self.pid = self.proc.pid
        self._thread.start()

    def _record(self) -> None:
        from inspector.record import RecordOptions, attach

        assert self.pid is not None
        try:
            self.result = attach(self.pid, RecordOptions(
                output=self.path, interval_s=self.interval_s, stacks=self.stacks, quiet=True,
                stop=self.stop))
        except InspectorError as e:
            if self.proc is None or self.proc.poll() is None:
                self.error = e
            # else: the command top started ended before the first sample: nothing to see
        finally:
            if self.proc is not None:
                self.proc.wait()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def latest(self) -> Recording | None:
        """The recording as written so far; None before its first samples."""
        import inspector
        from inspector.recording.partial import partial_path

        # the recorder writes PATH.partial and renames it to PATH once complete
        path = self.path if self.path.exists() else partial_path(self.path)
        if not path.exists():
            if not self.path.exists():  # (or renamed between the two looks)
                return None
            path = self.path
        try:
            rec = inspector.load(path)
        except RecordingError:
            return None  # caught between the file's creation and its tables
        return rec if not rec.thread_samples.empty else None

    def wait_for_samples(self, seconds: float) -> None:
        """Looks for `seconds` (or until the tree ends)."""
        deadline = time.monotonic() + seconds
        while self.running and time.monotonic() < deadline:
            time.sleep(min(0.05, self.interval_s))

    def finish(self) -> None:
        """Ends the look: stops the command top started (as Ctrl-C would), and the
        recording, which is then complete."""
        if self.proc is not None and self.proc.poll() is None:
            _stop_group(self.proc)
        self.stop.set()
        self._thread.join()

    def close(self) -> Path | None:
        """Removes the temp files, and the log beside -o if it is ours and empty; returns
        the command's output file if it is kept (it said something, and lives in the temp
        folder)."""
        log = self.log_path
        if self._made_log and log.parent != self._tmp:
            self._made_log = False
            with contextlib.suppress(OSError):
                if log.stat().st_size == 0:
                    log.unlink()
        kept = (self.proc is not None and log.parent == self._tmp and log.exists()
                and log.stat().st_size > 0)
        if kept:
            for f in self._tmp.iterdir():
                if f != log:
                    f.unlink(missing_ok=True)
            return log
        shutil.rmtree(self._tmp, ignore_errors=True)
        return None


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(STOP_GRACE_S)
            return
        except subprocess.TimeoutExpired:
            continue
