"""joblib's Parallel under `inspector try`: swapped by its backend (threading <-> loky) when
the program's own code makes it, unless it requires shared memory; the first task of a swapped
Parallel checked as a pool's is. Imported only when the program imports joblib.parallel.
"""

from __future__ import annotations

import sys

from _inspector_try_checks import check_task
from _inspector_try_hook import caller, here, left_alone, refuse, report, swapped, usable_cores

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable


def _joblib_kind(module: Any, backend: Any, prefer: Any, require: Any) -> str | None:
    """'threads' or 'processes' for the backend Parallel would use, None for another one
    (sequential, dask, ray...)."""
    if backend is None:
        try:
            backend = module.get_active_backend(prefer=prefer, require=require)[0]
        except (AttributeError, TypeError):  # an older joblib: its default is processes
            return "threads" if prefer == "threads" else "processes"
    name = backend if isinstance(backend, str) else type(backend).__name__
    if name in ("threading", "ThreadingBackend"):
        return "threads"
    if name in ("loky", "multiprocessing", "LokyBackend", "MultiprocessingBackend"):
        return "processes"
    return None


def _swap_parallel(module: Any, init: Any, self: Any, args: tuple, kwargs: dict, site: str,
                   to: str) -> tuple[tuple, dict]:
    import inspect

    try:
        bound = inspect.signature(init).bind(self, *args, **kwargs)
    except TypeError:  # the real __init__ says what is wrong
        return args, kwargs
    a = bound.arguments

    def given(key: str) -> Any:  # joblib marks an argument left unset by a sentinel
        v = a.get(key)
        return None if v is None or type(v).__name__ == "_Sentinel" else v

    require = given("require")
    kind = _joblib_kind(module, given("backend"), given("prefer"), require)
    if kind is None or kind == to:
        report({"event": "left", "pool": "joblib.Parallel", "site": site,
                "why": ("already " + to) if kind == to else "another backend"})
        return args, kwargs
    if to == "processes" and require == "sharedmem":
        refuse(site, "joblib.Parallel(require='sharedmem'): its workers must share the "
                     "program's memory, which processes cannot")
    a["backend"] = "loky" if to == "processes" else "threading"
    a.pop("prefer", None)
    n_jobs = given("n_jobs")
    workers = usable_cores() if n_jobs is None or n_jobs < 0 else n_jobs
    self._inspector_try = site
    swapped(site, f"joblib {'threading' if kind == 'threads' else 'loky'} backend",
            f"joblib {a['backend']} backend", workers)
    return bound.args[1:], bound.kwargs


def _check_parallel_tasks(to: str, iterable: Any) -> Any:
    """The first task's checks; tasks are (function, args, kwargs) as joblib.delayed makes."""
    import itertools

    it = iter(iterable)
    for first in it:
        if isinstance(first, tuple) and len(first) == 3 and callable(first[0]):
            check_task(here(), to, first[0], tuple(first[1]), dict(first[2]),
                       _cloudpickle_dumps() if to == "processes" else None)
        return itertools.chain((first,), it)
    return iterable


def _cloudpickle_dumps() -> Callable[[Any], Any] | None:
    """loky sends tasks with cloudpickle: lambdas and closures do pickle there."""
    try:
        from joblib.externals.cloudpickle import dumps
    except ImportError:
        return None
    return dumps  # type: ignore[no-any-return]


def patch_joblib(module: Any) -> None:
    import functools

    from _inspector_try_hook import _to

    parallel = getattr(module, "Parallel", None)
    if parallel is None or _to is None or parallel.__dict__.get("_inspector_try_patched"):
        return
    init, call = parallel.__init__, parallel.__call__
    to: str = _to

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        import _inspector_try_hook as hook

        if not hook._in_worker:
            user, site = caller(sys._getframe(1))
            if user:
                args, kwargs = _swap_parallel(module, init, self, args, kwargs, site, to)
            else:
                left_alone("joblib.Parallel", site)
        init(self, *args, **kwargs)

    @functools.wraps(call)
    def __call__(self: Any, iterable: Any) -> Any:
        if self.__dict__.get("_inspector_try"):
            iterable = _check_parallel_tasks(to, iterable)
        return call(self, iterable)

    parallel.__init__ = __init__
    parallel.__call__ = __call__
    parallel._inspector_try_patched = True
