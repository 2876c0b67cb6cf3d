"""Workers that append to a module-level list the main thread then reads: threads share it,
processes would each fill their own copy. No check sees it before the run; the standard output
does (tests/test_try.py)."""

from concurrent.futures import ThreadPoolExecutor

results: list[int] = []


def collect(k: int) -> None:
    results.append(k * k)


if __name__ == "__main__":
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(collect, range(100)))
    print(f"{len(results)} results, sum {sum(results)}")
