"""The exceptions the CLI turns into one line on stderr and an exit status."""

from __future__ import annotations


class UsageError(Exception):
    """The command line is wrong (exit status 2)."""
