"""A program that uses a library's pool (try_fake_library.py, installed as fakelib_pools into
a site-packages by tests/test_try.py), reads what the user's own sitecustomize set, and makes
a ThreadPoolExecutor of its own: `inspector try` swaps only the last."""

import builtins
from concurrent.futures import ThreadPoolExecutor

import fakelib_pools


def cube(k: int) -> int:
    return k * k * k


if __name__ == "__main__":
    print("the user's sitecustomize:", builtins.TRY_SITECUSTOMIZE)  # type: ignore[attr-defined]
    print("the library's pool:", *fakelib_pools.squares(1000))
    with ThreadPoolExecutor(2) as pool:
        print("the program's pool:", sum(pool.map(cube, range(1000))))
