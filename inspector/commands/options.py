"""Options several commands share, defined once (not a command: commands import it)."""

from __future__ import annotations

import argparse


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


def add_command(p: argparse.ArgumentParser) -> None:
    """The program to run, everything after `--`."""
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")


def command_of(args: argparse.Namespace) -> list[str]:
    """The program add_command took, without its leading `--` (argparse keeps it)."""
    command = list(args.command)
    return command[1:] if command and command[0] == "--" else command
