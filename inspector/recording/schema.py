"""The recording file's format: its name, version, tables and the column order the writer
and the reader share. docs/recording-format.md documents it; nothing here imports more than
the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

FORMAT_NAME = "inspector-recording"
FORMAT_VERSION = 5
EPOCH_BLOCKS_VERSION = 4  # from this version on, a block holds every key's rows of an epoch

# `inspector record`'s defaults, which are also what a reader assumes of a file without
# meta["settings"] (one made by hand, say).
DEFAULT_INTERVAL_S = 0.1  # /proc sampling period
DEFAULT_RATE_HZ = 100  # py-spy samples per second, per thread
# After the launched command exits, its descendants still running are followed this long
# (`--linger`): a pool's workers or a pipeline's last members end within a fraction of a
# second of it, a daemon (`setsid server &`) never does; those left are named, not killed.
DEFAULT_LINGER_S = 5.0

# The values of cores_limited_by (processes, process_cores): what leaves a process fewer
# usable cores than the machine's CPUs.
LIMITED_BY_AFFINITY = "affinity"
LIMITED_BY_QUOTA = "cgroup quota"

# Bump FORMAT_VERSION when a change would make an older reader misread a file.
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL              -- JSON
);
CREATE TABLE IF NOT EXISTS processes (
    proc_id        INTEGER PRIMARY KEY,   -- ours: a pid can be reused, a proc_id is not
    pid            INTEGER NOT NULL,
    ppid           INTEGER,
    parent_proc_id INTEGER,
    name           TEXT,                  -- /proc/PID/comm
    cmdline        TEXT,                  -- JSON list of strings
    exe            TEXT,
    create_time    REAL,                  -- unix time the kernel started it
    start_s        REAL,                  -- seconds since the recording started (may be < 0)
    end_s          REAL,                  -- last seen alive; NULL while alive
    exit_code      INTEGER,               -- where known; -N for signal N
    is_python      INTEGER NOT NULL DEFAULT 0,
    python_version TEXT,
    python_gil     TEXT,                  -- 'enabled', 'disabled' or NULL (unknown / not Python)
    is_target      INTEGER NOT NULL DEFAULT 0,
    affinity_cores INTEGER,               -- CPUs its affinity mask allows (sched_getaffinity)
    quota_cores    REAL,                  -- its cgroup's CPU quota in cores (cpu.max, cfs)
    usable_cores   REAL,                  -- the least of those and the machine's CPUs
    cores_limited_by TEXT,                -- 'affinity', 'cgroup quota' or NULL
    host           TEXT                   -- the machine it ran on: set by `inspector merge`
                                          -- (NULL in one host's recording: meta hostname)
);
CREATE TABLE IF NOT EXISTS threads (
    proc_id     INTEGER NOT NULL,
    pid         INTEGER NOT NULL,
    tid         INTEGER NOT NULL,        -- OS thread id, as /proc, psutil and htop show it
    name        TEXT,                    -- Python thread name where known, else os_name
    os_name     TEXT,                    -- /proc/PID/task/TID/comm
    python_name TEXT,
    native_name TEXT,                    -- what started a native thread: 'OpenBLAS worker',
                                         -- 'OpenMP (GOMP)', ... (the library of its start routine)
    start_s     REAL,
    end_s       REAL,
    PRIMARY KEY (proc_id, tid)
);
CREATE TABLE IF NOT EXISTS process_samples (
    t_s              REAL NOT NULL,
    proc_id          INTEGER NOT NULL,
    pid              INTEGER NOT NULL,
    cpu_user_s       REAL,               -- cumulative since the process started
    cpu_system_s     REAL,
    rss_bytes        INTEGER,
    uss_bytes        INTEGER,            -- sampled less often: NULL in between
    num_threads      INTEGER,
    ctx_voluntary    INTEGER,            -- cumulative, all threads
    ctx_involuntary  INTEGER,
    read_bytes       INTEGER,            -- cumulative, /proc/PID/io rchar
    write_bytes      INTEGER,            -- cumulative, /proc/PID/io wchar
    state            TEXT
);
CREATE TABLE IF NOT EXISTS thread_samples (
    t_s            REAL NOT NULL,
    proc_id        INTEGER NOT NULL,
    pid            INTEGER NOT NULL,
    tid            INTEGER NOT NULL,
    cpu_user_s     REAL,                 -- cumulative
    cpu_system_s   REAL,
    state          TEXT,                 -- R S D T Z ... from /proc/PID/task/TID/stat
    syscall        INTEGER,              -- number it is blocked in; -1 running; NULL unreadable
    syscall_name   TEXT,                 -- 'running', 'futex', 'epoll_wait', ...
    on_cpu_s       REAL,                 -- cumulative, schedstat field 1
    runqueue_s     REAL,                 -- cumulative, schedstat field 2: runnable, no core
    futex_kind     INTEGER               -- in a futex wait: 1 = in the interpreter's data (the
                                         -- GIL), 2 = elsewhere (a lock, event, queue, join);
                                         -- NULL: no futex wait, or it could not be told
);
-- Version 2: thread samples are written here; version 3: process samples, stack spans and
-- machine samples the same way (thread_samples, process_samples, stacks and machine_samples
-- stay for older files and for rows a block cannot hold). Version 4: a block holds the rows
-- of every key (thread, process) of its table in one epoch, the keys among its columns
-- (versions 2 and 3 kept a block per key, the key columns here). See recording/blocks.py,
-- schema.epoch_layout and docs/recording-format.md.
CREATE TABLE IF NOT EXISTS thread_blocks (
    t_first_s  REAL NOT NULL,            -- the least t_s of its rows
    t_last_s   REAL NOT NULL,            -- the greatest
    rows       INTEGER NOT NULL,
    texts      TEXT NOT NULL,            -- JSON: {"state": [...], "syscall_name": [...]}
    data       BLOB NOT NULL             -- zlib: the rows' columns, coded, byte planes
);
CREATE TABLE IF NOT EXISTS process_blocks (
    t_first_s  REAL NOT NULL,
    t_last_s   REAL NOT NULL,
    rows       INTEGER NOT NULL,
    texts      TEXT NOT NULL,            -- JSON: {"state": [...]}
    data       BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS stack_blocks (
    t_first_s  REAL NOT NULL,
    t_last_s   REAL NOT NULL,
    rows       INTEGER NOT NULL,
    texts      TEXT NOT NULL,            -- JSON: {"thread_name": [...]}
    data       BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS machine_blocks (
    t_first_s  REAL NOT NULL,
    t_last_s   REAL NOT NULL,
    rows       INTEGER NOT NULL,
    texts      TEXT NOT NULL,            -- JSON: {"host": [...]}
    data       BLOB NOT NULL
);
-- Added within version 2: a file without it has none (load() gives an empty frame).
CREATE TABLE IF NOT EXISTS process_cores (
    t_s            REAL NOT NULL,        -- the sample at which this was first seen
    proc_id        INTEGER NOT NULL,
    cpus           TEXT,                 -- the CPUs its affinity allows: '0-3,6'; NULL unread
    affinity_cores INTEGER,              -- how many they are
    quota_cores    REAL,                 -- its cgroup's CPU quota in cores; NULL: none
    usable_cores   REAL,                 -- the least of those and the machine's CPUs
    cores_limited_by TEXT,               -- 'affinity', 'cgroup quota' or NULL
    quota_cgroup   TEXT                  -- the cgroup setting that quota (processes naming
                                         -- the same one share it); NULL: no quota
);
CREATE TABLE IF NOT EXISTS machine_samples (
    t_s            REAL NOT NULL,
    busy_cores     REAL,                 -- the whole machine's busy CPUs since the last row
    recorder_cores REAL,                 -- of which the recorder and its py-spy runs
    host           TEXT                  -- whose machine: set by `inspector merge`
);
-- Version 5: each distinct frame once, and each stack a node of a tree: its leaf frame and
-- the node of the stack less that frame (stacks that start alike share their first nodes).
-- A span's stack_id names a node; its text is its nodes' frames from the root, ';' between.
CREATE TABLE IF NOT EXISTS stack_frames (
    frame_id INTEGER PRIMARY KEY,
    text     TEXT NOT NULL                -- 'func (file:line)'
);
CREATE TABLE IF NOT EXISTS stack_nodes (
    node_id   INTEGER PRIMARY KEY,
    parent_id INTEGER,                    -- the stack less its leaf frame: a smaller node_id;
                                          -- NULL for a root frame
    frame_id  INTEGER NOT NULL,           -- its leaf frame
    stack_id  INTEGER                     -- what spans name this stack by (1, 2, ... as
                                          -- first seen); NULL where none does
);
CREATE TABLE IF NOT EXISTS stacks (
    t_s         REAL NOT NULL,           -- first sample of this span
    duration_s  REAL NOT NULL,           -- how long the same stack was seen
    proc_id     INTEGER,
    pid         INTEGER NOT NULL,
    tid         INTEGER NOT NULL,        -- OS thread id
    thread_name TEXT,
    stack_id    INTEGER NOT NULL,
    samples     INTEGER NOT NULL,        -- estimated samples in the span (duration * rate, >= 1)
    owns_gil    INTEGER                  -- 1/0 where known, else NULL
);
CREATE TABLE IF NOT EXISTS gil_samples (
    t_s         REAL NOT NULL,           -- start of a py-spy --gil run
    duration_s  REAL NOT NULL,
    proc_id     INTEGER,
    pid         INTEGER NOT NULL,
    tid         INTEGER NOT NULL,        -- OS thread id of a thread seen holding the GIL
    thread_name TEXT,
    samples     INTEGER NOT NULL,        -- samples in which it held the GIL
    samples_total INTEGER NOT NULL       -- samples py-spy took of its process in the run
);
CREATE TABLE IF NOT EXISTS problems (
    t_s     REAL NOT NULL,
    source  TEXT NOT NULL,               -- 'proc', 'py-spy', 'psutil', 'recorder'
    pid     INTEGER,
    tid     INTEGER,
    kind    TEXT NOT NULL,               -- short key: 'permission', 'vanished', 'lag', ...
    detail  TEXT
);
"""
# Tables of older files the writer no longer makes, as they were: what load() checks their
# values against (columns.column_kinds, limits.not_null_columns).
OLDER_TABLES = """
-- Versions 1 to 4: each stack's text once (the writer kept them distinct: no UNIQUE index,
-- which would hold every text twice; older files have one). Version 5: stack_nodes.
CREATE TABLE IF NOT EXISTS stack_texts (
    stack_id INTEGER PRIMARY KEY,
    text     TEXT NOT NULL                -- 'func (file:line);...' root first, leaf last
);
"""
# No index: version 1 indexed thread_samples (a third of a file's size), versions 1 and 2
# process_samples and stacks, when the recording was closed; version 3 keeps no rows there
# to index, and load() needs none.

