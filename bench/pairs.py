"""What benchmarks of alternating pairs share: the command-line count type, and how sure a
median of pair ratios is.

Wall times on a shared 2-core machine vary by ±10-15 % from run to run, so a median of a few
pairs can land on either side of a 5 % target. ``median_interval`` says how far: the exact,
distribution-free interval of a median, from the pairs' order statistics (the true median
lies below the k-th smallest of n values with the probability that a fair coin shows heads
fewer than k times in n throws). No interval of 90 % exists for fewer than 5 pairs.
"""

from __future__ import annotations

import argparse
import statistics
from math import comb


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def median_interval(values: list[float], level: float = 0.9) -> tuple[float, float, float] | None:
    """(low, high, confidence): the narrowest order-statistic interval holding the median with
    at least ``level`` confidence, and that confidence; None when there are too few values."""
    n = len(values)
    ordered = sorted(values)
    below = 0.0  # P(fewer than k heads in n throws), for k = 1, 2, ...
    best = None
    for k in range(1, n // 2 + 1):
        below += comb(n, k - 1) / 2 ** n
        if 1 - 2 * below < level:
            break
        best = (ordered[k - 1], ordered[n - k], 1 - 2 * below)
    return best


def describe(ratios: list[float]) -> str:
    """``median 1.074 (97.9% interval 0.966-1.170 over 10 pairs)``."""
    found = median_interval(ratios)
    how_sure = (f"{found[2]:.1%} interval {found[0]:.3f}-{found[1]:.3f}" if found
                else "too few for a 90 % interval")
    return f"median {statistics.median(ratios):.3f} ({how_sure} over {len(ratios)} pairs)"
