"""`inspector try`'s sitecustomize: installs the pool swap in this Python process, then runs
the sitecustomize this one hides (the next one on sys.path, if any), so the user's still runs;
an error in theirs reaches site.py as it would have without us.
"""

import os
import sys

import _inspector_try_hook

_inspector_try_hook.install()

_HERE = os.path.dirname(os.path.abspath(__file__))


def _run_hidden_sitecustomize() -> None:
    from importlib.machinery import PathFinder

    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
    spec = PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    from importlib.util import module_from_spec

    module = module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_run_hidden_sitecustomize()
