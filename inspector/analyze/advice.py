"""The advice, from the predictions: the model with the highest predicted speed-up whose low end
beats the run as recorded by ADVICE_MARGIN (of candidates predicted alike, the smaller change);
a fix that is no model change (unblock an event loop, hold a lock shorter, fewer workers) where
the evidence names one; `keep` when nothing beats the margin; `unknown` when the evidence cannot
carry a prediction. One story: the advice can never contradict the predictions shown beside it
(`contradictions()` says if it does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from inspector.analyze import evidence as ev
from inspector.analyze.evidence import Fact
from inspector.analyze.predict import MODELS, Prediction
from inspector.analyze.vocabulary import AdviceKey

# Changing a program's concurrency model is work: advise it only for a gain a user would
# notice, a tenth or more, and only when even the low end of its predicted range holds it.
ADVICE_MARGIN = 1.1
# Between candidates predicted alike, the smaller change wins: a fix of the program's own
# model, then threads (a pool around the calls it makes), processes (the same pool's other
# kind: `inspector try` swaps them mechanically; their memory and starts are in the
# predictions), asyncio (every blocking call rewritten as a coroutine). Alike: the best
# median is less than ADVICE_MARGIN times the other's, a difference the user would not
# notice, for the same reason a model change is advised only beyond it.
PREFERENCE = ("fix", "threading", "multiprocessing", "asyncio")


@dataclass(frozen=True)
class Fix:
    """Advice that is no model change, with what it would gain where that can be had."""

    advice: AdviceKey
    why: Fact
    gain: Prediction | None = None
    # the model whose predicted gain this fix is (a loop's blocking calls made non-blocking
    # are the asyncio model's gain for a program already on asyncio)
    replaces: str | None = None
    way: str | None = None         # how the fix has that gain, where not by that model
    # where it stands among candidates predicted alike (PREFERENCE): a fix first, as the
    # smaller change, unless it stands where the model whose gain it is stood
    place: str = "fix"


@dataclass(frozen=True)
class Advice:
    advice: AdviceKey
    why: tuple[Fact, ...]
    gain: Prediction | None        # the predicted speed-up it stands on, where there is one


def choose(predicted: Mapping[str, Prediction | str], fixes: Sequence[Fix],
           situation: Fact, unknown: str | None = None) -> Advice:
    """The advice for a run whose predictions are `predicted`, `situation` its shape."""
    if unknown is not None:
        return Advice("unknown", (ev.CannotPredict(unknown),), None)
    replaced = {f.replaces for f in fixes if f.replaces}
    models = [p for m, p in predicted.items()
              if isinstance(p, Prediction) and m not in replaced]
    # (median as shown, preference) for every candidate that beats the margin at its low end
    ranked: list[tuple[float, int, AdviceKey, tuple[Fact, ...], Prediction]] = []
    for p in models:
        if p.low >= ADVICE_MARGIN:
            ranked.append((round(p.speedup, 2), -PREFERENCE.index(p.model),
                           p.model,  # type: ignore[arg-type]
                           (situation, ev.PredictedGain(p)), p))
    for f in fixes:
        if f.gain is not None and f.gain.low >= ADVICE_MARGIN:
            ranked.append((round(f.gain.speedup, 2), -PREFERENCE.index(f.place), f.advice,
                           (f.why, ev.PredictedGain(f.gain, f.way)), f.gain))
    if ranked:
        fastest = max(r[0] for r in ranked)
        alike = [r for r in ranked if r[0] * ADVICE_MARGIN > fastest]
        best = max(alike, key=lambda r: (r[1], r[0]))
        return Advice(best[2], best[3], best[4])
    for f in fixes:
        if f.gain is None:  # a fix the evidence names, gain unknown: said as what it is
            return Advice(f.advice, (f.why,), None)
    top = max(models, key=lambda p: p.speedup, default=None)
    return Advice("keep", (situation, ev.NoModelGains(top, ADVICE_MARGIN)), None)


def contradictions(advice: AdviceKey, predicted: Mapping[str, Prediction | str]
                   ) -> list[str]:
    """Where the advice and the predictions beside it disagree: `keep` while a model's low end
    beats the margin, or a model advised whose high end is below 1.0x."""
    out = []
    shown = {m: p for m, p in predicted.items() if isinstance(p, Prediction)}
    if advice == "keep":
        out += [f"keep, yet {m} is predicted {p.low:.2f}x at its low end"
                for m, p in shown.items() if p.low >= ADVICE_MARGIN]
    if advice in MODELS:
        p = shown.get(advice)
        if p is None:
            out.append(f"{advice} advised with no prediction for it")
        elif p.high < 1.0:
            out.append(f"{advice} advised, yet predicted {p.high:.2f}x at its high end")
    return out
