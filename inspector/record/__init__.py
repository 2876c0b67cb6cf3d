"""Launch or attach to a program and record its processes, threads and Python stacks."""

from inspector.errors import AttachError, OutputError, TargetNotFound
from inspector.record.recorder import RecordOptions, RecordResult, attach, record_command

__all__ = ["AttachError", "OutputError", "RecordOptions", "RecordResult", "TargetNotFound",
           "attach", "record_command"]
