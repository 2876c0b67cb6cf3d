"""The `inspector` command itself: what it imports before any command runs, and how each kind
of failure becomes one line on stderr and an exit status. (A command that cannot run, a pid
that cannot be attached to and every kind of bad recording are in test_faults.py.)"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import inspector_cli

from inspector import cli
from inspector.commands import summary
from inspector.errors import (
    AttachError,
    CompareError,
    DemoError,
    InspectorError,
    JobError,
    OutputError,
    RecordingError,
    ReportError,
    TargetNotFound,
    UsageError,
)

PY = sys.executable
HEAVY = ("pandas", "numpy", "plotly")
TIMEOUT_S = 60


def modules_imported_by(*args: str) -> set[str]:
    """The top-level packages a real `inspector ARGS` run has imported when it exits."""
    script = ("import sys\n"
              "from inspector.cli import main\n"
              "try:\n"
              f"    main({list(args)!r})\n"
              "except SystemExit:\n"
              "    pass\n"
              "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n")
    proc = subprocess.run([PY, "-c", script], capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    return set(proc.stderr.split())


@pytest.mark.parametrize("args", [
    ("--help",), ("--version",), ("record", "--help"), ("report", "--help"),
    ("summary", "--help"), ("explain", "--help"), ("compare", "--help"), ("demo", "--help"),
])
def test_help_imports_no_pandas_numpy_or_plotly(args: tuple[str, ...]) -> None:
    imported = modules_imported_by(*args)
    assert "inspector" in imported  # the probe saw the run
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_importtime_of_help_lists_no_heavy_module() -> None:
    proc = subprocess.run([PY, "-X", "importtime", "-m", "inspector", "--help"],
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0 and "usage: inspector" in proc.stdout
    modules = {line.rsplit("|", 1)[-1].strip().split(".")[0]
               for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "inspector" in modules
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_a_recording_that_does_not_exist_is_one_line_and_status_1(tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here.sqlite"
    for command in ("summary", "report"):
        proc = inspector_cli(command, str(missing))
        assert proc.returncode == 1, (command, proc.stderr)
        assert proc.stderr.splitlines() == [f"inspector: {missing}: no such file"], proc.stderr


def test_an_unknown_command_is_one_line_and_status_2() -> None:
    proc = inspector_cli("frobnicate")
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("inspector: ") and "frobnicate" in lines[0]


def test_no_command_prints_the_usage_and_status_2() -> None:
    proc = inspector_cli()
    assert proc.returncode == 2
    assert "usage: inspector" in proc.stderr and "Traceback" not in proc.stderr


def test_every_error_family_is_an_inspector_error_with_its_exit_status() -> None:
    assert UsageError("x").exit_status == 2
    assert TargetNotFound("x").exit_status == 127
    assert TargetNotFound("x", 126).exit_status == 126
    for family in (RecordingError, AttachError, OutputError, ReportError, CompareError,
                   DemoError, JobError):
        assert issubclass(family, InspectorError)
        assert family("x").exit_status == 1


def test_the_old_import_locations_name_the_same_classes() -> None:
    import inspector
    from inspector.commands.compare import CompareError as compare_error
    from inspector.commands.demo import DemoError as demo_error
    from inspector.commands.report import ReportError as report_error
    from inspector.jobs import JobError as job_error
    from inspector.record import AttachError as attach_error
    from inspector.record import OutputError as output_error
    from inspector.record import TargetNotFound as target_not_found
    from inspector.recording import RecordingError as recording_error

    assert (compare_error, demo_error, report_error, job_error, attach_error, output_error,
            target_not_found, recording_error, inspector.RecordingError) == (
        CompareError, DemoError, ReportError, JobError, AttachError, OutputError,
        TargetNotFound, RecordingError, RecordingError)


@pytest.mark.parametrize("error, status", [
    (sqlite3.OperationalError("database disk image is\nmalformed"), 1),
    (ReportError("report: cannot write x.html: no space left"), 1),
    (TargetNotFound("permission denied: ./x", 126), 126),
])
def test_an_error_escaping_a_command_is_one_line_and_its_status(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        error: Exception, status: int) -> None:
    # A command's own run() raising, as it would mid-way through reading or writing.
    def run(args: argparse.Namespace) -> int:
        raise error

    monkeypatch.setattr(summary, "run", run)
    assert cli.main(["summary", "any.sqlite"]) == status
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("inspector: "), lines
    assert " ".join(str(error).split()) in lines[0]
