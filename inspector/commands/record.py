"""`inspector record [options] -- COMMAND...` and `inspector record --pid PID`."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

from inspector.commands.options import add_command, command_of
from inspector.errors import UsageError
from inspector.recording.schema import DEFAULT_LINGER_S
from inspector.text.terminal import clean

# Set (to anything) in the environment: `record` does not calibrate unless asked (the test
# suite sets it: a calibration costs ~0.15 s of wall time per recording).
NO_CALIBRATE_ENV = "INSPECTOR_NO_CALIBRATE"

DEFAULT_DIR = Path("recordings")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "record", help="run a command (or attach to a pid) and record it",
        description="Run COMMAND with its stdio passed through, or attach to --pid, and record "
                    "its processes, threads and Python stacks until its process tree exits.",
        usage="inspector record [options] -- COMMAND [ARGS...]\n"
              "       inspector record [options] --pid PID [--duration S]")
    p.add_argument("-o", "--output", metavar="PATH",
                   help="recording file to write (default: recordings/NAME-TIME.sqlite); "
                        "written as PATH.partial and renamed when complete, a recording "
                        "already at PATH kept as PATH.old; any other file there is refused")
    p.add_argument("--pid", type=int, help="attach to a running process and its children")
    p.add_argument("-d", "--duration", type=float, metavar="S",
                   help="with --pid: stop after S seconds (with --dask: record S seconds)")
    p.add_argument("--dask", metavar="SCHEDULER",
                   help="record every worker of the Dask cluster at SCHEDULER "
                        "(tcp://HOST:8786) for --duration seconds, merged into one "
                        "recording (needs the dask extra; inspector on every worker)")
    p.add_argument("--keep-on-workers", action="store_true",
                   help="with --dask: each worker keeps its recording on its host, as "
                        "WORKER_DIR/NAME/worker-WORKER.sqlite (-o names it), instead of "
                        "sending it here to be merged: for clusters too big to bring back; "
                        "judge it there with summary/report/compare --dask SCHEDULER NAME")
    p.add_argument("--worker-dir", metavar="DIR",
                   help="with --keep-on-workers: the folder on the workers (default: their "
                        "temporary directory's inspector-dask/)")
    p.add_argument("-i", "--interval", type=float, default=0.1, metavar="S",
                   help="seconds between /proc samples of every process and thread (0.1)")
    p.add_argument("-r", "--rate", type=int, default=100, metavar="HZ",
                   help="Python stack samples per second, per thread (100)")
    p.add_argument("--no-stacks", action="store_true", help="do not sample Python stacks")
    p.add_argument("--gil-check", action="store_true",
                   help="also sample which thread holds the GIL with py-spy --gil (20 Hz): a "
                        "cross-check of the GIL waits told from /proc, at extra CPU")
    p.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                   default=not os.environ.get(NO_CALIBRATE_ENV),
                   help="do not measure the machine (what its cores give, a GIL hand-off, a "
                        "worker's start) in ~0.2 s of CPU before the command starts; the "
                        "predictions then say it was assumed (the default when "
                        f"{NO_CALIBRATE_ENV} is set)")
    p.add_argument("--calibrate", dest="calibrate", action="store_true",
                   help=f"measure the machine even when {NO_CALIBRATE_ENV} is set")
    p.add_argument("--calibrate-end", action="store_true",
                   help="measure the machine again after the command's tree has gone, so a "
                        "change of capacity during the recording shows (the demo does)")
    p.add_argument("-q", "--quiet", action="store_true", help="no live status line")
    p.add_argument("--redact", metavar="REGEX",
                   help="also mask matches of REGEX in every text written (command lines, "
                        "names, paths, stacks); values of arguments that look like secrets "
                        "(--password=X, --token X, API_KEY=X, mysql -pX, curl -u user:X, "
                        "Authorization: X, user:pass@; docs/security.md) are always masked")
    p.add_argument("--linger", type=float, default=DEFAULT_LINGER_S, metavar="S",
                   help="after the command exits, follow its descendants still running for "
                        f"up to S seconds ({DEFAULT_LINGER_S:g}; inf: until they exit), then "
                        "finish and name them (they are left running)")
    p.add_argument("--report", action="store_true",
                   help="write the HTML report beside the recording when done")
    add_command(p)
    p.set_defaults(func=run)


def default_output(command: list[str], directory: Path = DEFAULT_DIR) -> Path:
    name = _name_for(command)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = directory / f"{name}-{stamp}.sqlite"
    n = 2
    while path.exists():
        path = directory / f"{name}-{stamp}-{n}.sqlite"
        n += 1
    return path


def _name_for(command: list[str]) -> str:
    """The script's stem, the -m module, or the program's name; safe as a file name."""
    name = os.path.basename(command[0]) if command else "recording"
    for i, arg in enumerate(command):
        if arg == "-m" and i + 1 < len(command):
            name = command[i + 1]
            break
        if arg.endswith(".py"):
            name = Path(arg).stem
            break
    name = _UNSAFE.sub("_", name).strip("._-")[:60]
    return name or "recording"


def run(args: argparse.Namespace) -> int:
    from inspector.record import RecordOptions, attach, record_command

    command = command_of(args)
    _check_settings(args)
    if args.dask is not None:
        return _record_dask(args, command)
    if args.keep_on_workers or args.worker_dir is not None:
        raise UsageError("record: --keep-on-workers and --worker-dir go with --dask")
    if args.pid is None and not command:
        raise UsageError("record: give a COMMAND after --, or --pid PID")
    if args.pid is not None and command:
        raise UsageError("record: give either a COMMAND or --pid, not both")
    if args.duration is not None and args.duration <= 0:
        raise UsageError("record: --duration must be positive")
    if args.output:
        output = Path(args.output)
    else:
        output = default_output(command or [f"pid{args.pid}"])
    opts = RecordOptions(output=output, interval_s=args.interval, rate=args.rate,
                         stacks=not args.no_stacks, quiet=args.quiet,
                         duration_s=args.duration, redact=args.redact, linger_s=args.linger,
                         gil_check=args.gil_check, calibrate=args.calibrate,
                         calibrate_end=args.calibrate_end)
    if args.pid is not None:
        result = attach(args.pid, opts)
    else:
        result = record_command(command, opts)
    for warning in result.warnings:  # they name the target's processes
        print(clean(warning), file=sys.stderr)
    print(f"inspector: recording written to {result.path} "
          f"({result.duration_s:.1f} s, {result.processes} processes)", file=sys.stderr)
    if args.report:
        _write_report(result.path, quiet=args.quiet)
    return result.exit_status


def _check_settings(args: argparse.Namespace) -> None:
    """The settings every recorder takes (a Dask worker's too), checked before anything runs."""
    if not 0.01 <= args.interval <= 60:
        raise UsageError("record: --interval must be between 0.01 and 60 seconds")
    if not 1 <= args.rate <= 1000:
        raise UsageError("record: --rate must be between 1 and 1000")
    if not args.linger >= 0:  # NaN too
        raise UsageError("record: --linger must be 0 or more seconds (inf: no limit)")
    if args.redact:
        try:
            re.compile(args.redact)
        except re.error as e:
            raise UsageError(f"record: --redact is not a valid regular expression: {e}") from None


def _record_dask(args: argparse.Namespace, command: list[str]) -> int:
    if command or args.pid is not None:
        raise UsageError("record: give --dask alone, without --pid or a COMMAND")
    if args.duration is None or args.duration <= 0:
        raise UsageError("record: --dask needs a positive --duration")
    if args.worker_dir is not None and not args.keep_on_workers:
        raise UsageError("record: --worker-dir goes with --keep-on-workers")
    if args.report and args.keep_on_workers:
        raise UsageError("record: --report needs the recordings here; with --keep-on-workers "
                         "write it afterwards: inspector report --dask SCHEDULER NAME")
    try:
        from inspector.record.dask import WorkerOptions, record_scheduler
        from inspector.record.dask_kept import KeepOnWorkers, check_name
    except ImportError:
        raise UsageError("record: --dask needs Dask: pip install 'inspector[dask]'") from None
    output = Path(args.output) if args.output else default_output(["dask"])
    keep = None
    if args.keep_on_workers:  # -o names it, on every worker: a name, not a path
        keep = KeepOnWorkers(check_name(args.output or output.stem), args.worker_dir)
    # every option a worker's recorder understands is passed on (the others are this
    # command's own: --output, --report, --quiet)
    options = WorkerOptions(interval_s=args.interval, rate_hz=args.rate,
                            stacks=not args.no_stacks, redact=args.redact,
                            linger_s=args.linger, gil_check=args.gil_check,
                            calibrate=args.calibrate, calibrate_end=args.calibrate_end)
    session = record_scheduler(args.dask, args.duration, output, options, keep)
    for error in session.errors:
        print(f"inspector: {error}", file=sys.stderr)
    if keep is not None:
        hosts = len({w.host for w in session.workers})
        where = session.workers[0].path.parent
        print(f"inspector: recording {keep.name!r} of {len(session.workers)} Dask worker(s) "
              f"kept on their {hosts} host(s), each as {where}/worker-WORKER.sqlite (on the "
              f"workers, not here); judge it there: inspector summary --dask {args.dask} "
              f"{keep.name}" + (f" --worker-dir {args.worker_dir}" if args.worker_dir else ""),
              file=sys.stderr)
        return 0
    print(f"inspector: recording of {len(session.workers)} Dask worker(s) written to "
          f"{output} (each worker's own in {output.stem}-workers/)", file=sys.stderr)
    if args.report:
        _write_report(output, quiet=args.quiet)
    return 0


def _write_report(path: Path, quiet: bool) -> None:
    try:
        from inspector.report.build import build_report
    except ImportError:
        print("inspector: --report: the report module is not available", file=sys.stderr)
        return
    html = build_report(path, None)
    print(f"inspector: report written to {html}", file=sys.stderr)
