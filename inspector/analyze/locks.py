"""Threads queued on a lock the program takes itself: working threads that spend much of
their time waiting in a `with lock:` / `lock.acquire()` line of their own code. Such a program
is limited by what it does while holding the lock, not by cores or the GIL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from inspector.analyze.frames import parse_frame
from inspector.analyze.states import each_distinct

# A thread is held back by a lock when it waited on one, at a line of the program's own code,
# for at least a third of its life: removing the wait would speed it up by half. A thread
# that never got the lock at all (threading.Lock is not fair: the holder may take it again at
# once) counts too. Parked pool workers, joiners and event waiters have a standard-library
# frame on top (queue, threading) and are waiting for work, not queued on a lock.
LOCK_SHARE = 1 / 3
# Contention needs two threads at least: a lone thread waiting on a lock waits on another
# kind of thread (a producer), which the I/O or CPU verdict already describes.
MIN_THREADS = 2


@dataclass(frozen=True)
class LockContention:
    threads: int                # threads queued on the program's own lock(s)
    lock_s: float               # their seconds waiting there
    share: float                # of their sampled time
    line: str | None            # the line they queued at most (file:line of `with lock:`)

    def to_dict(self) -> dict[str, Any]:
        return {"threads": self.threads, "lock_s": round(self.lock_s, 3),
                "share": round(self.share, 3), "line": self.line}


def lock_contention(states: pd.DataFrame) -> LockContention | None:
    """The threads queued on locks taken in the program's own code, or None when fewer than
    MIN_THREADS are (or no stacks say where the waits were)."""
    if states.empty or states["leaf"].isna().all():
        return None
    # each distinct leaf parsed once (row by row, an hour of 64 threads took 5 s here)
    direct = states["lock_s"].where(each_distinct(states["leaf"], _is_user_frame), 0.0)
    per = pd.DataFrame({"proc_id": states["proc_id"], "tid": states["tid"],
                        "dt": states["dt_s"], "direct": direct})
    sums = per.groupby(["proc_id", "tid"]).sum()
    queued = sums["direct"] >= LOCK_SHARE * sums["dt"]
    if int(queued.sum()) < MIN_THREADS:
        return None
    q = sums[queued]
    keys = set(q.index)
    mine = states[pd.MultiIndex.from_arrays([states["proc_id"], states["tid"]]).isin(keys)]
    lines = mine.loc[mine["lock_s"] > 0, "leaf"].astype(object).dropna()
    line = str(lines.value_counts().index[0]) if len(lines) else None
    return LockContention(threads=int(queued.sum()), lock_s=float(q["direct"].sum()),
                          share=float(q["direct"].sum() / q["dt"].sum()), line=line)


def _is_user_frame(text: Any) -> bool | None:
    if not isinstance(text, str):
        return None
    return parse_frame(text).is_user
