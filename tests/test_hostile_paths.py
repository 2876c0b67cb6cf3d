"""Hostile paths and a killed recorder's file (issue 24 items 1 and 7), run as root as a
ptrace tool's users run it: every file inspector writes is created exclusively, never
through a link, private (0600) whatever the umask, and nothing that is not ours is replaced
or emptied; a missing recording whose PATH.partial exists is named, with whether a recorder
is still writing it or one was killed.

Real files, real links, FIFOs and folders, the real recorder (`python -m inspector`), a real
Dask cluster of two worker processes.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

PY = sys.executable
WORKLOADS = Path(__file__).parent / "workloads"
TIMEOUT_S = 120  # a hang guard: nothing here takes more than a few seconds

# What root's files look like, in a folder of their own: the targets of the planted links.
PASSWD = "root:x:0:0:root:/root:/bin/bash\n"


def inspector_run(*args: str, umask: int = -1) -> subprocess.CompletedProcess[str]:
    """`python -m inspector ARGS`; umask -1: this process's."""
    return subprocess.run([PY, "-m", "inspector", *args], capture_output=True, text=True,
                          timeout=TIMEOUT_S, umask=umask)


def record(out: Path, command: Sequence[str], *extra: str,
           umask: int = -1) -> subprocess.CompletedProcess[str]:
    return inspector_run("record", "-q", "--no-stacks", "-o", str(out), *extra, "--",
                         *command, umask=umask)


def refused(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    """One line on stderr, naming what it was about, and a failure status."""
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("inspector: "), \
        proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A folder standing for /etc: what a link may point into."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "passwd").write_text(PASSWD)
    return folder


@pytest.fixture(scope="module")
def a_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("source") / "source.sqlite"
    proc = record(out, [PY, "-c", "import time; time.sleep(0.3)"])
    assert proc.returncode == 0, proc.stderr
    return out


def copy_of(recording: Path, to: Path) -> Path:
    shutil.copyfile(recording, to)
    return to


# -- reports, exports, comparisons -------------------------------------------------------------

def page_commands(source: Path, out: Path) -> dict[str, list[str]]:
    return {"report": ["report", str(source), "-o", str(out)],
            "export": ["export", str(source), "-f", "perfetto", "-o", str(out)],
            "compare": ["compare", str(source), str(source), "-o", str(out)]}


@pytest.mark.parametrize("command", ["report", "export", "compare"])
def test_a_page_onto_a_link_is_refused_and_what_it_points_to_kept(
        tmp_path: Path, elsewhere: Path, a_recording: Path, command: str) -> None:
    link = tmp_path / "out.html"
    link.symlink_to(elsewhere / "passwd")
    refused(inspector_run(*page_commands(a_recording, link)[command]), str(link))
    assert link.is_symlink() and os.readlink(link) == str(elsewhere / "passwd")
    assert (elsewhere / "passwd").read_text() == PASSWD
    assert listing(tmp_path) == ["elsewhere", "out.html"], "no temp file left either"


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_page_onto_a_fifo_or_folder_is_refused(tmp_path: Path, a_recording: Path,
                                                 kind: str) -> None:
    target = tmp_path / "out.html"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    refused(inspector_run(*page_commands(a_recording, target)["report"]), str(target))
    assert target.is_fifo() if kind == "fifo" else target.is_dir()
    assert listing(tmp_path) == ["out.html"]
