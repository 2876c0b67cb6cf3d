"""Options several commands share, defined once (not a command: commands import it)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from inspector.errors import UsageError

if TYPE_CHECKING:
    from inspector.record.dask_analysis import ClusterAnalysis


def io_concurrency(text: str) -> int:
    """--io-concurrency N: a whole number of waits from 1 to 100,000."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= n <= 100_000:
        raise argparse.ArgumentTypeError("give between 1 and 100000 waits")
    return n


def add_io_concurrency(p: argparse.ArgumentParser) -> None:
    p.add_argument("--io-concurrency", type=io_concurrency, metavar="N",
                   help="I/O waits the predictions overlap for threads and asyncio (default: "
                        "the program's own where it overlapped its waits, else "
                        "concurrent.futures' default pool size, said as assumed)")


def add_memory_budget(p: argparse.ArgumentParser) -> None:
    """`--memory-budget MB` and `--stream`: how a recording too large to hold is read
    (inspector/bounded.py)."""
    p.add_argument("--memory-budget", type=float, metavar="MB",
                   help="memory the analysis may plan to take; a recording whose rows would "
                        "take more is streamed by time windows and folded into coarser bins "
                        "(default: 60%% of the memory available, or of a limit on this "
                        "process; INSPECTOR_MEMORY_BUDGET_MB)")
    p.add_argument("--stream", action="store_true",
                   help="stream the recording by time windows whatever its size")


def add_command(p: argparse.ArgumentParser) -> None:
    """The program to run, everything after `--`."""
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")


def command_of(args: argparse.Namespace) -> list[str]:
    """The program add_command took, without its leading `--` (argparse keeps it)."""
    command = list(args.command)
    return command[1:] if command and command[0] == "--" else command


def add_dask_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dask", metavar="SCHEDULER",
                   help="judge recordings a Dask cluster kept on its workers' hosts (record "
                        "--dask --keep-on-workers) on those workers, and combine their verdicts "
                        "here: SCHEDULER is tcp://HOST:8786, RECORDING the name given to "
                        "record -o")
    p.add_argument("--worker-dir", metavar="DIR",
                   help="with --dask: the folder on the workers that holds the kept "
                        "recordings, as given to record --worker-dir (default: their "
                        "temporary directory's inspector-dask/)")


def analyse_on_workers(args: argparse.Namespace, names: list[str]
                       ) -> list[ClusterAnalysis]:
    """The named recordings kept on the workers of the cluster at --dask, each judged there
    (record/dask_analysis.py): a ClusterAnalysis each."""
    try:
        from inspector.record.dask_analysis import analyse_cluster
        from inspector.record.dask_kept import check_name
    except ImportError:
        raise UsageError("--dask needs Dask: pip install 'inspector[dask]'") from None
    return analyse_cluster(args.dask, [check_name(n) for n in names], args.worker_dir)


def check_dask_source(args: argparse.Namespace) -> None:
    if args.worker_dir is not None and args.dask is None:
        raise UsageError("--worker-dir goes with --dask")
