"""How far the HTML report scales: build time, peak memory, page size and browser load time
for synthetic recordings (default: 64 threads in 8 processes, /proc every 0.1 s, Python
stacks at 100 Hz) of 1 minute, 10 minutes and 1 hour.

    python benchmarks/report_scale.py             # 60 s, 600 s, 3600 s
    python benchmarks/report_scale.py --quick     # tiny sizes: checks the script works
    python benchmarks/report_scale.py --durations 120 --no-browser

`measure(duration_s, ...) -> dict` is what benchmarks/run.py calls. Recordings are written
through inspector.recording.RecordingWriter (the recorder's own writer) and cached under the
temp directory, keyed by their parameters.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from inspector.recording import ProcessRecord, RecordingWriter  # noqa: E402

DEFAULT_DURATIONS_S = (60.0, 600.0, 3600.0)
QUICK_DURATIONS_S = (5.0, 20.0)
# Goals from issue 4: builds "in seconds", at most ~10 MB beyond plotly.js.
GOAL_BUILD_S = 10.0
GOAL_EXTRA_MB = 10.0
# The synthetic machine: as many cores as processes, so the CPU chart's "all cores" line and
# the worker processes' parallelism both show.
SYNTHETIC_CPU_COUNT = 8
# py-spy merges consecutive identical stacks into spans; pure-Python loops change line often.
# Real recordings of busy threads average 3-10 samples per span at 100 Hz; 0.1 s is the
# middle of that at the long end, which keeps an hour at ~2.3 M stack rows.
DEFAULT_SPAN_S = 0.1
# Rows are written per chunk of this many seconds, so memory stays flat at any duration.
WRITE_CHUNK_S = 60.0
CACHE_DIR = Path(tempfile.gettempdir()) / "inspector-report-scale"

# Syscall numbers (x86-64) the analysis reads by name; numbers are only stored alongside.
_SYSCALLS = {"running": -1, "futex": 202, "epoll_wait": 232, "recvfrom": 45,
             "clock_nanosleep": 230}


def _stack_library(rng: np.random.Generator, kind: str, n: int, hostile: str | None
                   ) -> list[str]:
    """`n` distinct, plausible stacks (root first) for one kind of thread."""
    root = ["<module> (/srv/app/main.py:88)", "main (/srv/app/main.py:61)"]
    thread_root = ["Thread._bootstrap (/usr/lib/python3.11/threading.py:1002)",
                   "Thread._bootstrap_inner (/usr/lib/python3.11/threading.py:1045)",
                   "Thread.run (/usr/lib/python3.11/threading.py:982)"]
    out = []
    for i in range(n):
        depth = int(rng.integers(2, 9))
        mid = [f"step_{kind}_{(i + d) % 7} (/srv/app/{kind}/stage{d % 3}.py:{10 + 3 * d + i % 5})"
               for d in range(depth)]
        if kind == "gil":
            leaf = [f"crunch (/srv/app/gil/crunch.py:{20 + i % 9})"]
            if hostile:
                leaf = [f"{hostile} (/srv/app/gil/crunch.py:{20 + i % 9})"]
        elif kind == "worker":
            leaf = [f"transform (/srv/app/worker/numeric.py:{40 + i % 11})"]
        elif kind == "io":
            leaf = ["socket.recv_into (/usr/lib/python3.11/socket.py:706)"] if i % 2 else \
                   ["_PollLikeSelector.select (/usr/lib/python3.11/selectors.py:469)"]
        else:
            leaf = ["Event.wait (/usr/lib/python3.11/threading.py:622)"]
        out.append(";".join(root + thread_root + mid + leaf))
    return out


def write_synthetic(path: Path, duration_s: float, processes: int = 8,
                    threads_per_process: int = 8, interval_s: float = 0.1,
                    rate_hz: float = 100.0, span_s: float = DEFAULT_SPAN_S,
                    hostile: str | None = None, seed: int = 4) -> Path:
    """A recording of a made-up program: process 1 runs GIL-bound Python threads, about half
    of the children are CPU workers, the rest wait on I/O; each thread has ~12 distinct
    stacks. `hostile`, if given, is used as a thread name, a function name and in the command.
    """
    rng = np.random.default_rng(seed)
    w = RecordingWriter(path)
    command = ["python", "/srv/app/main.py", "--workers", str(processes - 1)]
    if hostile:
        command.append(hostile)
    w.set_meta({
        "mode": "launch", "command": command, "cwd": "/srv/app",
        "cpu_count": SYNTHETIC_CPU_COUNT, "interval_s": interval_s,
        "settings": {"interval_s": interval_s, "rate_hz": rate_hz, "stacks": True},
        "inspector_version": "synthetic", "recorder_python": sys.version.split()[0],
        "platform": "synthetic", "machine": "x86_64", "hostname": "synthetic",
        "start_time_unix": 1_800_000_000.0,
        "stacks": {"enabled": True, "sampler": "py-spy", "py_spy_version": "synthetic",
                   "rate_hz": rate_hz, "mode": "nonblocking", "chunk_s": 1},
        "interpreters": [{"exe": "/usr/bin/python3.11", "version": "3.11", "gil": "enabled"}],
        "target_pid": 1000,
    })
    kinds: list[str] = []
    threads: list[tuple[int, int, int, str, str]] = []   # proc_id, pid, tid, name, kind
    for p in range(processes):
        proc_id, pid = p + 1, 1000 + 100 * p
        kind = "gil" if p == 0 else ("worker" if p % 2 else "io")
        kinds.append(kind)
        cmd = command if p == 0 else ["python", "-c", "from multiprocessing.spawn import "
                                      "spawn_main; spawn_main()", f"--worker={p}"]
        w.add_process(ProcessRecord(
            proc_id=proc_id, pid=pid, ppid=None if p == 0 else 1000,
            parent_proc_id=None if p == 0 else 1, name="python", cmdline=cmd,
            exe="/usr/bin/python3.11", create_time=1_800_000_000.0, start_s=0.0,
            is_python=True, python_version="3.11", python_gil="enabled", is_target=p == 0))
        for k in range(threads_per_process):
            tid = pid + k
            name = "MainThread" if k == 0 else f"{kind}-{k}"
            if hostile and p == 0 and k == 1:
                name = hostile
            w.upsert_thread(proc_id, pid, tid, "python", 0.0)
            w.name_thread(proc_id, tid, name)
            threads.append((proc_id, pid, tid, name, kind if k else "main"))
    libraries = {kind: _stack_library(rng, kind, 12, hostile)
                 for kind in ("gil", "worker", "io", "main")}

    n_threads = len(threads)
    cum = np.zeros((n_threads, 4))   # cpu_user, cpu_system, on_cpu, runqueue
    ticks = int(round(duration_s / interval_s))
    chunk_ticks = max(1, int(WRITE_CHUNK_S / interval_s))
    tick_kinds = np.array([t[4] for t in threads])
    proc_of = np.array([t[0] for t in threads]) - 1
    gil_members = np.flatnonzero(tick_kinds == "gil")
    rss = 40e6 + 20e6 * rng.random(processes)
    next_span = np.zeros(n_threads)
    for start in range(0, ticks, chunk_ticks):
        n = min(chunk_ticks, ticks - start)
        t = (np.arange(start, start + n) + 1) * interval_s
        running = np.zeros((n, n_threads), dtype=bool)
        # GIL-bound threads: one of them holds it each interval; the rest wait on a futex.
        if len(gil_members):
            holder = gil_members[rng.integers(0, len(gil_members), n)]
            running[np.arange(n), holder] = True
        running[:, tick_kinds == "worker"] = rng.random((n, int((tick_kinds == "worker").sum())
                                                          )) < 0.9
        running[:, tick_kinds == "io"] = rng.random((n, int((tick_kinds == "io").sum()))) < 0.05
        busy = running * interval_s * (0.8 + 0.2 * rng.random((n, n_threads)))
        wait_rq = np.where(running, 0.0, interval_s * 0.02 * rng.random((n, n_threads)))
        rows = []
        proc_rows = []
        for i in range(n):
            cum[:, 0] += busy[i] * 0.9
            cum[:, 1] += busy[i] * 0.1
            cum[:, 2] += busy[i]
            cum[:, 3] += wait_rq[i]
            for j, (proc_id, pid, tid, _name, kind) in enumerate(threads):
                futex_kind = None  # as the sampler stores it: 1 the GIL's futex, 2 a lock's
                if running[i, j]:
                    state, sc = "R", "running"
                elif kind == "gil" or kind == "main":
                    state, sc = "S", "futex"
                    futex_kind = 1 if kind == "gil" else 2
                elif kind == "io":
                    state, sc = "S", "epoll_wait" if j % 2 else "recvfrom"
                else:
                    state, sc = "S", "clock_nanosleep"
                rows.append((float(t[i]), proc_id, pid, tid, round(cum[j, 0], 2),
                             round(cum[j, 1], 2), state, _SYSCALLS[sc], sc,
                             float(cum[j, 2]), float(cum[j, 3]), futex_kind))
            for p in range(processes):
                mine = proc_of == p
                rss[p] = max(20e6, rss[p] + rng.normal(0, 2e5))
                proc_rows.append((
                    float(t[i]), p + 1, 1000 + 100 * p, round(float(cum[mine, 0].sum()), 2),
                    round(float(cum[mine, 1].sum()), 2), int(rss[p]),
                    int(rss[p] * 0.7) if (start + i) % 10 == 0 else None,
                    threads_per_process, start + i, (start + i) // 4, 4096 * (start + i),
                    512 * (start + i), "R" if running[i, mine].any() else "S"))
        w.add_thread_samples(rows)
        w.add_process_samples(proc_rows)
        # Stack spans: each thread changes stack every ~span_s (exponential), within the chunk.
        chunk_end = float(t[-1])
        stack_rows = []
        for j, (proc_id, pid, tid, name, kind) in enumerate(threads):
            lib = libraries[kind]
            s = max(next_span[j], start * interval_s)
            while s < chunk_end:
                d = min(float(rng.exponential(span_s)) + 1.0 / rate_hz, chunk_end - s)
                stack_rows.append((s, d, proc_id, pid, tid, name,
                                   lib[int(rng.integers(0, len(lib)))],
                                   max(1, int(round(d * rate_hz))), None))
                s += d
            next_span[j] = s
        w.add_stacks(stack_rows)
        w.flush()
    for proc_id, _pid, tid, _name, _kind in threads:
        w.end_thread(proc_id, tid, ticks * interval_s)
    for p in range(processes):
        w.update_process(p + 1, end_s=ticks * interval_s, exit_code=0 if p == 0 else None)
    w.set_meta({"duration_s": ticks * interval_s, "exit_code": 0, "complete": True,
                "ticks": ticks, "lagged_ticks": 0})
    w.close()
    return path


def synthetic(duration_s: float, **params: Any) -> Path:
    """A cached synthetic recording with these parameters (written on first use)."""
    key = json.dumps({"duration_s": duration_s, **params, "v": 5}, sort_keys=True)  # format 5
    name = hashlib.sha1(key.encode()).hexdigest()[:12]
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = CACHE_DIR / f"synthetic-{duration_s:g}s-{name}.sqlite"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.partial")  # two test workers may race
        write_synthetic(tmp, duration_s, **params)
        os.replace(tmp, path)
    return path


# Counters that only grow (a later copy continues from the last value of the one before);
# every other number of a block is copied as it is.
_CUMULATIVE = frozenset({"cpu_user_s", "cpu_system_s", "on_cpu_s", "runqueue_s",
                         "ctx_voluntary", "ctx_involuntary", "read_bytes", "write_bytes"})


def repeat_in_time(source: Path, target: Path, copies: int) -> Path:
    """`target`: `source` (a synthetic recording in blocks only, format 4) followed by
    copies - 1 more of its blocks, each shifted by the source's length in time and each key's
    counters continued, so an hour makes a day in minutes where writing it row by row would
    take hours. Each block's numbers are decoded to their values as the reader does, moved,
    and coded again as blocks.py codes them (its texts' codes are kept as they are)."""
    import shutil
    import sqlite3

    from inspector.recording.schema import EPOCH_BLOCKS_VERSION, LAYOUTS, epoch_layout

    shutil.copyfile(source, target)
    db = sqlite3.connect(target)
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    if json.loads(meta["format_version"]) < EPOCH_BLOCKS_VERSION:
        raise ValueError(f"{source}: format {meta['format_version']}, not an epoch-block one")
    length_s = float(json.loads(meta["duration_s"]))
    for table in LAYOUTS:
        if db.execute(f"SELECT COUNT(*) FROM {table.table}").fetchone()[0]:
            raise ValueError(f"{source}: {table.table} has rows outside blocks")
        _repeat_blocks(db, epoch_layout(table), table.keys, length_s, copies)
    total_s = copies * length_s
    for name, value in (("duration_s", total_s), ("ticks", None)):
        if value is None:
            if name not in meta:
                continue
            value = json.loads(meta[name]) * copies
        db.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps(value), name))
    db.execute("UPDATE threads SET end_s = ? WHERE end_s IS NOT NULL", (total_s,))
    db.execute("UPDATE processes SET end_s = ? WHERE end_s IS NOT NULL", (total_s,))
    db.commit()
    db.close()
    return target


