"""The bundled reference jobs that `inspector demo` records: one CPU-bound and one I/O-bound
job, each in four variants (sequential, threading, multiprocessing, asyncio). Standard library
only, so a recording of them shows the concurrency model and nothing else.

Run one by hand: `python -m inspector.jobs cpu multiprocessing --size 200`.
"""

from __future__ import annotations

from inspector.errors import JobError

JOBS = ("cpu", "io")
VARIANTS = ("sequential", "threading", "multiprocessing", "asyncio")

__all__ = ["JOBS", "VARIANTS", "JobError"]
