"""Finds asyncio event loops that were blocked: stretches in which a loop's thread ran
something other than its selector for long enough that every other task on it stalled.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from inspector.analyze.frames import function_name, own_frames, parse_stack, stack_facts

# asyncio's own debug mode warns about a callback slower than 100 ms (loop.slow_callback_duration
# defaults to 0.1 s): the same bar, so our report and asyncio's agree on what "blocked" means.
LOOP_BLOCK_MIN_S = 0.1
# py-spy runs back to back leave seams of 11-47 ms without samples (shared/MEASUREMENTS.md):
# a gap up to this long between two out-of-selector spans does not end a block.
MAX_SPAN_GAP_S = 0.05


@dataclass(frozen=True)
class LoopBlock:
    pid: int
    tid: int
    start_s: float
    duration_s: float
    function: str              # the program's function on top for most of the block
    frame: str | None          # that function's frame text (file:line) at its longest
    coroutine: str | None      # the outermost program frame run by the loop (the task's coroutine)
    # 'confirmed': the loop's thread sat in a blocking call (a syscall other than its
    # selector's) or a known blocking function for the stretch; 'possible': it computed, and
    # samples cannot tell one long callback from many short ones that yield between them.
    confidence: str = "possible"
    blocking_call: str | None = None   # e.g. 'urllib.request.urlopen', 'a sleep', where seen

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def loop_blocks(stacks: pd.DataFrame, min_s: float = LOOP_BLOCK_MIN_S) -> list[LoopBlock]:
    """Blocks of at least `min_s` on every thread whose stacks show a running asyncio loop."""
    blocks: list[LoopBlock] = []
    for pid, tid, run, _ in _busy_runs(stacks):
        _close(run, pid, tid, min_s, blocks)
    blocks.sort(key=lambda b: (b.start_s, b.pid, b.tid))
    return blocks


def open_runs(stacks: pd.DataFrame) -> dict[tuple[int, int], float]:
    """(pid, tid) -> where its loop's last stretch out of the selector began, for the loop
    threads whose last span is one: a block that may go on past these spans (a window's)."""
    return {(pid, tid): run[0][0] for pid, tid, run, last in _busy_runs(stacks) if last}


def _busy_runs(stacks: pd.DataFrame
               ) -> Iterator[tuple[int, int, list[tuple[float, float, str]], bool]]:
    """Each loop thread's stretches of contiguous spans out of its selector: (pid, tid, the
    spans as (start, duration, stack), whether it runs to the thread's last span)."""
    if stacks.empty:
        return
    loop_texts = [t for t in stacks["stack"].unique() if stack_facts(t).in_loop]
    if not loop_texts:
        return
    with_loop = stacks.loc[stacks["stack"].isin(loop_texts), ["pid", "tid"]].drop_duplicates()
    keys = set(zip(with_loop["pid"], with_loop["tid"]))
    mine = stacks[[k in keys for k in zip(stacks["pid"], stacks["tid"])]]
    st = mine.sort_values(["pid", "tid", "t_s"], kind="stable")
    for (pid, tid), spans in st.groupby(["pid", "tid"], sort=False):
        run: list[tuple[float, float, str]] = []
        last_end = None
        for t, d, text in zip(spans["t_s"], spans["duration_s"], spans["stack"].tolist()):
            facts = stack_facts(text)
            busy = facts.in_loop and not facts.in_selector
            contiguous = last_end is not None and t - last_end <= MAX_SPAN_GAP_S
            if run and (not busy or not contiguous):
                yield int(pid), int(tid), run, False
                run = []
            if busy:
                run.append((float(t), float(d), text))
            last_end = float(t) + float(d)
        if run:
            yield int(pid), int(tid), run, True


def _close(run: list[tuple[float, float, str]], pid: int, tid: int, min_s: float,
           out: list[LoopBlock]) -> None:
    start = run[0][0]
    end = run[-1][0] + run[-1][1]
    if end - start < min_s:
        return
    by_func: dict[str, float] = {}
    longest: dict[str, tuple[float, str]] = {}
    by_coro: dict[str, float] = {}
    for _, d, text in run:
        facts = stack_facts(text)
        if facts.user_leaf is None:
            key, frame = "(asyncio internals)", None
        else:
            key, frame = function_name(facts.user_leaf) or facts.user_leaf, facts.user_leaf
        by_func[key] = by_func.get(key, 0.0) + d
        if frame is not None and d > longest.get(key, (0.0, ""))[0]:
            longest[key] = (d, frame)
        coro = _task_frame(text)
        if coro is not None:
            by_coro[coro] = by_coro.get(coro, 0.0) + d
    function = max(by_func, key=lambda k: by_func[k])
    coroutine = max(by_coro, key=lambda k: by_coro[k]) if by_coro else None
    out.append(LoopBlock(pid, tid, round(start, 4), round(end - start, 4), function,
                         longest.get(function, (0.0, None))[1], coroutine))


# -- judging a block by what the OS saw the loop's thread do meanwhile ----------------------
# Known blocking calls, found by a frame's file (suffix) and function: what to name in the
# advice. C functions (time.sleep, socket.recv) have no Python frame: the syscall names them.
BLOCKING_FRAMES = (
    ("urllib/request.py", "urlopen", "urllib.request.urlopen"),
    ("/requests/api.py", "", "requests"),
    ("/requests/sessions.py", "", "requests"),
    ("/http/client.py", "", "http.client (blocking HTTP)"),
    ("/subprocess.py", "run", "subprocess.run"),
    ("/subprocess.py", "wait", "subprocess (waiting for a child)"),
    ("/subprocess.py", "communicate", "subprocess (waiting for a child)"),
    ("/socket.py", "create_connection", "socket.create_connection"),
)
# The loop's thread runnable but not running (waiting for the GIL or a core) for at least
# this share of a stretch: it was starved of CPU by other threads, not blocked by its task.
STARVED_SHARE = 0.5
# ... in a blocking syscall (I/O, sleep, a lock, a child) for at least this share: blocked.
BLOCKED_SHARE = 0.5
# ... in the selector's own syscall for at least this share: not a block at all (the samples
# of the stack missed the selector's frame: a seam between py-spy runs, a late sample).
SELECTOR_SHARE = 0.5
SELECTOR_SYSCALLS = frozenset({"epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll",
                               "select", "pselect6", "kevent"})


def judge_blocks(blocks: list[LoopBlock], stacks: pd.DataFrame, states: pd.DataFrame
                 ) -> tuple[list[LoopBlock], list[LoopBlock]]:
    """Splits candidate blocks into (blocks, starved): a stretch in which the loop's thread
    mostly waited for the GIL or a core is starvation, not a block; one in which it sat in a
    blocking call is a confirmed block; one in which it computed is a possible block."""
    kept: list[LoopBlock] = []
    starved: list[LoopBlock] = []
    for b in blocks:
        share = _thread_shares(states, b)
        call = _blocking_call(stacks, b)
        if call is None and share is not None and share["in_selector"] >= SELECTOR_SHARE:
            # The OS saw it in a poll/epoll wait and no blocking call is on its stack: its
            # selector (py-spy's frames were stale). A blocking call with a timeout polls
            # too (a socket with a timeout waits in poll): that one is named by its frames.
            continue
        # Starved: mostly waiting for the GIL or a core, and too little CPU in the stretch
        # for the callback itself to have been slow.
        if share is not None and share["starved"] >= STARVED_SHARE \
                and share["cpu_s"] < LOOP_BLOCK_MIN_S:
            starved.append(replace(b, confidence="starved"))
            continue
        blocked = share is not None and share["blocked"] >= BLOCKED_SHARE
        if blocked and call is None and share is not None:
            call = share["call"]
        confidence = "confirmed" if blocked or call is not None else "possible"
        kept.append(replace(b, confidence=confidence, blocking_call=call))
    return kept, starved


def _thread_shares(states: pd.DataFrame, b: LoopBlock) -> dict[str, Any] | None:
    """What the loop's thread did during the block, from its intervals (each weighted by
    how much of it the block overlaps): seconds on a CPU, shares starved and blocked."""
    if states.empty:
        return None
    end = b.start_s + b.duration_s
    rows = states[(states["pid"] == b.pid) & (states["tid"] == b.tid)
                  & (states["t_s"] > b.start_s) & (states["t_s"] - states["dt_s"] < end)]
    if rows.empty:
        return None
    t1 = rows["t_s"].to_numpy(dtype="float64")
    dt = rows["dt_s"].to_numpy(dtype="float64")
    overlap = (np.minimum(t1, end) - np.maximum(t1 - dt, b.start_s)).clip(min=0.0)
    weight = np.divide(overlap, dt, out=np.zeros_like(dt), where=dt > 0)
    total = float(overlap.sum())
    if total <= 0:
        return None

    def seconds(*cols: str) -> np.ndarray:
        return sum(rows[c].to_numpy(dtype="float64") for c in cols) * weight

    names = rows["syscall_name"].astype(object)
    selector = names.isin(SELECTOR_SYSCALLS).to_numpy()
    waited = seconds("io_s", "sleep_s", "lock_s")
    in_selector = np.where(selector, waited, 0.0)
    blocked = np.where(selector, 0.0, waited)
    calls = names[blocked > 0].dropna().astype(str)
    calls = calls[calls != "running"]
    call = None
    if len(calls):
        name = calls.value_counts().index[0]
        call = ("a sleep (time.sleep)" if name in ("nanosleep", "clock_nanosleep")
                else f"a blocking {name} call")
    return {"cpu_s": float(seconds("cpu_s").sum()),
            "starved": float(seconds("gil_s", "runqueue_s").sum()) / total,
            "blocked": float(blocked.sum()) / total, "call": call,
            "in_selector": float(in_selector.sum()) / total}


def _blocking_call(stacks: pd.DataFrame, b: LoopBlock) -> str | None:
    end = b.start_s + b.duration_s
    mine = stacks[(stacks["pid"] == b.pid) & (stacks["tid"] == b.tid)
                  & (stacks["t_s"] >= b.start_s) & (stacks["t_s"] < end)]
    for text in mine["stack"].unique():
        for f in parse_stack(text):
            for suffix, func, name in BLOCKING_FRAMES:
                if f.file.endswith(suffix) and (not func or f.func.rsplit(".", 1)[-1] == func):
                    return name
    return None


def _task_frame(text: str) -> str | None:
    """The first program frame above the loop: the coroutine or callback it is running
    (a forked worker's inherited loop, and the parent's coroutine above it, do not count)."""
    frames = own_frames(parse_stack(text))
    seen_loop = False
    for f in frames:
        if f.is_loop:
            seen_loop = True
        elif seen_loop and f.is_user:
            return f.func
    return None
