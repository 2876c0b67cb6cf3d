"""`inspector try`'s procedure: record the program once and diagnose it (the advice, and the
speed-up predicted for the model tried); run it as it is and with its pools swapped,
unrecorded and interleaved, checking each swapped run against the original (the hook's
refusals, the exit status, the standard output); record one swapped run for the report.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from inspector.errors import TrialError, TrialRefused
from inspector.text.trial import TRIAL_JSON, TRIAL_TEXT, predicted_text, swap_sentence
from inspector.trial.launch import SWAPS, ChildRun, python_flag_refusal, run_child
from inspector.trial.outcome import Predicted, Swap, Timing, TrialResult

if TYPE_CHECKING:
    from inspector.analyze import Diagnosis

DEFAULT_REPEAT = 3
# What the hook looks for, by the model swapped in.
SOURCES = {
    "multiprocessing": "ThreadPoolExecutor, multiprocessing.pool.ThreadPool, joblib's "
                       "threading backend",
    "threading": "ProcessPoolExecutor, multiprocessing's Pool, joblib's loky or "
                 "multiprocessing backend",
}
MASKED = "<masked>"
NOTHING_CLAIMED = "nothing is claimed"


@dataclass(frozen=True)
class TrialPlan:
    command: tuple[str, ...]
    directory: Path               # the two recordings, the page and try.json
    repeat: int = DEFAULT_REPEAT  # unrecorded runs of each side
    to: str | None = None         # the model to try; None: the recorded run's advice
    masks: tuple[str, ...] = ()   # regexes: what may differ in the standard output

    @property
    def runs(self) -> int:
        return 2 * self.repeat + 2


@dataclass(frozen=True)
class NothingToTry:
    """The advice is to keep the model the program has (or one no swap tries): a valid
    answer, not a failure."""

    advice: str
    recording: Path


def run_trial(plan: TrialPlan, say: Callable[[str], None]) -> TrialResult | NothingToTry:
    refusal = python_flag_refusal(plan.command)
    if refusal:
        raise TrialRefused(f"try: {refusal}")
    times = "once" if plan.repeat == 1 else f"{plan.repeat} times"
    say(f"inspector try: the program will run up to {plan.runs} times, side effects and all: "
        f"once recorded, {times} as it is and {times} with its pools swapped (unrecorded, "
        f"interleaved), once more swapped and recorded (--repeat N sets the {plan.repeat}); "
        f"writing to {plan.directory}")
    with tempfile.TemporaryDirectory(prefix="inspector-try-") as tmp:
        return _trial(plan, Path(tmp), say)


def _trial(plan: TrialPlan, workdir: Path, say: Callable[[str], None]
           ) -> TrialResult | NothingToTry:
    from inspector.analyze import diagnose
    from inspector.recording import load

    original_rec = plan.directory / "original.sqlite"
    first = run_child(plan.command, workdir, record=original_rec)
    _check_original(first)
    diagnosis = diagnose(load(original_rec))
    advice = diagnosis.verdict.advice
    model = plan.to or advice
    say(f"  original, recorded: {first.wall_s:.1f} s; advice: {advice}")
    if model not in SWAPS:
        if model == "asyncio":
            raise TrialRefused("try: the advice is asyncio, which means rewriting the waiting "
                               "calls as coroutines, not swapping a pool; --to threading or "
                               "--to multiprocessing tries those models")
        return NothingToTry(advice, original_rec)
    say(f"  trying {model}")
    predicted: Predicted | None = None
    why_not: str | None = None
    rounds = _Rounds(plan, workdir, model, _masked(first.stdout, plan.masks))
    for n in range(plan.repeat):
        # The swapped side first in the first round (a refusal costs one run), then in turns,
        # so that a drift in the machine's load falls on both sides alike.
        for side in (("swapped", "original") if n % 2 == 0 else ("original", "swapped")):
            if side == "original":
                rounds.original()
            elif rounds.swapped() == 1:
                predicted, why_not = _prediction(diagnosis, original_rec, model, rounds.swaps)
                say(f"  swapped {'; '.join(swap_sentence(s) for s in rounds.swaps)}; "
                    "predicted " + (predicted_text(predicted) if predicted
                                    else f"nothing ({why_not})"))
        say(f"  round {n + 1}/{plan.repeat}: original {rounds.originals[-1].wall_s:.2f} s, "
            f"swapped {rounds.swaps_run[-1].wall_s:.2f} s")
    swapped_rec = plan.directory / f"swapped-{model}.sqlite"
    last = run_child(plan.command, workdir, to=model, record=swapped_rec)
    _check_swapped(last, rounds.reference, plan.masks, model)
    say(f"  swapped, recorded: {last.wall_s:.1f} s")
    return TrialResult(
        command=plan.command, advice=advice, model=model, swaps=rounds.swaps, left=rounds.left,
        original=_timing(rounds.originals), swapped=_timing(rounds.swaps_run),
        predicted=predicted, no_prediction=why_not, recordings=(original_rec, swapped_rec))


class _Rounds:
    """The unrecorded runs of both sides, each checked as it ends."""

    def __init__(self, plan: TrialPlan, workdir: Path, model: str, reference: str) -> None:
        self.plan, self.workdir, self.model, self.reference = plan, workdir, model, reference
        self.originals: list[ChildRun] = []
        self.swaps_run: list[ChildRun] = []
        self.swaps: tuple[Swap, ...] = ()
        self.left: tuple[str, ...] = ()

    def original(self) -> None:
        run = run_child(self.plan.command, self.workdir)
        _check_original(run)
        _check_stable(run, self.reference, self.plan.masks)
        self.originals.append(run)

    def swapped(self) -> int:
        """Runs the swapped side once; returns how many times it has run."""
        run = run_child(self.plan.command, self.workdir, to=self.model)
        self.swaps, self.left = _check_swapped(run, self.reference, self.plan.masks,
                                               self.model)
        self.swaps_run.append(run)
        return len(self.swaps_run)


def _timing(runs: Sequence[ChildRun]) -> Timing:
    return Timing(tuple(r.wall_s for r in runs), tuple(r.foreign_load for r in runs))


def _prediction(diagnosis: Diagnosis, recording: Path, model: str, swaps: Sequence[Swap]
                ) -> tuple[Predicted | None, str | None]:
    """What the recorded original predicts for the pools as swapped: with the swapped pools'
    worker count as the waits in flight, and their processes started as the swap starts
    them (joblib's loky by exec, like spawn); so the recording is diagnosed again."""
    from inspector.analyze import diagnose
    from inspector.recording import load

    workers = max((s.workers for s in swaps if s.workers), default=None)
    spawns = True if any("loky" in s.now for s in swaps) else None
    if workers is not None or spawns:
        diagnosis = diagnose(load(recording), io_concurrency=workers, spawns=spawns)
    return _predicted(diagnosis.predicted.get(model))


def _predicted(p: object) -> tuple[Predicted | None, str | None]:
    """The four numbers of the diagnosis's prediction, or why it made none."""
    if p is None:
        return None, "the diagnosis made none for this model"
    if isinstance(p, str):
        return None, p
    from inspector.analyze.predict import Prediction

    if not isinstance(p, Prediction):
        return None, "the diagnosis made none for this model"
    return Predicted(p.speedup, p.low, p.high, p.basis), None


def _exited(run: ChildRun) -> str:
    status = run.exit_status
    said = f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"
    return said + (f" ({run.stderr_tail})" if run.stderr_tail else "")


def _check_original(run: ChildRun) -> None:
    if run.exit_status != 0:
        raise TrialError(f"try: the original run {_exited(run)}; a trial needs a program that "
                         "succeeds")


def _masked(stdout: bytes, masks: Sequence[str]) -> str:
    text = stdout.decode(errors="surrogateescape")
    for mask in masks:
        text = re.sub(mask, MASKED, text)
    return text


def first_difference(a: str, b: str) -> str | None:
    """'line 3: "sum 42" became "sum 41"', or None when the texts are the same."""
    if a == b:
        return None
    la, lb = a.splitlines(), b.splitlines()
    for i, (x, y) in enumerate(zip(la, lb)):
        if x != y:
            return f"line {i + 1}: {_cut(x)} became {_cut(y)}"
    if len(la) != len(lb):
        n = min(len(la), len(lb))
        return (f"{len(la)} line{'s' if len(la) != 1 else ''} became {len(lb)}, from line {n + 1}: "
                f"{_cut((la if len(la) > n else lb)[n])}")
    return "the line endings changed"


def _cut(line: str, width: int = 60) -> str:
    return repr(line if len(line) <= width else line[:width] + "...")


def _check_stable(run: ChildRun, reference: str, masks: Sequence[str]) -> None:
    diff = first_difference(reference, _masked(run.stdout, masks))
    if diff:
        raise TrialRefused(f"try: the original's standard output changes from run to run "
                           f"({diff}), so a swapped run's cannot be checked against it; "
                           "--mask REGEX hides what changes (timings, ids)")


def _check_swapped(run: ChildRun, reference: str, masks: Sequence[str], model: str
                   ) -> tuple[tuple[Swap, ...], tuple[str, ...]]:
    """The pools swapped and those left alone, if the swapped run counts; else the refusal."""
    ev = run.events
    if ev is None or not ev.loaded:
        raise TrialRefused("try: the hook that swaps the pools never loaded into the program's "
                           "Python (started with -I, -E or -S by a script? not Python at "
                           f"all?); {NOTHING_CLAIMED}")
    if ev.refusal:
        raise TrialRefused(f"try: cannot swap to {model}: {ev.refusal}; {NOTHING_CLAIMED}")
    if run.exit_status != 0:
        raise TrialRefused(f"try: the swapped run {_exited(run)} where the original exited 0; "
                           f"{NOTHING_CLAIMED}")
    if not ev.swaps:
        left = f"; left alone: {', '.join(ev.left)}" if ev.left else ""
        raise TrialRefused(f"try: the program's own code made no pool to swap to {model} "
                           f"(looked for {SOURCES[model]}){left}; nothing to try")
    diff = first_difference(reference, _masked(run.stdout, masks))
    if diff:
        raise TrialRefused(f"try: the swapped run printed another standard output ({diff}); "
                           f"{NOTHING_CLAIMED}")
    return ev.swaps, ev.left


def publish(result: TrialResult, directory: Path) -> TrialResult:
    """Writes the comparison page of the two recordings and try.json beside them."""
    from inspector.analyze.comparison import compare, facts
    from inspector.recording import load
    from inspector.report.build import write_page

    recordings = [load(path) for path in result.recordings]
    labels = ("original", f"swapped to {result.model}")
    rows = compare([[facts(rec, label=label)] for rec, label in zip(recordings, labels)])
    p = result.predicted
    if p is not None:  # the page draws it beside the swapped row's bar
        rows[1] = replace(rows[1], predicted_speedup=p.speedup, predicted_low=p.low,
                          predicted_high=p.high, predicted_basis=p.basis)
    page = directory / "comparison.html"
    lead = ("One recorded run of each; the speed-up below them is measured on the unrecorded "
            "runs (recording costs differ by model).", *TRIAL_TEXT.lines(result))
    write_page(page, f"inspector try: {result.model} swapped in", rows, recordings, lead=lead)
    result = replace(result, page=page)
    try:
        (directory / "try.json").write_text(TRIAL_JSON.render(result), encoding="utf-8")
    except OSError as e:
        raise TrialError(f"try: cannot write {directory / 'try.json'}: {e.strerror or e}"
                         ) from None
    return result


def prepare(directory: Path) -> None:
    from inspector.files import output_folder

    output_folder(directory, TrialError, "try")
