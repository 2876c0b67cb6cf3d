"""What `inspector try` found, in words and as JSON: the pools swapped, both sides' times, the
measured speed-up beside the predicted one, and the check (inspector/trial/outcome.py's facts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inspector.machine_load import BUSY_SHARE
from inspector.text.base import TextRenderer
from inspector.text.json import JsonRenderer

if TYPE_CHECKING:
    from inspector.trial.outcome import Check, Predicted, Swap, Timing, TrialResult
    from inspector.trial.runner import NothingToTry


def swap_sentence(s: Swap) -> str:
    """'ThreadPoolExecutor -> ProcessPoolExecutor at work.py:12, 4 workers'."""
    workers = f", {s.workers} workers" if s.workers else ""
    return f"{s.was} -> {s.now} at {s.site}{workers}"


def timing_text(t: Timing) -> str:
    """'2.41 s (2.38-2.45), 3 runs'."""
    spread = f" ({t.min_s:.2f}-{t.max_s:.2f})" if len(t.runs_s) > 1 else ""
    busy = f", {t.busy_runs} busy" if t.busy_runs else ""
    runs = "1 run" if len(t.runs_s) == 1 else f"{len(t.runs_s)} runs"
    return f"{t.median_s:.2f} s{spread}, {runs}{busy}"


def predicted_text(p: Predicted) -> str:
    return f"{p.speedup:.2f}x ({p.low:.2f}-{p.high:.2f})"


def measured_text(r: TrialResult) -> str:
    if r.speedup_low == r.speedup_high:  # one run each: no spread measured
        return f"{r.speedup:.2f}x"
    return f"{r.speedup:.2f}x ({r.speedup_low:.2f}-{r.speedup_high:.2f})"


def check_sentence(c: Check) -> str:
    if c.verdict == "no_prediction":
        return f"no prediction to check ({c.no_prediction})"
    if c.verdict == "in_range":
        return "within the predicted range"
    off = c.off_by or 0.0
    side = "above" if off > 0 else "below"
    if c.verdict == "near":
        return (f"outside the predicted range, {abs(off):.0%} {side} the predicted speed-up "
                f"(within {c.tolerance:.0%})")
    return (f"missed the prediction: {abs(off):.0%} {side} the predicted speed-up (more than "
            f"{c.tolerance:.0%})")


def nothing_to_try_sentence(n: NothingToTry) -> str:
    from inspector.analyze.vocabulary import advice_of

    if n.advice == "keep":
        why = advice_of("keep").sentence.rstrip(".")
        said = f"to keep its concurrency model ({why[:1].lower() + why[1:]})"
    else:  # a word newer than this module
        said = f"{n.advice!r}, which no pool swap tries"
    return (f"try: the advice for this run is {said}: nothing to try; "
            "--to multiprocessing or --to threading tries one anyway")


class TrialText(TextRenderer["TrialResult"]):
    """The terminal text: what was swapped, both sides' times, and the check."""

    def lines(self, model: TrialResult) -> list[str]:
        r = model
        out = [f"swapped: {swap_sentence(s)}" for s in r.swaps]
        out += [f"left alone: {pool}" for pool in r.left]
        out.append(f"original: {timing_text(r.original)}")
        out.append(f"swapped:  {timing_text(r.swapped)}")
        predicted = (f"predicted {predicted_text(r.predicted)}" if r.predicted is not None
                     else "no prediction")
        out.append(f"speed-up: {measured_text(r)} measured, {predicted} for {r.model}: "
                   f"{check_sentence(r.check)}")
        if r.busy_runs:
            out.append(f"{r.busy_runs} of {r.runs} runs were busy: other programs used more "
                       f"than {BUSY_SHARE:.0%} of the machine's CPU during them")
        return out


def _timing_data(t: Timing) -> dict[str, Any]:
    return {"median_s": round(t.median_s, 3), "min_s": round(t.min_s, 3),
            "max_s": round(t.max_s, 3), "runs_s": [round(x, 3) for x in t.runs_s],
            "foreign_load": [round(x, 3) for x in t.loads], "busy_runs": t.busy_runs}


def trial_data(r: TrialResult) -> dict[str, Any]:
    """`inspector try --json`, and DIR/try.json (docs/try.md names the keys)."""
    from inspector.text.evidence import basis_text

    check, p = r.check, r.predicted
    return {
        "command": list(r.command), "advice": r.advice, "model": r.model,
        "swaps": [{"site": s.site, "from": s.was, "to": s.now, "workers": s.workers}
                  for s in r.swaps],
        "left_alone": list(r.left),
        "original": _timing_data(r.original), "swapped": _timing_data(r.swapped),
        "measured": {"speedup": round(r.speedup, 3), "low": round(r.speedup_low, 3),
                     "high": round(r.speedup_high, 3)},
        "predicted": ({"speedup": round(p.speedup, 3), "low": round(p.low, 3),
                       "high": round(p.high, 3), "basis": basis_text(p.basis)}
                      if p is not None else {"speedup": None, "reason": r.no_prediction}),
        "check": {"verdict": check.verdict,
                  "off_by": None if check.off_by is None else round(check.off_by, 3),
                  "tolerance": check.tolerance, "sentence": check_sentence(check)},
        "recordings": {"original": str(r.recordings[0]), "swapped": str(r.recordings[1])},
        "page": str(r.page) if r.page is not None else None,
    }


def nothing_data(n: NothingToTry) -> dict[str, Any]:
    return {"advice": n.advice, "model": None, "recordings": {"original": str(n.recording)},
            "sentence": nothing_to_try_sentence(n)}


TRIAL_TEXT = TrialText()
TRIAL_JSON = JsonRenderer(trial_data)
NOTHING_JSON = JsonRenderer(nothing_data)
