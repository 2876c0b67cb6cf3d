"""A set of CPUs as the recording keeps it (`process_cores.cpus`): the kernel's compact list,
"0-3,6" (as /proc/PID/status's Cpus_allowed_list and cpuset.cpus write it). One home for
writing and reading it; standard library only (the recorder imports it).
"""

from __future__ import annotations

from collections.abc import Iterable

# Linux builds for at most 8192 CPUs (CONFIG_NR_CPUS): a list naming a CPU beyond that did not
# come from a kernel. The reader takes it as unknown rather than build a set of a billion.
MAX_CPUS = 8192


def format_cpus(cpus: Iterable[int]) -> str:
    """{0, 1, 2, 3, 6} -> '0-3,6' (runs of two as '4-5', as the kernel writes them)."""
    parts: list[str] = []
    run: list[int] = []
    for cpu in sorted(set(cpus)):
        if run and cpu == run[-1] + 1:
            run[-1] = cpu
            continue
        if run:
            parts.append(_run(run))
        run = [cpu, cpu]
    if run:
        parts.append(_run(run))
    return ",".join(parts)


def _run(run: list[int]) -> str:
    return str(run[0]) if run[0] == run[1] else f"{run[0]}-{run[1]}"


def parse_cpus(text: object) -> frozenset[int] | None:
    """'0-3,6' -> frozenset({0, 1, 2, 3, 6}); None for anything else: not text, empty, a
    malformed part, a reversed range, a CPU number of MAX_CPUS or more (a file is untrusted:
    its list is checked, never trusted to be small)."""
    if not isinstance(text, str):
        return None
    cpus: set[int] = set()
    for part in text.strip().split(","):
        lo_text, dash, hi_text = part.strip().partition("-")
        if not _number(lo_text) or (dash and not _number(hi_text)):
            return None
        lo = int(lo_text)
        hi = int(hi_text) if dash else lo
        if hi < lo or hi >= MAX_CPUS:
            return None
        cpus.update(range(lo, hi + 1))
    return frozenset(cpus) if cpus else None


def _number(text: str) -> bool:
    # ASCII digits only: str.isdigit() also takes '²', which int() refuses
    return text.isascii() and text.isdigit() and len(text) <= 5
