"""Down-sampling that keeps what a reader looks for: the peaks and the dips.

Long recordings have far more samples than a chart has pixels; every function here picks
whole real samples (never averages them away), so a one-sample spike still shows.
"""

from __future__ import annotations

import numpy as np

# A chart is at most ~2,000 pixels wide: two points (min and max) per pixel column is the most
# the eye can use, and it keeps a one-hour, 0.1 s recording's series at 4,000 of 36,000 points.
MAX_POINTS_PER_SERIES = 4000


def minmax_indices(t: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS_PER_SERIES
                   ) -> np.ndarray:
    """Indices (sorted) of the points to keep from a series sorted by `t`.

    All of them when there are at most `max_points`; otherwise the time span is cut into
    `max_points // 2` equal buckets and, in each, the sample with the smallest and the one
    with the largest `y` are kept, plus the first and the last sample. NaN counts as neither.
    """
    n = len(t)
    if n <= max_points:
        return np.arange(n)
    buckets = max(1, max_points // 2 - 1)
    t0, t1 = float(t[0]), float(t[-1])
    width = (t1 - t0) / buckets or 1.0
    b = np.minimum(((t - t0) / width).astype(np.int64), buckets - 1)
    yy = np.where(np.isnan(y), -np.inf, y)
    order = np.lexsort((yy, b))  # by bucket, then by value
    sorted_b = b[order]
    starts = np.flatnonzero(np.r_[True, sorted_b[1:] != sorted_b[:-1]])
    ends = np.r_[starts[1:], len(order)] - 1
    # The smallest non-NaN value is the first one that is not -inf in its bucket.
    finite = np.isfinite(yy[order])
    first_finite = _first_true_from(finite, starts, ends)
    keep = np.concatenate([order[first_finite], order[ends], [0, n - 1]])
    return np.unique(keep)


def _first_true_from(flags: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """For each [start, end] run, the first index where `flags` is true (else `end`)."""
    idx = np.arange(len(flags))
    nxt = np.where(flags, idx, len(flags))
    # Suffix minimum: for every position, the nearest true index at or after it.
    nearest = np.minimum.accumulate(nxt[::-1])[::-1]
    return np.minimum(nearest[starts], ends)


def bucket_count(duration_s: float, interval_s: float, max_buckets: int) -> tuple[int, float]:
    """How many equal time buckets to cut a recording into, and their width: one per
    sampling interval while that fits, else `max_buckets` wider ones."""
    interval_s = max(interval_s, 1e-6)
    native = int(np.ceil(max(duration_s, interval_s) / interval_s))
    n = max(1, min(native, max_buckets))
    return n, max(duration_s, interval_s) / n
