"""Launch or attach to a program and record its processes, threads and Python stacks."""

from inspector.errors import AttachError, OutputError, TargetNotFound
from inspector.record.attach import attach
from inspector.record.recorder import record_command
from inspector.record.session import RecordOptions, RecordResult

__all__ = ["AttachError", "OutputError", "RecordOptions", "RecordResult", "TargetNotFound",
           "attach", "record_command"]
