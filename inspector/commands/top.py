"""`inspector top [--pid PID | -- COMMAND...]`: htop's habits, told truthfully. Processes as
rows with their threads folded under them, each thread's state now (on CPU, GIL, lock, I/O,
sleep, waiting for a core), its CPU, which thread holds the GIL, and the verdict so far.

Drawn with curses (the standard library): a table redrawn every second and a few keys need
no more, and rich or textual would be a new dependency (textual a large one) for it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inspector.commands.options import add_command, command_of
from inspector.errors import UsageError

if TYPE_CHECKING:
    from inspector.live.frame import Frame
    from inspector.live.session import LiveSession

DEFAULT_DELAY_S = 1.0
# The verdict reads the whole recording: recomputed at most this many times its own cost
# apart, so a long look keeps the keys and frames quick.
VERDICT_COST_FACTOR = 4.0
# py-spy runs in one-second chunks and its first samples name the threads: --once waits
# for them.
STACKS_FIRST_S = 1.6
LATE_WAIT_S = 4.0  # and at most this much longer, should they be late
MIN_ROUNDS = 3  # sampling rounds a frame needs: each thread's state is a difference of two
KEYS_HELP = "q quit  P cpu  N pid  M mem  S state  t tree  H threads  arrows scroll"
SORT_BY_KEY = {ord("P"): "cpu", ord("N"): "pid", ord("M"): "mem", ord("S"): "state"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "top", help="a live view of a program's processes and threads, and what they wait for",
        description="Watch a running program (--pid) or a command top starts: its processes "
                    "with their threads folded under them, each thread's state now (on CPU, "
                    "waiting for the GIL, a lock, I/O, sleeping, waiting for a core), its CPU, "
                    "which thread holds the GIL, and the verdict so far. Keys: " + KEYS_HELP
                    + ". A command top started is stopped (as Ctrl-C would) when top quits; "
                    "its output goes to a file, named on exit.",
        usage="inspector top [options] --pid PID\n       inspector top [options] -- COMMAND "
              "[ARGS...]")
    p.add_argument("--pid", type=int, help="a running program to watch, with its children")
    p.add_argument("-d", "--delay", type=float, default=DEFAULT_DELAY_S, metavar="S",
                   help=f"seconds between frames; a thread's state is the one it spent the "
                        f"most of them in ({DEFAULT_DELAY_S:g})")
    p.add_argument("-i", "--interval", type=float, default=0.1, metavar="S",
                   help="seconds between /proc samples (0.1)")
    p.add_argument("-o", "--output", metavar="PATH",
                   help="keep what top saw as a recording (summary, report, export read it)")
    p.add_argument("--once", action="store_true",
                   help="look for one delay, print one frame as text and exit (for scripts)")
    p.add_argument("--no-stacks", action="store_true",
                   help="do not sample Python stacks (no function names per thread)")
    add_command(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inspector.live.session import LiveSession
    from inspector.text.terminal import clean

    command = command_of(args)
    if (args.pid is None) == (not command):
        raise UsageError("top: give either --pid PID or a COMMAND after --")
    if not 0.1 <= args.delay <= 60:
        raise UsageError("top: --delay must be between 0.1 and 60 seconds")
    if not 0.01 <= args.interval <= min(args.delay, 10):
        raise UsageError("top: --interval must be between 0.01 s and the delay")
    if not args.once and not sys.stdout.isatty():
        raise UsageError("top: standard output is not a terminal; use --once for one frame")
    output = Path(args.output) if args.output else None
    if output is not None and output.exists() and not output.is_file():
        raise UsageError(f"top: {output} exists and is not a regular file")
    session = LiveSession(pid=args.pid, command=command or None, output=output,
                          interval_s=args.interval, stacks=not args.no_stacks)
    session.start()
    try:
        if args.once:
            status = _once(session, args)
        else:
            status = _live(session, args)
    finally:
        session.finish()
        log = session.close()
    if session.error is not None:
        raise session.error
    if session.result is not None:
        for warning in session.result.warnings:  # they name the target's processes
            print(clean(warning), file=sys.stderr)
    if output is not None:
        print(f"inspector: recording written to {output}", file=sys.stderr)
    log = log or session.log_path
    if session.command is not None and log.exists() and log.stat().st_size > 0:
        print(f"inspector: the command's output is in {log}", file=sys.stderr)
    return status


def _title(session: LiveSession) -> str:
    return f"inspector top  pid {session.pid}"


def _once(session: LiveSession, args: argparse.Namespace) -> int:
    # two sampling intervals at least, and py-spy's first chunk (the thread names)
    look_s = max(args.delay, 2 * args.interval) + args.interval
    session.wait_for_samples(look_s if args.no_stacks else max(look_s, STACKS_FIRST_S))
    rec = session.latest()
    # A busy machine can delay the sampling rounds and py-spy's first chunk: wait a little
    # more for a frame's worth of rounds, and for the names.
    deadline = time.monotonic() + LATE_WAIT_S
    while session.running and time.monotonic() < deadline and (
            rec is None or rec.thread_samples["t_s"].nunique() < MIN_ROUNDS
            or (not args.no_stacks and not _stacks_cover_threads(rec))):
        time.sleep(0.2)
        rec = session.latest()
    if rec is None and not session.running:
        rec = session.latest()  # it ended since the last look: its file is complete now
    if rec is None:
        if session.error is not None:
            return 1
        if session.running:
            print(f"inspector: top: nothing sampled in {look_s + LATE_WAIT_S:.0f} s while the "
                  "program ran (is the machine very busy?)", file=sys.stderr)
            return 1
        print("inspector top: nothing sampled (the program ended at once)")
        return 0
    from inspector.live.frame import build_frame

    frame = build_frame(rec, args.delay, ended=not session.running)
    from inspector.text.top import render

    lines = render(frame, _verdict(rec), title=_title(session), width=10_000)
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _stacks_cover_threads(rec: Any) -> bool:
    """py-spy has named every live thread it has sampled. It reads the names when it first
    meets a thread, and a thread met before Python registered it stays unnamed for that whole
    run (seen: a thread started 0.02 s before a 1-s run began): its name comes with the next
    run. Threads py-spy never sampled (native ones) have no Python name to wait for."""
    if rec.stacks.empty:
        return False
    th = rec.threads
    alive = th[th["end_s"].isna()]
    sampled = set(zip(rec.stacks["proc_id"], rec.stacks["tid"]))
    return all(name is not None and name == name
               for p, t, name in zip(alive["proc_id"], alive["tid"], alive["python_name"])
               if (p, t) in sampled)


def _verdict(rec: Any) -> str:
    from inspector.analyze import diagnose
    from inspector.text.top import verdict_so_far

    return verdict_so_far(diagnose(rec))


class _View:
    """What the keys change: sort, tree, threads shown, scroll."""

    def __init__(self) -> None:
        self.sort = "cpu"
        self.tree = False
        self.threads = True
        self.top = 0


def _live(session: LiveSession, args: argparse.Namespace) -> int:
    import curses

    def main(screen: Any) -> int:
        try:
            curses.curs_set(0)
        except curses.error:
            pass
        screen.timeout(50)
        view = _View()
        frame: Frame | None = None
        verdict: str | None = None
        next_frame = time.monotonic() + min(args.delay, 0.5)
        next_verdict = 0.0
        ended = False
        dirty = True
        while True:
            now = time.monotonic()
            if session.error is not None and frame is None:
                return 1  # nothing to show (no such pid, not permitted): said on exit
            if now >= next_frame and not ended:
                ended = not session.running
                rec = session.latest()
                if rec is not None:
                    from inspector.live.frame import build_frame

                    frame = build_frame(rec, args.delay, ended=ended)
                    if now >= next_verdict or ended:
                        started = time.monotonic()
                        verdict = _verdict(rec)
                        cost = time.monotonic() - started
                        next_verdict = time.monotonic() + max(args.delay,
                                                              VERDICT_COST_FACTOR * cost)
                next_frame = now + args.delay
                dirty = True
            if dirty:
                _draw(screen, session, frame, verdict, view)
                dirty = False
            key = screen.getch()
            if key == -1:
                continue
            dirty = True
            if key in (ord("q"), ord("Q"), 27):
                return 0
            if key in SORT_BY_KEY:
                view.sort = SORT_BY_KEY[key]
            elif key in (ord("t"), curses.KEY_F5):
                view.tree = not view.tree
            elif key == ord("H"):
                view.threads = not view.threads
            elif key in (curses.KEY_DOWN, ord("j")):
                view.top += 1
            elif key in (curses.KEY_UP, ord("k")):
                view.top = max(0, view.top - 1)
            elif key == curses.KEY_NPAGE:
                view.top += 10
            elif key == curses.KEY_PPAGE:
                view.top = max(0, view.top - 10)

    # ncurses takes LINES and COLUMNS from the environment over the terminal's own size:
    # exported by a script (or pytest), they would pin the view's size through resizes.
    for name in ("LINES", "COLUMNS"):
        os.environ.pop(name, None)
    try:
        return int(curses.wrapper(main))
    except KeyboardInterrupt:
        return 130


def _draw(screen: Any, session: LiveSession, frame: Frame | None, verdict: str | None,
          view: _View) -> None:
    import curses

    height, width = screen.getmaxyx()
    screen.erase()
    if frame is None:
        lines = [_title(session), "waiting for the first samples..."]
        if session.error is not None:
            lines = [_title(session), f"inspector: {session.error}", "press q"]
    else:
        from inspector.text.top import render

        lines = render(frame, verdict, view.sort, view.tree, view.threads, _title(session),
                       width - 1)
    body = lines[4:]
    view.top = min(view.top, max(0, len(body) - (height - 6)))
    shown = lines[:4] + body[view.top:]
    for y, line in enumerate(shown[:height - 1]):
        attr = curses.A_REVERSE if y == 3 else curses.A_BOLD if y < 2 else curses.A_NORMAL
        try:
            screen.addnstr(y, 0, line, width - 1, attr)
        except curses.error:
            pass
    try:
        screen.addnstr(height - 1, 0, KEYS_HELP, width - 1, curses.A_DIM)
    except curses.error:
        pass
    screen.refresh()
