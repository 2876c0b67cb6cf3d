"""What `inspector try` checks before a swapped pool does any work, and the swapped pools that
check each function's first task: to processes, a task must pickle, must not be handed a
thread lock or queue, must not assign module globals, and a spawn or forkserver start needs
the pool made under `if __name__ == "__main__":`; to threads, a worker must not assign module
globals it had to itself. Standard library only.
"""

from __future__ import annotations

import os
import sys
import threading
import types
from functools import cache, lru_cache

from _inspector_try_hook import caller, refuse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

# Containers looked into for locks and queues: the arguments, and this deep inside them.
SCAN_DEPTH = 2


# -- the checks -----------------------------------------------------------------------------

def _name(fn: Any) -> str:
    if type(fn).__name__ == "partial":  # functools.partial(f, ...): say f
        return f"partial({_name(getattr(fn, 'func', None))})"
    return getattr(fn, "__qualname__", None) or type(fn).__name__


@cache
def _thread_primitives() -> tuple[tuple[type, str], ...]:
    import queue
    import threading

    return ((type(threading.Lock()), "threading.Lock"),
            (type(threading.RLock()), "threading.RLock"),
            (threading.Condition, "threading.Condition"),
            (threading.Semaphore, "threading.Semaphore"), (threading.Event, "threading.Event"),
            (threading.Barrier, "threading.Barrier"), (queue.Queue, "queue.Queue"),
            (queue.SimpleQueue, "queue.SimpleQueue"))


def _shared_object(values: Any, depth: int = SCAN_DEPTH) -> str | None:
    """The kind of the first thread lock, event or queue among `values` (looking into
    containers, partials and bound methods' objects), or None."""
    for v in values:
        for kind, name in _thread_primitives():
            if isinstance(v, kind):
                return name
        if depth <= 0:
            continue
        inner: Any = ()
        if isinstance(v, (list, tuple, set, frozenset)):
            inner = v
        elif isinstance(v, dict):
            inner = v.values()
        elif hasattr(v, "func") and hasattr(v, "args"):  # functools.partial
            inner = (*v.args, *(v.keywords or {}).values())
        elif isinstance(v, types.MethodType) and hasattr(v.__self__, "__dict__"):
            inner = vars(v.__self__).values()
        found = _shared_object(inner, depth - 1)
        if found:
            return found
    return None


def _code_of(fn: Any) -> Any:
    fn = getattr(fn, "func", fn)            # functools.partial
    fn = getattr(fn, "__func__", fn)        # bound method
    return getattr(fn, "__code__", None)


@lru_cache(maxsize=256)
def _assigned_globals(code: Any) -> tuple[str, ...]:
    import dis

    names = {ins.argval for ins in dis.get_instructions(code)
             if ins.opname in ("STORE_GLOBAL", "DELETE_GLOBAL")}
    for const in code.co_consts:  # nested functions and comprehensions
        if hasattr(const, "co_code"):
            names.update(_assigned_globals(const))
    return tuple(sorted(names))


def _globals_sentence(fn: Any) -> str | None:
    code = _code_of(fn)
    names = _assigned_globals(code) if code is not None else ()
    if not names:
        return None
    return f"{_name(fn)} assigns the module global{'s' if len(names) > 1 else ''} " \
           f"{', '.join(names)}"


def check_task(site: str, to: str, fn: Any, args: tuple, kwargs: dict,
               dumps: Callable[[Any], Any] | None = None) -> None:
    """Refuses (and stops the run) if this task cannot work in the other model."""
    if to == "threads":
        said = _globals_sentence(fn)
        if said:
            refuse(site, f"{said}, which each worker process had to itself: threads would "
                         "share one")
        return
    shared = _shared_object((*args, *kwargs.values(), fn))
    if shared:
        refuse(site, f"the workers are handed a {shared}: processes would each get a copy of "
                     "it, not share it")
    said = _globals_sentence(fn)
    if said:
        refuse(site, f"{said}: in processes each worker would change its own copy, which the "
                     "program would never see")
    dumps = dumps or _forking_dumps
    for what, obj in ((f"the function {_name(fn)}", fn), ("its arguments", (args, kwargs))):
        try:
            dumps(obj)
        except Exception as e:  # pickling raises anything a __reduce__ raises
            why = " ".join(str(e).split()) or type(e).__name__
            refuse(site, f"{what} cannot be pickled, so no process can be sent it ({why})")


def _forking_dumps(obj: Any) -> Any:
    from multiprocessing.reduction import ForkingPickler

    return ForkingPickler.dumps(obj)


def _start_method() -> str:
    import multiprocessing

    return multiprocessing.get_start_method(allow_none=True) or \
        multiprocessing.get_all_start_methods()[0]  # the first is the default


def _guarded_lines(path: str) -> list[tuple[int, int]]:
    import ast

    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return []
    out = []
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare) \
                and len(node.test.comparators) == 1:
            sides = [node.test.left, node.test.comparators[0]]
            names = {getattr(s, "id", None) for s in sides}
            values = {getattr(s, "value", None) for s in sides}
            if "__name__" in names and "__main__" in values:
                out.append((node.lineno, node.end_lineno or node.lineno))
    return out


