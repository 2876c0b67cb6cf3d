"""Finds asyncio event loops that were blocked: stretches in which a loop's thread ran
something other than its selector for long enough that every other task on it stalled.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from inspector.analyze.frames import function_name, parse_stack, stack_facts

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def loop_blocks(stacks: pd.DataFrame, min_s: float = LOOP_BLOCK_MIN_S) -> list[LoopBlock]:
    """Blocks of at least `min_s` on every thread whose stacks show a running asyncio loop."""
    if stacks.empty:
        return []
    blocks: list[LoopBlock] = []
    loop_texts = [t for t in stacks["stack"].unique() if stack_facts(t).in_loop]
    if not loop_texts:
        return []
    with_loop = stacks.loc[stacks["stack"].isin(loop_texts), ["pid", "tid"]].drop_duplicates()
    keys = set(zip(with_loop["pid"], with_loop["tid"]))
    mine = stacks[[k in keys for k in zip(stacks["pid"], stacks["tid"])]]
    st = mine.sort_values(["pid", "tid", "t_s"], kind="stable")
    for (pid, tid), spans in st.groupby(["pid", "tid"], sort=False):
        texts = spans["stack"].tolist()
        run: list[tuple[float, float, str]] = []
        last_end = None
        for t, d, text in zip(spans["t_s"], spans["duration_s"], texts):
            facts = stack_facts(text)
            busy = facts.in_loop and not facts.in_selector
            contiguous = last_end is not None and t - last_end <= MAX_SPAN_GAP_S
            if run and (not busy or not contiguous):
                _close(run, int(pid), int(tid), min_s, blocks)
                run = []
            if busy:
                run.append((float(t), float(d), text))
            last_end = float(t) + float(d)
        if run:
            _close(run, int(pid), int(tid), min_s, blocks)
    blocks.sort(key=lambda b: (b.start_s, b.pid, b.tid))
    return blocks


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


def _task_frame(text: str) -> str | None:
    """The first program frame above the loop: the coroutine or callback it is running."""
    frames = parse_stack(text)
    seen_loop = False
    for f in frames:
        if f.is_loop:
            seen_loop = True
        elif seen_loop and f.is_user:
            return f.func
    return None
