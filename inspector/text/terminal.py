"""Target-derived text made safe to print, and the units every renderer writes numbers in:
one home for each, so the summary, `top`, the page and the exports agree.
"""

from __future__ import annotations

import json
import math
import shlex
from typing import Any


def clean(text: object) -> str:
    """A target-derived string made safe for a terminal (no escape sequences, no newlines)."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(text))


def command_text(argv: Any, limit: int = 80, fallback: str = "?") -> str:
    """A command line (a list, or its JSON as stored) as one printable line of at most
    `limit` characters; `fallback` when there is none."""
    if isinstance(argv, str):
        try:
            argv = json.loads(argv)
        except ValueError:
            argv = [argv]
    if not isinstance(argv, (list, tuple)) or not argv:
        return fallback
    text = clean(shlex.join(str(a) for a in argv))
    return text if len(text) <= limit else text[:limit - 3] + "..."


def seconds_text(value: float | None) -> str:
    """'850 ms', '3.2 s', '125 s'; '–' for no value. Milliseconds up to what would round to
    1000 ms, so no value reads '1000 ms'."""
    try:
        value = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(value):
        return "–"
    if round(value * 1000) < 1000:
        return f"{value * 1000:.0f} ms"
    return f"{value:.0f} s" if value >= 99.95 else f"{value:.1f} s"


def size_text(n: int | None) -> str:
    """'512B', '3.4K', '120M': a byte count as top shows it; '?' for none."""
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            return f"{value:.0f}{unit}" if unit == "B" or value >= 10 else f"{value:.1f}{unit}"
        value /= 1024
    return "?"
