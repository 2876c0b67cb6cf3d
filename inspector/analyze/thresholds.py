"""The thresholds the verdicts turn on, each a rule of thumb with its reason (docs/diagnosis.md
has the long form). Named and grouped here so a reader can weigh every one in one place.
"""

from __future__ import annotations

# A thread "wants the CPU" in an interval when at least half of it went to running, waiting for
# a core or waiting for the GIL: it would have run most of the time if it could.
WANT_CPU_SHARE = 0.5
# A thread is "busy on a CPU" in an interval when it ran at least half of it.
BUSY_CPU_SHARE = 0.5
# "Near one core": a GIL-bound process measures 1.0 core plus switching overhead and sampling
# jitter; anything up to a quarter more is still one core's worth of Python.
NEAR_ONE_CORE = 1.25
# Really parallel: the threads' own CPU (schedstat, nanoseconds) above PARALLEL_CORES (below),
# with two or more threads each on a CPU half the interval or more. GIL-bound threads sum to
# one core at most, so a few such intervals prove it: PARALLEL_MIN_INTERVALS (0.3 s at the
# default interval) in a row or not, whatever share of the run they are (a machine busy with
# other programs may leave few).
PARALLEL_MIN_INTERVALS = 3
# A round is the program's start-up, not its work, when starting (the interpreter, imports)
# filled more than half of it.
STARTING_SHARE = 0.5
# The GIL wait is "large" when it is at least a quarter of what the threads wanted to run:
# removing it would then speed them up by a third or more.
GIL_WAIT_SHARE = 0.25
# py-spy --gil (gil_samples): a GIL that caps threads is held nearly all the time; if it was
# free for more than 40% of the samples, it was not what held the threads back.
GIL_BUSY_SHARE = 0.6
# A verdict about contention needs more than a blip: at least this share of the process's
# CPU-busy time (and MIN_INTERVALS intervals) must show it.
MIN_TIME_SHARE = 0.25
MIN_INTERVALS = 3
# A round is the program's start-up, not its work, when starting (the interpreter, imports)
# filled more than half of it.
STARTING_SHARE = 0.5
# A process (or run) is busy in an interval when it used at least half a core.
BUSY_PROCESS_CORES = 0.5
# Bound: CPU demand (on a CPU + waiting for the GIL) versus I/O waits; two thirds or more on
# one side names it, in between it is mixed. Run-queue waits are left out: they grow with the
# load other programs put on the machine, which says nothing about what this program needs.
BOUND_SHARE = 2 / 3
# Idle: CPU demand plus I/O waits below a tenth of the wall time of one thread - nothing
# inside or outside the program kept it busy (sleeps, timers, waits on itself).
IDLE_SHARE = 0.1
# Oversubscribed: at least one whole runnable thread more than there are cores, and each
# runnable thread waited a quarter of its time or more for a core...
OVERSUB_EXTRA_RUNNABLE = 1.0
OVERSUB_RUNQUEUE_SHARE = 0.25
# ...for at least this share of the intervals in which the program was busy.
OVERSUB_TIME_SHARE = 0.3
# I/O waits: a wait of a tenth of a second or more is slow (a network round trip to another
# service, not a local disk or loopback read), and concurrent.futures' default thread pool
# stops growing at 32 workers (min(32, cpus + 4)): more slow waits at once than that are
# "many", the case asyncio's one thread and cheap tasks are made for.
SLOW_WAIT_S = 0.1
MANY_WAITS = 32
# A thread is CPU-hungry when it ran at least this share of its life (besides wanting the CPU
# most of it): GIL-bound threads each get 1/N of a core (4 threads on a loaded machine:
# ~5-25%); a thread that only wakes from I/O to answer runs well under 1%.
HUNGRY_CPU_SHARE = 0.02
# Processes only help where there is more than one core to use: with fewer usable cores than
# this (affinity, a cgroup quota), a second process would share the one core.
MIN_USABLE_FOR_PROCESSES = 1.5
# A thread that never ran: less CPU than this over its whole life (and than IDLE_THREAD_SHARE
# of it) - an idle listener or a parked worker, blocked from start to end. Its waits say
# nothing about what bounds the program (a fetcher waking once a second uses ~0.2%).
IDLE_THREAD_CPU_S = 0.002
IDLE_THREAD_SHARE = 0.001
# ...and it ran (schedstat moved, by however little) in at most this many of its intervals:
# its start, its end. A thread woken every 50 ms to read a byte uses microseconds each time,
# but runs in nearly every interval: it waits for its input, it is not idle.
IDLE_THREAD_WAKES = 2
# Waiting for a core worth explaining: a tenth of the wall time in thread-seconds.
RUNQUEUE_NOTE_SHARE = 0.1
# Syscalls that wait on a disk, not a socket or pipe: an event loop cannot overlap them.
DISK_SYSCALLS = frozenset({"fsync", "fdatasync", "pread64", "pwrite64", "preadv", "pwritev",
                           "io_getevents", "io_uring_enter", "openat", "sync_file_range"})

# -- the cores the program could use, over time (usable.py) ---------------------------------
# A process is working in an interval, and its affinity and quota count towards the cores
# the tree could use then, when it used at least this much of a core: a pool's parent
# waiting on its workers uses well under 1% (its helper threads wake ten times a second); a
# worker sharing one pinned CPU with 19 others still gets 5%.
WORKING_PROCESS_CORES = 0.05

# -- where the wall clock went (wall.py) ---------------------------------------------------
# An interval is "computing" when the tree wanted at least half a core in it (on a CPU, or
# runnable: waiting for the GIL or a core): something was working for most of that moment.
COMPUTING_CORES = 0.5
# ... "waiting on I/O" when nothing computed and at least half a thread's worth of the
# interval was spent in an I/O wait (a socket, a pipe, a disk).
IO_THREADS = 0.5
# Cores used at once above this is two threads or processes truly running together: a
# single thread measures 1.0 plus sampling jitter (the 10 ms tick), never a third more. The
# phases count threads runnable at once (on a CPU or queued for one) the same way, so a
# parallel stretch is seen even when other programs left it one core.
PARALLEL_CORES = 1.3
# Phases: the label of each interval is smoothed over this many intervals (a majority
# vote), so a thread switching in and out of a state does not cut the run into slivers...
SMOOTH_INTERVALS = 5
# ... and a stretch shorter than this share of the run (and MIN_PHASE_S) is folded into
# its neighbour: a phase worth its own advice costs a noticeable part of the wall time.
MIN_PHASE_SHARE = 0.1
MIN_PHASE_S = 0.5