def _repeat_blocks(db: Any, layout: Any, keys: tuple[str, ...], length_s: float,
                   copies: int) -> None:
    """One table's blocks (version 4: every key's rows of an epoch, key after key), copied
    copies - 1 times later in time."""
    import zlib

    from inspector.recording.blocks import _MEM_LEVEL, _WINDOW_BITS, LEVEL, gap_columns
    from inspector.recording.decode import _planes

    names = [name for name, _ in layout.numbers]
    count = len(names)
    key_at = [names.index(k) for k in keys]
    delta = np.array([name not in layout.plain for name in names])
    gap = gap_columns(layout)
    moving = [j for j, name in enumerate(names) if name in _CUMULATIVE]
    null = np.int64(-2**63)
    blocks = db.execute(f"SELECT t_first_s, t_last_s, rows, texts, data FROM {layout.blocks}"
                        " ORDER BY rowid").fetchall()
    decoded = []
    last: dict[tuple[int, ...], np.ndarray] = {}  # each key's last values, in time order
    for t_first, t_last, rows, texts, data in blocks:
        raw = zlib.decompress(data, _WINDOW_BITS)
        coded = np.zeros((count, rows), dtype=np.int64)
        end = _planes(raw, count, rows, coded)
        assert end is not None
        values = _values(coded, delta, gap)
        key = np.stack([values[j] for j in key_at]) if key_at else np.zeros((0, rows))
        for i in np.r_[np.flatnonzero((key[:, 1:] != key[:, :-1]).any(axis=0)), rows - 1]:
            last[tuple(int(x) for x in key[:, i])] = values[:, i].copy()
        decoded.append((t_first, t_last, rows, texts, values, key, raw[end:]))
    step_t = round(length_s * layout.numbers[0][1])
    # each row's key's last values (its counters' step per copy)
    steps = []
    for _, _, rows, _, _, key, _ in decoded:
        if not key_at:
            steps.append(np.zeros((count, rows), dtype=np.int64))
            continue
        uniq, inv = np.unique(key.T, axis=0, return_inverse=True)
        lasts = np.stack([last[tuple(int(x) for x in u)] for u in uniq])
        step = lasts[np.asarray(inv).reshape(-1)].T
        steps.append(np.where(step == null, 0, step))
    for copy in range(1, copies):
        out = []
        for (t_first, t_last, rows, texts, values, _, codes), step in zip(decoded, steps):
            moved = values.copy()
            moved[0] += copy * step_t
            for j in moving:
                moved[j] = np.where(moved[j] == null, null, moved[j] + copy * step[j])
            numbers = _coded(moved, delta, gap)
            deflate = zlib.compressobj(LEVEL, zlib.DEFLATED, _WINDOW_BITS, _MEM_LEVEL)
            out.append((t_first + copy * length_s, t_last + copy * length_s, rows, texts,
                        deflate.compress(numbers + codes) + deflate.flush()))
        db.executemany(f"INSERT INTO {layout.blocks} (t_first_s, t_last_s, rows, texts, data)"
                       " VALUES (?, ?, ?, ?, ?)", out)
        db.commit()


