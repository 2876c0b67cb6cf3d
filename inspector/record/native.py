"""Native threads named by what started them: an OpenBLAS or OpenMP pool's workers inherit
their process's name (`python`), so they are named by the library that holds their start
routine, the function glibc keeps in each thread's `struct pthread` (found at the top of the
thread's stack by `pthreads.PthreadTids`), looked up in /proc/PID/maps. Threads Python
started (their start routine is the interpreter's) keep the names py-spy gives them.
Only processes that load a known pool library (POOLS) and run our very C library are looked
at: the stack scan costs milliseconds, most processes have no native pool to name, and
another C library's struct pthread (musl's, another glibc's) is not laid out as ours.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

from inspector.record.pthreads import OnSkip, PthreadTids

_WORD = 8
_SEARCH_BYTES = 0x800  # struct pthread is ~2 KiB on x86-64 glibc; start_routine sits at 0x638
# A process's threads are looked for again at most this often: a program that starts a
# thread per request must not make every tick scan its stacks (~1 ms a process).
RESCAN_S = 1.0

# Library file name (its start, lower case) -> what its threads are.
POOLS = (
    ("libopenblas", "OpenBLAS worker"), ("libscipy_openblas", "OpenBLAS worker"),
    ("libgomp", "OpenMP (GOMP)"), ("libiomp", "OpenMP (Intel)"), ("libomp", "OpenMP (LLVM)"),
    ("libmkl", "MKL worker"), ("libtbb", "TBB worker"),
)
# Libraries whose threads are not named here: the interpreter's own (Python threads, named by
# py-spy) and the C library's (a start routine there says nothing of who started it).
_NOT_NATIVE = ("libpython", "python", "libc.", "libc-", "libpthread", "ld-linux")


def _code_mappings(maps: str) -> list[tuple[int, int, str]]:
    out = []
    for line in maps.splitlines():
        f = line.split(maxsplit=5)
        if len(f) == 6 and "x" in f[1] and f[5].startswith("/"):
            start, end = (int(x, 16) for x in f[0].split("-"))
            out.append((start, end, f[5]))
    return out


def _library_of(address: int, mappings: list[tuple[int, int, str]]) -> str | None:
    for start, end, path in mappings:
        if start <= address < end:
            return path
    return None


def _code_pointers(mem_fd: int, pthread_id: int, mappings: list[tuple[int, int, str]]
                   ) -> dict[int, str]:
    """Offsets in a struct pthread holding an address in code, and the file it lies in."""
    try:
        raw = os.pread(mem_fd, _SEARCH_BYTES, pthread_id)
    except OSError:
        return {}
    found = {}
    for k in range(0, len(raw) - _WORD + 1, _WORD):
        lib = _library_of(int.from_bytes(raw[k:k + _WORD], "little"), mappings)
        if lib is not None:
            found[k] = lib
    return found


@functools.lru_cache(maxsize=1)
def start_routine_offset() -> int | None:
    """Where glibc keeps a thread's start routine in its struct pthread: learnt from a
    thread of our own (the only code address there, our interpreter's thread bootstrap);
    None where that cannot be told (not glibc, /proc/self/mem unreadable)."""
    try:
        fd = os.open("/proc/self/mem", os.O_RDONLY)
        mappings = _code_mappings(Path("/proc/self/maps").read_text())
    except OSError:
        return None
    try:
        found: list[dict[int, str]] = []
        helper = threading.Thread(
            target=lambda: found.append(_code_pointers(fd, threading.get_ident(), mappings)),
            name="inspector-start-offset")
        helper.start()
        helper.join()
    finally:
        os.close(fd)
    offsets = list(found[0]) if found else []
    return offsets[0] if len(offsets) == 1 else None


def pool_name(library: str) -> str | None:
    """What a thread started in `library` is called; None for the interpreter's and the C
    library's threads."""
    base = os.path.basename(library).lower()
    for prefix, name in POOLS:
        if base.startswith(prefix):
            return name
    if base.startswith(_NOT_NATIVE):
        return None
    stem = base.split(".", 1)[0]  # _rust.cpython-311-x86_64-linux-gnu.so -> _rust
    return f"native thread ({stem})"


class NativeNamer:
    """Names the native threads of the processes a recorder samples."""

    def __init__(self, on_skip: OnSkip | None = None) -> None:
        self._tids = PthreadTids(on_skip)
        self._named: set[tuple[int, int]] = set()
        self._last_scan: dict[int, float] = {}

    def due(self, pid: int, now_s: float) -> bool:
        return now_s - self._last_scan.get(pid, -1e9) >= RESCAN_S

    def names(self, pid: int, tids: set[int], now_s: float) -> dict[int, str]:
        """tid -> name for those of `tids` found started by a native library (each
        named once)."""
        self._last_scan[pid] = now_s
        offset = start_routine_offset()
        wanted = {t for t in tids if (pid, t) not in self._named and t != pid}
        if offset is None or not wanted:
            return {}
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            return {}
        mappings = _code_mappings(maps)
        if not any(os.path.basename(path).lower().startswith(tuple(p for p, _ in POOLS))
                   for _, _, path in mappings):
            # no thread pool library loaded: nothing to name, and the stacks are not read
            # (most processes: the scan costs milliseconds and numpy's import, once)
            self._named.update((pid, t) for t in wanted)
            return {}
        if not self._tids.readable(pid, maps):  # another C library: its threads are not read
            self._named.update((pid, t) for t in wanted)
            return {}
        self._tids.scan(pid)
        pthreads = {tid: pt for tid, pt in self._tids.pthreads_of(pid).items() if tid in wanted}
        if not pthreads:
            return {}
        try:
            fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
        except OSError:
            return {}
        out = {}
        try:
            for tid, pt in pthreads.items():
                self._named.add((pid, tid))
                try:
                    raw = os.pread(fd, _WORD, pt + offset)
                except OSError:
                    continue
                lib = _library_of(int.from_bytes(raw, "little"), mappings)
                name = pool_name(lib) if lib else None
                if name is not None:
                    out[tid] = name
        finally:
            os.close(fd)
        return out