PROCESS_SAMPLE_COLUMNS = (
    "t_s", "proc_id", "pid", "cpu_user_s", "cpu_system_s", "rss_bytes", "uss_bytes",
    "num_threads", "ctx_voluntary", "ctx_involuntary", "read_bytes", "write_bytes", "state",
)
THREAD_SAMPLE_COLUMNS = (
    "t_s", "proc_id", "pid", "tid", "cpu_user_s", "cpu_system_s", "state", "syscall",
    "syscall_name", "on_cpu_s", "runqueue_s", "futex_kind",
)
STACK_COLUMNS = (
    "t_s", "duration_s", "proc_id", "pid", "tid", "thread_name", "stack_id", "samples",
    "owns_gil",
)
PROCESS_COLUMNS = (
    "proc_id", "pid", "ppid", "parent_proc_id", "name", "cmdline", "exe", "create_time",
    "start_s", "end_s", "exit_code", "is_python", "python_version", "python_gil", "is_target",
    "affinity_cores", "quota_cores", "usable_cores", "cores_limited_by", "host",
)
MACHINE_SAMPLE_COLUMNS = ("t_s", "busy_cores", "recorder_cores", "host")
PROCESS_CORES_COLUMNS = ("t_s", "proc_id", "cpus", "affinity_cores", "quota_cores",
                         "usable_cores", "cores_limited_by", "quota_cgroup")