def _values(coded: np.ndarray, delta: np.ndarray, gap: tuple[int, int] | None) -> np.ndarray:
    """A block's numbers (count, rows), from their stored differences (decode.py's sums)."""
    with np.errstate(over="ignore"):
        values = coded.copy()
        for j in np.flatnonzero(delta):
            if gap is not None and j == gap[0]:
                continue
            values[j] = np.cumsum(coded[j])
        if gap is not None:  # each start after the row before's start + length
            start, length = gap
            before_len = np.r_[0, values[length][:-1]]
            values[start] = np.cumsum(coded[start] + before_len)
    return values


def _coded(values: np.ndarray, delta: np.ndarray, gap: tuple[int, int] | None) -> bytes:
    """`values` (count, rows) as version 4 stores them (blocks.encode): differences from the
    value before (the first as it is; `plain` columns as they are), zigzag-coded, then a
    byte per column naming its non-zero byte planes, and those planes."""
    count, rows = values.shape
    with np.errstate(over="ignore"):
        before = np.zeros_like(values)
        before[:, 1:] = values[:, :-1]
        before[~delta] = 0
        if gap is not None:
            start, length = gap
            before[start, 1:] = values[start, :-1] + values[length, :-1]
        diff = values - before
    z = ((diff << 1) ^ (diff >> 63)).view(np.uint64)
    planes = np.ascontiguousarray(z).view(np.uint8).reshape(count, rows, 8)
    mask = bytearray(count)
    kept = []
    for j in range(8):
        for c in range(count):
            plane = planes[c, :, j]
            if plane.any():
                mask[c] |= 1 << j
                kept.append(plane.tobytes())
    return bytes(mask) + b"".join(kept)