def _unguarded(method: str) -> str | None:
    """Why workers started by `method` cannot run this program, or None: spawn and forkserver
    workers import the main script again, so a pool made by its top-level code outside
    `if __name__ == "__main__":` would be made again in every worker."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path:
        return (f"the program's code is not in a file (python -c, or stdin): {method} "
                "workers cannot import its functions")
    frame: Any = sys._getframe()
    while frame is not None and not (frame.f_globals is vars(main)
                                     and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None:  # made later (a thread, a callback): the script's top level is done
        return None
    line = frame.f_lineno
    if any(a <= line <= b for a, b in _guarded_lines(path)):
        return None
    return (f"the script's top level makes the pool (line {line} of "
            f"{os.path.basename(path)}) outside `if __name__ == \"__main__\":`; {method} "
            "workers import the script again and would run that again")


def check_start(site: str, initializer: Any, initargs: tuple, method: str | None) -> None:
    """Refuses a swap to processes that cannot start: the start method needs the main guard,
    or the initializer and its arguments cannot be sent (they are inherited under fork)."""
    method = method or _start_method()
    if method != "fork":
        why = _unguarded(method)
        if why:
            refuse(site, why)
    if initializer is not None:
        shared = _shared_object(initargs)
        if shared:
            refuse(site, f"the workers' initializer is handed a {shared}: processes would each "
                         "get a copy of it, not share it")
        if method != "fork":
            check_task(site, "processes", initializer, initargs, {})


def check_threads_init(site: str, initializer: Any) -> None:
    if initializer is not None:
        said = _globals_sentence(initializer)
        if said:
            refuse(site, f"the workers' initializer {said}, which each worker process had to "
                         "itself: threads would share one")


# -- the swapped pools, checking each function's first task ---------------------------------

_mapping = threading.local()  # set while Executor.map submits the tasks it checked


class _Checked:
    _inspector_to = "processes"

    def _inspector_check(self, fn: Any, args: tuple, kwargs: dict) -> None:
        seen = self.__dict__.setdefault("_inspector_seen", set())
        if id(fn) not in seen:
            seen.add(id(fn))
            check_task(caller(sys._getframe(1))[1], self._inspector_to, fn, args, kwargs)


class _CheckedExecutor(_Checked):
    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        if not getattr(_mapping, "on", False):
            self._inspector_check(fn, args, kwargs)
        return super().submit(fn, *args, **kwargs)  # type: ignore[misc]

    def map(self, fn: Any, *iterables: Any, **kw: Any) -> Any:
        """Checks the function with the first arguments; the tasks ProcessPoolExecutor.map
        then submits (chunks, wrapped in a partial) are not checked again."""
        import itertools

        its = [iter(i) for i in iterables]
        heads = [tuple(itertools.islice(it, 1)) for it in its]
        its = [itertools.chain(head, it) for head, it in zip(heads, its)]
        if heads and all(heads):
            self._inspector_check(fn, tuple(head[0] for head in heads), {})
        _mapping.on = True
        try:
            return super().map(fn, *its, **kw)  # type: ignore[misc]
        finally:
            _mapping.on = False


class _CheckedPool(_Checked):
    def _first(self, func: Any, iterable: Any, star: bool) -> Any:
        if hasattr(iterable, "__len__") and hasattr(iterable, "__getitem__"):
            if len(iterable):
                first = iterable[0]
                self._inspector_check(func, tuple(first) if star else (first,), {})
            return iterable
        import itertools

        it = iter(iterable)
        for first in it:
            self._inspector_check(func, tuple(first) if star else (first,), {})
            return itertools.chain((first,), it)
        return ()

    def apply_async(self, func: Any, args: Any = (), kwds: Any = None, *rest: Any,
                    **kw: Any) -> Any:
        self._inspector_check(func, tuple(args), dict(kwds or {}))
        return super().apply_async(func, args, kwds or {}, *rest, **kw)  # type: ignore[misc]

    def map(self, func: Any, iterable: Any, *rest: Any, **kw: Any) -> Any:
        return super().map(func, self._first(func, iterable, False), *rest, **kw)  # type: ignore[misc]

    def map_async(self, func: Any, iterable: Any, *rest: Any, **kw: Any) -> Any:
        return super().map_async(func, self._first(func, iterable, False), *rest, **kw)  # type: ignore[misc]

    def imap(self, func: Any, iterable: Any, *rest: Any, **kw: Any) -> Any:
        return super().imap(func, self._first(func, iterable, False), *rest, **kw)  # type: ignore[misc]

    def imap_unordered(self, func: Any, iterable: Any, *rest: Any, **kw: Any) -> Any:
        return super().imap_unordered(func, self._first(func, iterable, False), *rest, **kw)  # type: ignore[misc]

    def starmap(self, func: Any, iterable: Any, *rest: Any, **kw: Any) -> Any:
        return super().starmap(func, self._first(func, iterable, True), *rest, **kw)  # type: ignore[misc]

    def starmap_async(self, func: Any, iterable: Any, *rest: Any, **kw: Any) -> Any:
        return super().starmap_async(func, self._first(func, iterable, True), *rest, **kw)  # type: ignore[misc]


@cache
def process_executor() -> type:
    from concurrent.futures import ProcessPoolExecutor

    return type("ProcessPoolExecutor", (_CheckedExecutor, ProcessPoolExecutor), {})


@cache
def thread_executor() -> type:
    from concurrent.futures import ThreadPoolExecutor

    return type("ThreadPoolExecutor", (_CheckedExecutor, ThreadPoolExecutor),
                {"_inspector_to": "threads"})


@cache
def process_pool() -> type:
    from multiprocessing.pool import Pool

    return type("Pool", (_CheckedPool, Pool), {})


@cache
def thread_pool() -> type:
    from multiprocessing.pool import ThreadPool

    return type("ThreadPool", (_CheckedPool, ThreadPool), {"_inspector_to": "threads"})