BLOCK_NULL = -2**63          # a NULL number
BLOCK_MAX_ROWS = 65_536      # rows in one block, at most
BLOCK_MAX_TEXTS = 65_535     # texts in one column's dictionary (a code is 1 + its index)


@dataclass(frozen=True)
class BlockLayout:
    """How one table's rows are kept as blocks (docs/recording-format.md): the table they
    belong to (which also holds, as rows, any a block cannot hold), the blocks' table, the
    key columns every row of a block shares (the block's own columns), its numeric columns
    in order, each as a whole number of units of 1/scale, and its text columns, coded.
    Numbers are delta-coded, but for those in `plain` (no trend to take out: a span's
    length, a stack's id), stored as they are; with `gap` = (start, length), the start
    column is coded as its difference from the row before's start + length (a thread's
    spans follow one another: mostly 0)."""

    table: str
    blocks: str
    columns: tuple[str, ...]                 # the table's columns, in a row's order
    keys: tuple[str, ...]
    numbers: tuple[tuple[str, int], ...]     # (name, scale); t_s first
    texts: tuple[str, ...]
    plain: frozenset[str] = frozenset()
    gap: tuple[str, str] | None = None
    noun: str = "rows"                       # what a row is, in messages
    # Version 4's coding: every stored integer zigzag-coded, and of each column only the
    # byte planes (its values' first bytes, second bytes, ...) that hold something stored
    planes: bool = False


