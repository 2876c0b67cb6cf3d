"""`inspector try`'s pool swap, installed into every Python process of a swapped run by the
sitecustomize beside it. A pool the program's own code creates (not one a library creates
inside itself) comes back as the other model's pool with the same worker count, and its first
task of each function is checked; what cannot work swapped is refused (see
_inspector_try_checks). Each swap, pool left alone and refusal is appended to the report
file as one JSON line. Standard library only; nothing is imported until a pool is made.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing is not imported into the user's program for annotations
if TYPE_CHECKING:
    from typing import Any, Callable

TO_ENV = "INSPECTOR_TRY_TO"          # "processes" or "threads": the model swapped in
REPORT_ENV = "INSPECTOR_TRY_REPORT"  # the file events are appended to
# A refused run stops at once with this status; the reason is in the report file, so a
# program that exits 86 by itself is not taken for a refusal.
REFUSED_EXIT = 86

_to: str | None = None
_in_worker = False  # set in the workers of a pool swapped to processes: they swap nothing
_left: set[tuple[str, str]] = set()
_HOOK_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB = os.path.dirname(os.path.abspath(os.__file__)) + os.sep
# The pool machinery's own frames are skipped when looking for who made a pool
# (multiprocessing.Pool() is a function in multiprocessing/context.py).
_MACHINERY = (_HOOK_DIR, _STDLIB + "concurrent" + os.sep, _STDLIB + "multiprocessing" + os.sep)


def install() -> None:
    """Patches the pool modules when (and if) the program imports them."""
    global _to
    to = os.environ.get(TO_ENV)
    if to not in ("processes", "threads") or not os.environ.get(REPORT_ENV) or _to:
        return
    _to = to
    # By hand, not json: this runs at the start of every Python process of the run.
    _append(f'{{"event": "loaded", "pid": {os.getpid()}}}\n'.encode())
    sys.meta_path.insert(0, _Finder())
    for name, patch in _PATCHES.items():
        if name in sys.modules:  # imported before us (by another sitecustomize's .pth?)
            patch(sys.modules[name])


def report(event: dict[str, Any]) -> None:
    import json

    event["pid"] = os.getpid()
    _append((json.dumps(event) + "\n").encode())


def _append(line: bytes) -> None:
    # One write of one short line with O_APPEND: the lines of several processes do not mix.
    fd = os.open(os.environ[REPORT_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def refuse(site: str, reason: str) -> None:
    """Stops the run before the pool does any work: the swap cannot work here."""
    report({"event": "refused", "site": site, "reason": reason})
    os._exit(REFUSED_EXIT)


# -- who made the pool ----------------------------------------------------------------------

def _is_library(filename: str) -> bool:
    if filename.startswith("<"):  # <frozen ...> is Python's own; <string>, <stdin>: the user's
        return filename.startswith("<frozen")
    path = os.path.abspath(filename)
    parts = path.split(os.sep)
    return path.startswith(_STDLIB) or "site-packages" in parts or "dist-packages" in parts


def _short(filename: str) -> str:
    if filename.startswith("<"):
        return filename
    rel = os.path.relpath(filename)
    return filename if rel.startswith("..") else rel


def caller(frame: Any) -> tuple[bool, str]:
    """(made by the user's own code, 'file:line'): the first frame outside the pool
    machinery decides, by where its file lies (the standard library, or any site-packages or
    dist-packages: a library)."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_MACHINERY):
            return not _is_library(filename), f"{_short(filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return False, "?"


def here() -> str:
    return caller(sys._getframe(1))[1]


def left_alone(kind: str, site: str) -> None:
    if (kind, site) not in _left:
        _left.add((kind, site))
        report({"event": "left", "pool": kind, "site": site, "why": "made by a library"})


def swapped(site: str, was: str, now: str, workers: int | None) -> None:
    report({"event": "swap", "site": site, "from": was, "to": now, "workers": workers})


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# -- the swaps ------------------------------------------------------------------------------

def _swap_new(cls: type, make: Callable[[tuple, dict, str], Any]) -> None:
    """cls(...) called by the user's code returns make(args, kwargs, site) instead (an object
    of another class, so cls.__init__ is not run on it); a subclass, or a call from a library,
    gets cls as before."""
    if "__new__" in cls.__dict__:  # a __new__ of its own (not so today): leave it alone
        return

    def __new__(klass: type, *args: Any, **kwargs: Any) -> Any:
        if klass is cls and not _in_worker:
            user, site = caller(sys._getframe(1))
            if not user:
                left_alone(cls.__name__, site)
            else:
                made = make(args, kwargs, site)
                if made is not None:
                    return made
        return object.__new__(klass)

    cls.__new__ = __new__  # type: ignore[method-assign,assignment]


def _bound(names: tuple[str, ...], args: tuple, kwargs: dict) -> dict[str, Any] | None:
    """The call's arguments by name; None if they do not fit (the real class then raises)."""
    if len(args) > len(names) or any(k not in names for k in kwargs):
        return None
    out = dict(zip(names, args))
    if any(k in out for k in kwargs):
        return None
    out.update(kwargs)
    return out


def _start_worker(initializer: Any, initargs: tuple) -> None:
    """The initializer of a pool swapped to processes: marks the worker, then runs the
    program's own initializer."""
    global _in_worker
    _in_worker = True
    if initializer is not None:
        initializer(*initargs)


def _thread_executor(args: tuple, kwargs: dict, site: str) -> Any:
    from _inspector_try_checks import check_start, process_executor

    a = _bound(("max_workers", "thread_name_prefix", "initializer", "initargs"), args, kwargs)
    if a is None:
        return None
    workers = a.get("max_workers") or usable_cores()
    init, initargs = a.get("initializer"), tuple(a.get("initargs") or ())
    check_start(site, init, initargs, None)
    pool = process_executor()(max_workers=workers, initializer=_start_worker,
                              initargs=(init, initargs))
    swapped(site, "ThreadPoolExecutor", "ProcessPoolExecutor", workers)
    return pool


def _process_executor(args: tuple, kwargs: dict, site: str) -> Any:
    from _inspector_try_checks import check_threads_init, thread_executor

    a = _bound(("max_workers", "mp_context", "initializer", "initargs", "max_tasks_per_child"),
               args, kwargs)
    if a is None:
        return None
    workers = a.get("max_workers") or usable_cores()
    init, initargs = a.get("initializer"), tuple(a.get("initargs") or ())
    check_threads_init(site, init)
    pool = thread_executor()(max_workers=workers, initializer=init, initargs=initargs)
    swapped(site, "ProcessPoolExecutor", "ThreadPoolExecutor", workers)
    return pool


def _thread_pool(args: tuple, kwargs: dict, site: str) -> Any:
    from _inspector_try_checks import check_start, process_pool

    a = _bound(("processes", "initializer", "initargs"), args, kwargs)
    if a is None:
        return None
    workers = a.get("processes") or usable_cores()
    init, initargs = a.get("initializer"), tuple(a.get("initargs") or ())
    check_start(site, init, initargs, None)
    pool = process_pool()(workers, _start_worker, (init, initargs))
    swapped(site, "multiprocessing.pool.ThreadPool", "multiprocessing.pool.Pool", workers)
    return pool


def _process_pool(args: tuple, kwargs: dict, site: str) -> Any:
    from _inspector_try_checks import check_threads_init, thread_pool

    a = _bound(("processes", "initializer", "initargs", "maxtasksperchild", "context"),
               args, kwargs)
    if a is None:
        return None
    workers = a.get("processes") or usable_cores()
    init, initargs = a.get("initializer"), tuple(a.get("initargs") or ())
    check_threads_init(site, init)
    pool = thread_pool()(workers, init, initargs)
    swapped(site, "multiprocessing.pool.Pool", "multiprocessing.pool.ThreadPool", workers)
    return pool


def _patch_futures_thread(module: Any) -> None:
    if _to == "processes":
        _swap_new(module.ThreadPoolExecutor, _thread_executor)


def _patch_futures_process(module: Any) -> None:
    if _to == "threads":
        _swap_new(module.ProcessPoolExecutor, _process_executor)


def _patch_pool(module: Any) -> None:
    if _to == "processes":
        _swap_new(module.ThreadPool, _thread_pool)
    else:
        _swap_new(module.Pool, _process_pool)


def _patch_joblib(module: Any) -> None:
    from _inspector_try_joblib import patch_joblib

    patch_joblib(module)


_PATCHES: dict[str, Callable[[Any], None]] = {
    "concurrent.futures.thread": _patch_futures_thread,
    "concurrent.futures.process": _patch_futures_process,
    "multiprocessing.pool": _patch_pool,
    "joblib.parallel": _patch_joblib,
}


class _Loader:
    """The module's own loader, with the patch applied once the module has run."""

    def __init__(self, loader: Any, patch: Callable[[Any], None]) -> None:
        self._loader = loader
        self._patch = patch

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        self._patch(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename...: the real loader's
        return getattr(self._loader, name)


class _Finder:
    """Finds the pool modules through the other finders, and wraps their loaders."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        patch = _PATCHES.get(name)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader, patch)  # type: ignore[assignment]
                return spec
        return None