# The build, in a fresh interpreter so its peak RSS is the report's alone.
_BUILD = r"""
import json, sys, time
t0 = time.perf_counter()
from inspector.analyze import diagnose, thread_states
from inspector.recording import load
from inspector.report import ReportInputs, render_report
from inspector.report.build import write_atomically
from pathlib import Path
t1 = time.perf_counter()
rec = load(sys.argv[1])
t2 = time.perf_counter()
states = thread_states(rec)
t3 = time.perf_counter()
diagnosis = diagnose(rec, states)
t4 = time.perf_counter()
page = render_report(ReportInputs(rec, states, diagnosis))
t5 = time.perf_counter()
write_atomically(Path(sys.argv[2]), page)
t6 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "states_s": t3 - t2,
                  "diagnose_s": t4 - t3, "render_s": t5 - t4, "write_s": t6 - t5,
                  "rows_thread_samples": len(rec.thread_samples),
                  "rows_stacks": len(rec.stacks)}))
"""


def _build_with_peak(recording: Path, output: Path) -> dict[str, Any]:
    """Runs the build in a child and reads its peak RSS from wait4 (Linux: KiB)."""
    proc = subprocess.Popen([sys.executable, "-c", _BUILD, str(recording), str(output)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(REPO))
    start = time.perf_counter()
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"report build failed: {err.decode(errors='replace')[-2000:]}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["build_wall_s"] = wall
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def _browser_load_s(html: Path) -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "tests"))
    try:
        from browser import browser, chromium_available, open_report
    finally:
        sys.path.remove(str(REPO / "tests"))
    if not chromium_available():
        return {"browser_load_s": None, "browser_note": "no chromium"}
    with browser() as b, open_report(b, html) as (_page, seen):
        return {"browser_load_s": seen.load_s, "browser_errors": len(seen.console_errors),
                "figures_drawn": seen.rendered}


