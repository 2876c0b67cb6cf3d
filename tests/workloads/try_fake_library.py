"""A library's own pool: tests/test_try.py installs this file as fakelib_pools into a
temporary site-packages. Its ThreadPoolExecutor maps a lambda, which no process could be sent:
had `inspector try` swapped it, the run would be refused."""

from concurrent.futures import ThreadPoolExecutor


def squares(n: int) -> tuple[str, int]:
    with ThreadPoolExecutor(2) as pool:
        return type(pool).__name__, sum(pool.map(lambda k: k * k, range(n)))
