"""Issue 24 item 5: native thread names are read from glibc's struct pthread at the offsets
learnt from the recorder's own threads, so only in a process that runs the very same C
library. A real musl program (built with Debian's musl-tools) whose threads start in a library
named like an OpenMP runtime is left as the kernel names its threads, with a problem row
saying why; the same program built against this glibc is named as before.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from machine import skip_or_fail
from test_faults import TIMEOUT_S, record_argv

import inspector

# A "pool" library: three threads named by pthread_setname_np, a second or two of CPU each
POOL_C = r"""
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static void *work(void *arg) {
    char name[16];
    snprintf(name, sizeof name, "worker-%d", (int)(long)arg);
    pthread_setname_np(pthread_self(), name);
    volatile unsigned long n = 0;
    for (long i = 0; i < 200000000L; i++) n += i;
    sleep(1);
    return NULL;
}
int start_pool(int n) {
    pthread_t t[8];
    for (long i = 0; i < n; i++) pthread_create(&t[i], NULL, work, (void *)i);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    return 0;
}
"""
MAIN_C = "int start_pool(int n);\nint main(void) { return start_pool(3); }\n"
WORKERS = {"worker-0", "worker-1", "worker-2"}


def build(folder: Path, compiler: str) -> Path:
    """`pool` linked to its own `libgomp.so.1` (named as GNU OpenMP's runtime, so the
    recorder looks at its threads), both built by `compiler`."""
    if shutil.which(compiler) is None:
        skip_or_fail(f"{compiler} is not installed: apt-get install musl-tools gcc")
    folder.mkdir()
    (folder / "pool.c").write_text(POOL_C)
    (folder / "main.c").write_text(MAIN_C)
    for argv in (["-shared", "-fPIC", "-o", "libgomp.so.1", "pool.c", "-lpthread"],
                 ["-o", "pool", "main.c", "-L.", "-l:libgomp.so.1", f"-Wl,-rpath,{folder}"]):
        done = subprocess.run([compiler, "-O1", *argv], cwd=folder, capture_output=True,
                              text=True, timeout=TIMEOUT_S)
        assert done.returncode == 0, done.stderr
    return folder / "pool"


def record(program: Path) -> inspector.Recording:
    out = program.with_suffix(".sqlite")
    proc = subprocess.run(record_argv(out, [str(program)], ("-q", "--no-stacks")),
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    return inspector.load(out)


def c_library_problems(rec: inspector.Recording) -> list[str]:
    found = rec.problems[(rec.problems.source == "native-names")
                         & (rec.problems.kind == "c-library")]
    return list(found.detail)


def test_a_musl_programs_threads_are_not_read_at_glibcs_offsets(tmp_path: Path) -> None:
    rec = record(build(tmp_path / "musl", "musl-gcc"))
    names = set(rec.threads["name"].dropna())
    assert names == WORKERS | {"pool"}, names  # as the kernel names them: nothing else read
    problems = c_library_problems(rec)
    assert len(problems) == 1, rec.problems
    assert "not read" in problems[0] and "musl" in problems[0]


def test_the_same_program_on_this_glibc_is_named_by_its_pool(tmp_path: Path) -> None:
    rec = record(build(tmp_path / "glibc", "gcc"))
    names = set(rec.threads["name"].dropna())
    assert "OpenMP (GOMP)" in names and not names & WORKERS, names
    assert c_library_problems(rec) == []


@pytest.mark.parametrize("maps, word", [
    ("7f0-7f1 r-xp 0 fe:00 11 /usr/lib/x86_64-linux-musl/libc.so\n", "musl"),
    ("7f0-7f1 r-xp 0 fe:00 12 /srv/container/lib/x86_64-linux-gnu/libc.so.6\n",
     "another C library"),
    ("400000-401000 r-xp 0 fe:00 13 /usr/local/bin/static-tool\n", "no shared C library"),
])
def test_any_c_library_but_ours_is_foreign(maps: str, word: str) -> None:
    from inspector.record.pthreads import foreign_c_library

    assert word in (foreign_c_library(maps) or "")
    assert foreign_c_library(Path("/proc/self/maps").read_text()) is None
