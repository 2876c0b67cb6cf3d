"""The `inspector` command: parses arguments, calls a subcommand, and turns the known
failures into one line on stderr and a non-zero exit status (never a traceback).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Sequence

from inspector import __version__
from inspector.errors import InspectorError, UsageError
from inspector.text.terminal import clean

SUBCOMMANDS = ("record", "report", "summary", "explain", "compare", "demo", "export",
               "top", "merge", "try_")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="inspector",
                     description="What is my concurrent Python program really doing?")
    parser.add_argument("--version", action="version", version=f"inspector {__version__}")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND", parser_class=_Parser)
    import importlib
    for name in SUBCOMMANDS:
        importlib.import_module(f"inspector.commands.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return 2
        return int(args.func(args))
    except InspectorError as e:  # its text may quote a file's names: one printable line
        print(f"inspector: {clean(str(e))}", file=sys.stderr)
        return e.exit_status
    except sqlite3.Error as e:  # a recording SQLite failed on past the reader's checks
        print(f"inspector: SQLite: {clean(' '.join(str(e).split())) or type(e).__name__}",
              file=sys.stderr)
        return 1
    except MemoryError:  # the memory budget's estimate was wrong, or set too high
        print("inspector: out of memory; --stream, or a smaller --memory-budget, reads the "
              "recording a window of time at a time", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("inspector: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
