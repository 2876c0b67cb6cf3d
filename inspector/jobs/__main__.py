"""`python -m inspector.jobs cpu|io VARIANT --size N ...`: run one reference job variant.

Prints one line (job, variant, size, answer, seconds) and exits 0, or one line on stderr and
exits 1 when the answer is wrong or the server cannot be reached.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from inspector.jobs import JOBS, VARIANTS, JobError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m inspector.jobs",
        description="Run one variant of a reference job (the ones `inspector demo` records).")
    p.add_argument("job", choices=(*JOBS, "serve"),
                   help="cpu: sums of squares; io: fetch URLs; serve: run the slow HTTP server")
    p.add_argument("variant", nargs="?", choices=VARIANTS, default="sequential")
    p.add_argument("--size", type=int, default=100,
                   help="cpu: how many numbers; io: how many URLs (100)")
    p.add_argument("--workers", type=int, default=0,
                   help="threads, processes or connections at once "
                        "(default: cpu, the number of CPUs; io, 16)")
    p.add_argument("--chunk", type=int, default=0,
                   help="cpu: terms summed per number (default 100000)")
    p.add_argument("--url", default="http://127.0.0.1:8000",
                   help="io: the server to fetch from (default http://127.0.0.1:8000)")
    p.add_argument("--delay", type=float, default=0.1,
                   help="serve: seconds before each answer (0.1)")
    p.add_argument("--port", type=int, default=8000, help="serve: port on 127.0.0.1 (8000)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.size < 1:
        print("inspector.jobs: --size must be at least 1", file=sys.stderr)
        return 2
    if args.workers < 0 or args.chunk < 0:
        print("inspector.jobs: --workers and --chunk must not be negative", file=sys.stderr)
        return 2
    try:
        if args.job == "serve":
            return _serve(args.delay, args.port)
        start = time.perf_counter()
        answer = _run(args)
        elapsed = time.perf_counter() - start
    except JobError as e:
        print(f"inspector.jobs: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # the server is not there, refused, timed out; a port in use
        name = args.job if args.job == "serve" else f"{args.job} {args.variant}"
        print(f"inspector.jobs: {name}: {e}", file=sys.stderr)
        return 1
    print(f"{args.job} {args.variant}: size {args.size}, answer {answer}, {elapsed:.3f} s")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.job == "cpu":
        from inspector.jobs import cpu_bound

        chunk = args.chunk or cpu_bound.DEFAULT_CHUNK
        values = cpu_bound.numbers(args.size, chunk)
        answer = cpu_bound.RUNNERS[args.variant](values, args.workers or os.cpu_count() or 1)
        if answer != cpu_bound.expected(args.size, chunk):
            raise JobError(f"cpu {args.variant}: wrong answer {answer}")
        return answer
    from inspector.jobs import io_bound

    targets = io_bound.urls(args.url, args.size)
    return io_bound.RUNNERS[args.variant](targets, args.workers or io_bound.DEFAULT_WORKERS)


def _serve(delay_s: float, port: int) -> int:
    from inspector.jobs.server import DelayServer

    with DelayServer(delay_s, port=port) as server:
        print(f"serving on {server.url} (answers after {delay_s} s); Ctrl-C stops",
              file=sys.stderr)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
