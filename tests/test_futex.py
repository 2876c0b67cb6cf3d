"""GIL waits told from lock waits by the futex address, on every interpreter installed here.

tests/workloads/waits_futex.py holds 4 pure-Python threads and a thread in each common
blocking wait; it prints each thread's native id. At any instant one pure-Python thread may
hold the GIL and be running, so each thread is sampled several times.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from machine import find_interpreters, pyenv_python

from inspector.record import futex
from inspector.record.futex import (
    GIL,
    LOCK,
    UNKNOWN,
    UNMAPPED,
    AddressClassifier,
    FutexWait,
    classify,
    parse_futex_wait,
    parse_maps,
    read_thread_waits,
)

WORKLOAD = Path(__file__).parent / "workloads" / "waits_futex.py"
# pyenv's versions (under $PYENV_ROOT), Debian's /usr/bin/python3.X (libpython linked in
# statically), any python3.X on PATH: tests/test_pythons.py checks the machine has them
INTERPRETERS = find_interpreters()
SAMPLES = 20
GIL_ROLES = ("gil-0", "gil-1", "gil-2", "gil-3")
LOCK_ROLES = ("lock.acquire()", "lock.acquire(timeout=30)", "event.wait()", "event.wait(30)",
              "queue.get()", "condition.wait()", "pool worker", "main in join()")


def _sample_workload(python: str) -> tuple[dict[str, list[futex.ThreadWait]], AddressClassifier]:
    proc = subprocess.Popen([python, str(WORKLOAD), "60"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        roles = json.loads(proc.stdout.readline())
        classifier = AddressClassifier(proc.pid)
        # A waiter past the barrier first waits for the GIL (rightly judged GIL) on its way
        # into its own wait: sample once every one of them is there.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            waits = read_thread_waits(proc.pid, classifier)
            if all((w := waits.get(roles[r])) is not None and w.kind == LOCK
                   for r in LOCK_ROLES):
                break
            time.sleep(0.02)
        seen: dict[str, list[futex.ThreadWait]] = {role: [] for role in roles}
        for _ in range(SAMPLES):
            waits = read_thread_waits(proc.pid, classifier)
            for role, tid in roles.items():
                wait = waits.get(tid)
                if wait is not None:
                    seen[role].append(wait)
            time.sleep(0.03)
        return seen, classifier
    finally:
        proc.kill()
        proc.wait()


def _links_libpython(python: str) -> bool:
    """The interpreter's code is in a libpython it loads (pyenv's builds), not in the
    executable itself (Debian's): where the classifier must find the GIL."""
    return b"libpython" in Path(os.path.realpath(python)).read_bytes()


@pytest.mark.parametrize("python", INTERPRETERS)
def test_every_gil_waiter_is_gil_and_every_other_waiter_is_lock(python: str) -> None:
    seen, classifier = _sample_workload(python)
    assert set(seen) == set(GIL_ROLES) | set(LOCK_ROLES)
    for role in GIL_ROLES:
        kinds = {w.kind for w in seen[role]}
        # Each of 4 threads waits for the GIL most of the time on 2 cores: 20 samples see it.
        assert kinds == {GIL}, (role, seen[role])
    for role in LOCK_ROLES:
        # Blocked for good: in its futex at every sample, never on the interpreter's data.
        assert len(seen[role]) >= SAMPLES - 1, (role, seen[role])
        assert {w.kind for w in seen[role]} == {LOCK}, (role, seen[role])
    # The lock acquired with a timeout uses the GIL's own op: only the address tells them apart.
    assert any(w.op & 0x7F == 9 and w.has_timeout for w in seen["lock.acquire(timeout=30)"])
    assert not any(w.has_timeout for w in seen["lock.acquire()"])
    assert classifier.ranges is not None and classifier.ranges.interpreter
    assert classifier.maps_reads == 1 and classifier.unknowns == 0
    if _links_libpython(python):
        assert "libpython" in (classifier.ranges.interpreter_path or "")
    else:
        assert classifier.ranges.interpreter_path == os.path.realpath(python)


def test_the_maps_are_read_again_only_for_an_address_in_no_mapping() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)
    try:
        time.sleep(0.2)
        classifier = AddressClassifier(proc.pid, min_reread_s=0.0)
        ranges = futex.read_maps(proc.pid)
        inside_heap = ranges.starts[len(ranges.starts) // 2]
        assert classifier.kind(ranges.interpreter[0][0]) == GIL
        assert classifier.kind(inside_heap) in (GIL, LOCK)
        assert classifier.maps_reads == 1
        # Page zero is never mapped: read again, still nowhere: UNKNOWN, counted.
        assert classifier.kind(0x10) == UNKNOWN
        assert classifier.maps_reads == 2 and classifier.unknowns == 1
        # Within MIN_REREAD_S of the last read, no new read.
        rate_limited = AddressClassifier(proc.pid)
        rate_limited.kind(0x10)
        rate_limited.kind(0x10)
        assert rate_limited.maps_reads == 1 and rate_limited.unknowns == 2
        rate_limited.forget()  # an exec
        assert rate_limited.kind(ranges.interpreter[0][0]) == GIL
        assert rate_limited.maps_reads == 2
    finally:
        proc.kill()
        proc.wait()


def test_a_process_without_an_interpreter_has_only_lock_waits() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        time.sleep(0.1)
        ranges = futex.read_maps(proc.pid)
        assert ranges.interpreter == () and ranges.interpreter_path is None
        assert classify(ranges.starts[0], ranges) == LOCK
    finally:
        proc.kill()
        proc.wait()


# Lines and maps below are copied from this machine's /proc (3.9.18 and Debian's 3.11).

def test_syscall_lines_parse_into_futex_waits() -> None:
    gil = "202 0x7ff9fd1a6d28 0x89 0x0 0x7ff9f8ae9e10 0x0 0xffffffff 0x7ff9f8ae9dc0 0x7ff9fd5d4e96"
    wait = parse_futex_wait(gil, futex_nr=202)
    assert wait == FutexWait(0x7FF9FD1A6D28, 0x89, 0, True)
    assert wait.command == "wait_bitset" and wait.private and wait.waiting
    lock = parse_futex_wait("202 0x55d0c8a1c0a0 0x189 0x0 0x0 0x0 0xffffffff 0x7ffe1 0x7ff2",
                            futex_nr=202)
    assert lock is not None and not lock.has_timeout and lock.op == 0x189
    wake = parse_futex_wait("202 0x55d0c8a1c0a0 0x81 0x1 0x0 0x0 0x0 0x7ffe1 0x7ff2", 202)
    assert wake is not None and wake.command == "wake" and not wake.waiting
    assert parse_futex_wait("running", 202) is None
    assert parse_futex_wait("-1 0x7ffe1 0x7ff2", 202) is None
    assert parse_futex_wait("232 0x3 0x7ffe 0x400 0xffffffff 0x0 0x0 0x7ffe1 0x7ff2", 202) is None
    # aarch64 numbers futex 98; and on an architecture we do not know, nothing is a futex.
    assert parse_futex_wait("98 0xffff9d1a6d28 0x89 0x0 0xffff9 0x0 0x0 0x1 0x2", 98) is not None
    assert parse_futex_wait(gil, futex_nr=None) is None


MAPS_39 = """\
55d0c6e00000-55d0c6e01000 r--p 00000000 08:01 1 /root/.pyenv/versions/3.9.18/bin/python3.9
55d0c8a00000-55d0c8b00000 rw-p 00000000 00:00 0 [heap]
7ff9fd000000-7ff9fd100000 r-xp 00000000 08:01 2 /root/.pyenv/versions/3.9.18/lib/libpython3.9.so.1.0
7ff9fd154000-7ff9fd18e000 rw-p 00154000 08:01 2 /root/.pyenv/versions/3.9.18/lib/libpython3.9.so.1.0
7ff9fd18e000-7ff9fd1b0000 rw-p 00000000 00:00 0
7ff9fd1b0000-7ff9fd1c0000 r--p 00000000 08:01 3 /usr/lib/x86_64-linux-gnu/libc.so.6
7ffe00000000-7ffe00021000 rw-p 00000000 00:00 0 [stack]
"""


def test_the_bss_after_libpython_is_the_interpreters_and_the_heap_is_not() -> None:
    ranges = parse_maps(MAPS_39)
    assert ranges.interpreter_path == "/root/.pyenv/versions/3.9.18/lib/libpython3.9.so.1.0"
    assert classify(0x7FF9FD160000, ranges) == GIL      # libpython's rw-p
    assert classify(0x7FF9FD1A6D28, ranges) == GIL      # its .bss (3.9's GIL lives here)
    assert classify(0x55D0C8A1C0A0, ranges) == LOCK     # [heap]
    assert classify(0x7FFE00001000, ranges) == LOCK     # a stack
    assert classify(0x7FF9FD1B8000, ranges) == LOCK     # libc's data, not ours
    assert classify(0x7FF9FD050000, ranges) == LOCK     # libpython's code: never a futex
    assert classify(0x1000, ranges) == UNMAPPED
    assert classify(0x7FF9FD1C0000, ranges) == UNMAPPED


def test_a_static_python_is_found_by_its_executable() -> None:
    maps = """\
00400000-00420000 r--p 00000000 08:01 5 /usr/bin/python3.11
00946000-00a85000 rw-p 00545000 08:01 5 /usr/bin/python3.11
00a85000-00aca000 rw-p 00000000 00:00 0
01f8c000-0217a000 rw-p 00000000 00:00 0 [heap]
"""
    ranges = parse_maps(maps, exe="/usr/bin/python3.11")
    assert ranges.interpreter == ((0x946000, 0xA85000), (0xA85000, 0xACA000))
    assert classify(0xAB0000, ranges) == GIL and classify(0x2000000, ranges) == LOCK


SUBINTERPRETER = Path(__file__).parent / "workloads" / "waits_subinterpreter.py"


@pytest.mark.parametrize("minor", [12, 13])
@pytest.mark.parametrize("config", ["isolated", "legacy"])
def test_a_subinterpreter_sharing_the_gil_is_seen_and_one_with_its_own_is_not(
        minor: int, config: str) -> None:
    """The documented limit: a subinterpreter with a GIL of its own (the default of
    _interpreters.create) allocates that GIL on the heap, so its waiters are judged LOCK; one
    sharing the main GIL ('legacy') is judged GIL like the main interpreter's threads."""
    python = pyenv_python(minor)
    proc = subprocess.Popen([python, str(SUBINTERPRETER), config], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        roles = json.loads(proc.stdout.readline())
        classifier = AddressClassifier(proc.pid)
        kinds: dict[str, set[str]] = {role: set() for role in roles}
        for _ in range(SAMPLES):
            waits = read_thread_waits(proc.pid, classifier)
            for role, tid in roles.items():
                wait = waits.get(tid)
                if wait is not None:
                    kinds[role].add(wait.kind)
            time.sleep(0.03)
    finally:
        proc.kill()
        proc.wait()
    sub_kind = LOCK if config == "isolated" else GIL
    for role, seen in kinds.items():
        assert seen == ({GIL} if role.startswith("main-") else {sub_kind}), (role, kinds)
