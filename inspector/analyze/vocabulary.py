"""The words of a diagnosis, each written once: the thread states and what to call them, the
verdict's bounds and flags, and the advice. The summary, the report and the comparison read
them from here; the values (`"cpu"`, `"keep"`, ...) are the JSON contract of `summary --json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The values the analysis hands out, as types: a value outside them is a bug (or a newer file,
# which the look-ups below word as itself).
State = Literal["cpu", "gil", "lock", "io", "sleep", "runqueue", "other"]
Bound = Literal["cpu", "io", "mixed", "idle"]
AdviceKey = Literal["multiprocessing", "threading", "asyncio", "keep", "unknown",
                    "unblock-loop", "shorter-lock", "fewer-workers", "more-processes"]
PhaseKind = Literal["parallel", "serial", "io", "waiting"]
Confidence = Literal["confirmed", "possible"]


@dataclass(frozen=True)
class Term:
    word: str        # a few words: a table cell, a legend, a list of flags
    phrase: str      # the same said in a sentence's words ("it was mostly ...", a headline)


# Where a thread's time went, in the order every table and chart lists them (the columns of
# thread_states are these names with "_s").
THREAD_STATES: dict[str, Term] = {
    "cpu": Term("on CPU", "running on a CPU"),
    "gil": Term("GIL wait", "waiting for the GIL"),
    "lock": Term("lock/queue/join wait", "waiting on locks, queues, joins or child processes"),
    "io": Term("I/O wait", "waiting for I/O"),
    "sleep": Term("sleeping", "sleeping"),
    "runqueue": Term("waiting for a core", "runnable, waiting for a free core"),
    "other": Term("other", "in a state the samples could not tell"),
}
STATES = tuple(THREAD_STATES)

# Verdict.bound: what the threads' time mostly went to.
BOUNDS: dict[str, Term] = {
    "cpu": Term("CPU-bound", "CPU-bound"),
    "io": Term("I/O-bound", "I/O-bound"),
    "mixed": Term("mixed", "mixed CPU and I/O"),
    "idle": Term("idle", "idle (mostly sleeping or waiting on itself)"),
}

# The verdict's yes/no findings, by the name of their Verdict field.
FLAGS: dict[str, Term] = {
    "gil_limited": Term("GIL-limited", "the GIL held its threads to one core"),
    "parallel_threads": Term("threads in parallel", "threads really ran in parallel"),
    "oversubscribed": Term("oversubscribed", "more runnable threads than cores"),
}


@dataclass(frozen=True)
class Advice:
    word: str        # a table cell: "verdict -> word"
    title: str       # the advice as a headline
    sentence: str    # why it fits, in general terms (the evidence has this run's numbers)


# Verdict.advice: the concurrency model that fits.
ADVICE: dict[str, Advice] = {
    "multiprocessing": Advice(
        "multiprocessing", "Use processes for the CPU work",
        "Run the CPU-bound Python code in processes (multiprocessing, or "
        "concurrent.futures.ProcessPoolExecutor): each process has its own interpreter and "
        "GIL, so they use a core each."),
    "threading": Advice(
        "threading", "Use threads for the waiting",
        "The work waits (on I/O, or on child processes) one wait after another; threads "
        "release the GIL while they wait, so a thread pool "
        "(concurrent.futures.ThreadPoolExecutor) overlaps the waits."),
    "asyncio": Advice(
        "asyncio", "Use asyncio for the waiting",
        "Many slow waits at once: asyncio runs thousands of them on one thread with cheap "
        "tasks, where threads would cost a stack and a GIL hand-off each."),
    "keep": Advice(
        "keep this model", "Keep the concurrency model you have",
        "No other model is predicted to run this work noticeably faster on this machine: "
        "the way it is split into processes and threads already fits it."),
    "unknown": Advice(
        "unknown", "Not enough evidence for advice",
        "The recording cannot carry a prediction (too short, or nothing measured): record "
        "a longer run of the same work."),
    "unblock-loop": Advice(
        "unblock the event loop", "Stop blocking the event loop",
        "Coroutines make blocking calls that stall the loop and every task on it: await "
        "non-blocking versions (asyncio streams, aiohttp, asyncio.create_subprocess_exec) or "
        "run the call with asyncio.to_thread."),
    "shorter-lock": Advice(
        "hold the lock shorter", "Hold the lock for less time",
        "Threads take turns on a lock held while they work or wait: more threads or "
        "processes would queue on it too. Hold it only around the shared state, not across "
        "I/O or long computations."),
    "more-processes": Advice(
        "more processes, fewer threads each", "Use more processes with fewer threads each",
        "Its processes each run several threads of Python that wait for their process's "
        "GIL: the same threads spread over more processes (a Dask worker's processes=True "
        "or nthreads=1) use a core each."),
    "fewer-workers": Advice(
        "fewer workers", "Use about one worker per usable core",
        "More threads or processes were runnable than there were cores, so they queued for "
        "one: as many workers as usable cores do the same work with less switching."),
}


def bound_term(bound: str) -> Term:
    """The words for a Verdict.bound; an unknown value (a newer file) stands for itself."""
    return BOUNDS.get(bound, Term(bound or "?", bound or "?"))


def advice_of(key: str) -> Advice:
    """The words for a Verdict.advice; an unknown value stands for itself."""
    return ADVICE.get(key, Advice(key or "?", key or "No advice", ""))


# A Dask worker's advice in the words of Dask's own settings, by the worker's kind (its
# advice key, or "idle" when little work reached it), and what that kind of worker was.
DASK_ADVICE: dict[str, str] = {
    "more-processes": "use processes=True or nthreads=1 (more worker processes, fewer threads "
                      "each)",
    "fewer-workers": "fewer threads per worker (nthreads): more ran than there were cores",
    "threading": "more threads per worker (nthreads) would overlap the waits",
    "keep": "keep nthreads as it is",
    "idle": "little work reached it",
}
WORKER_KIND_WORDS: dict[str, str] = {
    "more-processes": "GIL-limited", "fewer-workers": "oversubscribed",
    "threading": "I/O-bound", "keep": "not held back by the GIL", "idle": "idle",
}