def measure(duration_s: float, processes: int = 8, threads_per_process: int = 8,
            interval_s: float = 0.1, rate_hz: float = 100.0, span_s: float = DEFAULT_SPAN_S,
            browser: bool = True) -> dict[str, Any]:
    """Builds the report of a synthetic recording of `duration_s` and measures it."""
    from plotly.offline import get_plotlyjs

    t0 = time.perf_counter()
    recording = synthetic(duration_s, processes=processes,
                          threads_per_process=threads_per_process, interval_s=interval_s,
                          rate_hz=rate_hz, span_s=span_s)
    generate_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="inspector-report-scale-") as tmp:
        html = Path(tmp) / "report.html"
        build = _build_with_peak(recording, html)
        size = html.stat().st_size
        plotly_bytes = len(get_plotlyjs().encode())
        result: dict[str, Any] = {
            "threads": processes * threads_per_process, "processes": processes,
            "recording_mb": recording.stat().st_size / 1e6,
            "synthetic_cached_or_written_s": generate_s,
            "build_s": build["build_wall_s"],
            "report_only_s": build["render_s"] + build["write_s"],
            "load_s": build["load_s"], "states_s": build["states_s"],
            "diagnose_s": build["diagnose_s"], "render_s": build["render_s"],
            "peak_rss_mb": build["peak_rss_mb"],
            "html_mb": size / 1e6, "html_beyond_plotlyjs_mb": (size - plotly_bytes) / 1e6,
            "rows_thread_samples": build["rows_thread_samples"],
            "rows_stacks": build["rows_stacks"],
        }
        if browser:
            result.update(_browser_load_s(html))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (5 s and 20 s)")
    ap.add_argument("--durations", type=float, nargs="+", metavar="S",
                    help="recording lengths in seconds (default 60 600 3600)")
    ap.add_argument("--processes", type=int, default=8)
    ap.add_argument("--threads-per-process", type=int, default=8)
    ap.add_argument("--no-browser", action="store_true", help="skip the browser load time")
    ap.add_argument("--json", metavar="PATH", help="also write the raw numbers here")
    args = ap.parse_args(argv)
    durations = args.durations or (QUICK_DURATIONS_S if args.quick else DEFAULT_DURATIONS_S)
    rows = []
    for d in durations:
        r = measure(d, processes=args.processes, threads_per_process=args.threads_per_process,
                    browser=not args.no_browser)
        rows.append({"duration_s": d, **r})
        print(json.dumps(rows[-1]), file=sys.stderr)
    cols = ["duration_s", "threads", "recording_mb", "build_s", "load_s", "states_s",
            "diagnose_s", "render_s", "peak_rss_mb", "html_mb", "html_beyond_plotlyjs_mb",
            "browser_load_s"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    worst = rows[-1]
    print(f"\ngoals: build under {GOAL_BUILD_S:g} s, at most {GOAL_EXTRA_MB:g} MB beyond "
          f"plotly.js; largest: {worst['build_s']:.1f} s, "
          f"{worst['html_beyond_plotlyjs_mb']:.1f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


if __name__ == "__main__":
    sys.exit(main())
