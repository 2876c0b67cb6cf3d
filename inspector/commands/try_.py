"""`inspector try [--to MODEL] [--repeat N] -- COMMAND`: re-run the program with the advised
concurrency model swapped in, and measure the speed-up against the prediction
(inspector/trial/; the choices are in docs/try.md)."""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from inspector.commands.options import add_command, command_of
from inspector.commands.record import DEFAULT_DIR
from inspector.errors import UsageError

MODELS = ("multiprocessing", "threading")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "try", help="re-run the program with the advised model swapped in; measure it",
        description="Record COMMAND once and diagnose it; then run it as it is and with its "
                    "pools swapped to the advised model (ThreadPoolExecutor <-> "
                    "ProcessPoolExecutor, multiprocessing.pool.ThreadPool <-> Pool, joblib's "
                    "threading <-> loky backend; only pools its own code makes), unrecorded "
                    "and interleaved, and compare the measured speed-up with the predicted "
                    "one. A swapped run counts only if it exits as the original did and "
                    "prints the same standard output. The program runs 2N+2 times, its side "
                    "effects too.",
        usage="inspector try [options] -- COMMAND [ARGS...]")
    p.add_argument("--to", choices=MODELS,
                   help="the model to swap in (default: the recorded run's advice)")
    p.add_argument("-n", "--repeat", type=int, default=None, metavar="N",
                   help="unrecorded runs of each side, interleaved (default: 3)")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="folder for the two recordings, the comparison page and try.json "
                        "(default: recordings/try-TIME)")
    p.add_argument("--mask", action="append", default=[], metavar="REGEX",
                   help="hide matches of REGEX in the standard output before comparing the "
                        "runs' (timings, ids); repeatable")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_command(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inspector.text.trial import NOTHING_JSON, TRIAL_JSON, TRIAL_TEXT, nothing_to_try_sentence
    from inspector.trial import DEFAULT_REPEAT, NothingToTry, TrialPlan, run_trial
    from inspector.trial.runner import prepare, publish

    command = command_of(args)
    if not command:
        raise UsageError("try: give a COMMAND after --")
    repeat = DEFAULT_REPEAT if args.repeat is None else args.repeat
    if repeat < 1:
        raise UsageError("try: --repeat must be at least 1")
    for mask in args.mask:
        try:
            re.compile(mask)
        except re.error as e:
            raise UsageError(f"try: --mask {mask!r} is not a valid regular expression: {e}"
                             ) from None
    directory = (Path(args.output) if args.output
                 else DEFAULT_DIR / f"try-{time.strftime('%Y%m%d-%H%M%S')}")
    prepare(directory)
    plan = TrialPlan(command=tuple(command), directory=directory, repeat=repeat, to=args.to,
                     masks=tuple(args.mask))
    result = run_trial(plan, _say)
    if isinstance(result, NothingToTry):
        if args.json:
            sys.stdout.write(NOTHING_JSON.render(result))
        print(f"inspector: {nothing_to_try_sentence(result)}", file=sys.stderr)
        return 0
    result = publish(result, directory)
    sys.stdout.write((TRIAL_JSON if args.json else TRIAL_TEXT).render(result))
    _say(f"inspector try: recordings {result.recordings[0]} and {result.recordings[1]}; "
         f"comparison page {result.page}")
    return 0


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
