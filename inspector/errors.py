"""The errors inspector reports: each is an `InspectorError` that the CLI turns into one line
on stderr and its `exit_status`, and only the CLI does. Standard library only (the stdlib-only
demo jobs and `inspector --help` import it).
"""

from __future__ import annotations


class InspectorError(Exception):
    """A failure inspector explains in one line; `exit_status` is what the CLI exits with."""

    exit_status: int = 1


class UsageError(InspectorError):
    """The command line is wrong."""

    exit_status = 2


class RecordingError(InspectorError):
    """A file that is not a readable inspector recording (missing, corrupt, too new)."""


class TargetNotFound(InspectorError):
    """The command to run does not exist (127) or may not be executed (126), as a shell says."""

    exit_status = 127

    def __init__(self, message: str, exit_status: int = 127) -> None:
        super().__init__(message)
        self.exit_status = exit_status


class AttachError(InspectorError):
    """The process to attach to does not exist or may not be inspected."""


class OutputError(InspectorError):
    """The recording cannot be written where asked."""


class ReportError(InspectorError):
    """The report could not be written."""


class CompareError(InspectorError):
    """The comparison page cannot be written where asked."""


class DemoError(InspectorError):
    """A reference job, or the recording of it, failed (or the demo's folder cannot be made)."""


class JobError(InspectorError):
    """A demo job produced a wrong answer or could not reach its server."""


class CalibrationError(InspectorError):
    """Measuring the machine (inspector.record.calibrate) failed: a worker it forked died."""


class TrialError(InspectorError):
    """`inspector try` could not measure: the original run failed, or a run could not be
    made."""


class TrialRefused(TrialError):
    """`inspector try` claims nothing: the swap cannot work for this program (the message
    says why), or there is nothing to swap."""

    exit_status = 3