# Version 2's thread_blocks: the numeric columns of THREAD_SAMPLE_COLUMNS a block holds, in
# order, each as a whole number of units of 1/scale (t_s in microseconds, the cumulative
# seconds in nanoseconds, syscall and futex_kind as they are), and its text columns, coded.
BLOCK_NUMBERS = (("t_s", 10**6), ("cpu_user_s", 10**9), ("cpu_system_s", 10**9),
                 ("syscall", 1), ("on_cpu_s", 10**9), ("runqueue_s", 10**9), ("futex_kind", 1))
BLOCK_TEXTS = ("state", "syscall_name")
THREAD_BLOCKS = BlockLayout("thread_samples", "thread_blocks", THREAD_SAMPLE_COLUMNS,
                            ("proc_id", "pid", "tid"), BLOCK_NUMBERS, BLOCK_TEXTS,
                            noun="thread samples")
# Version 3's: process samples (counters and bytes as they are), stack spans (times to the
# microsecond, as py-spy writes them; a span's length, stack and samples undifferenced) and
# machine samples (cores to a ten-thousandth: /proc/stat's clock ticks tell a tenth of a core
# over an interval, and each further digit costs ~0.4 bytes a sample; one series per host,
# the host a text column).
PROCESS_BLOCKS = BlockLayout(
    "process_samples", "process_blocks", PROCESS_SAMPLE_COLUMNS, ("proc_id", "pid"),
    (("t_s", 10**6), ("cpu_user_s", 10**9), ("cpu_system_s", 10**9), ("rss_bytes", 1),
     ("uss_bytes", 1), ("num_threads", 1), ("ctx_voluntary", 1), ("ctx_involuntary", 1),
     ("read_bytes", 1), ("write_bytes", 1)), ("state",), noun="process samples")
STACK_BLOCKS = BlockLayout(
    "stacks", "stack_blocks", STACK_COLUMNS, ("proc_id", "pid", "tid"),
    (("t_s", 10**6), ("duration_s", 10**6), ("stack_id", 1), ("samples", 1),
     ("owns_gil", 1)), ("thread_name",),
    plain=frozenset({"duration_s", "stack_id", "samples", "owns_gil"}),
    gap=("t_s", "duration_s"), noun="stack spans")
MACHINE_BLOCKS = BlockLayout(
    "machine_samples", "machine_blocks", MACHINE_SAMPLE_COLUMNS, (),
    (("t_s", 10**6), ("busy_cores", 10**4), ("recorder_cores", 10**4)), ("host",),
    plain=frozenset({"busy_cores", "recorder_cores"}), noun="machine samples")
LAYOUTS = (THREAD_BLOCKS, PROCESS_BLOCKS, STACK_BLOCKS, MACHINE_BLOCKS)


@cache
def epoch_layout(layout: BlockLayout) -> BlockLayout:
    """Version 4's blocks of `layout`: no key columns in the blocks' table, the keys numbers
    of the block (after t_s, delta-coded: a block holds every key's rows, key after key),
    and version 4's coding."""
    numbers = (layout.numbers[0], *((k, 1) for k in layout.keys), *layout.numbers[1:])
    return replace(layout, keys=(), numbers=numbers, planes=True)

# The largest magnitude of a number the file's meta or REAL columns hold: in seconds, what
# int64 nanoseconds hold (292 years; 2262 as a unix time), the unit pprof and Perfetto write
# times in, and datetime reads any unix time up to it; no CPU time, rate or count of cores
# of a run comes near it. INTEGER columns and whole meta numbers hold int64s.
MAX_REAL = 2**63 / 1e9
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# Columns added within format version 1: a file written before them lacks them, and reads
# with them missing (NULL where a reader wants them). A reader requires only the others.
ADDED_COLUMNS = frozenset({"futex_kind", "affinity_cores", "quota_cores", "usable_cores",
                           "cores_limited_by", "native_name", "host"})


def required(columns: tuple[str, ...]) -> tuple[str, ...]:
    """The columns every version-1 file has."""
    return tuple(c for c in columns if c not in ADDED_COLUMNS)
