"""What benchmarks of alternating pairs share: the command-line count type, and how sure a
median of pair ratios is.

Wall times on a shared 2-core machine vary by ±10-15 % from run to run, so a median of a few
pairs can land on either side of a 5 % target. ``median_interval`` says how far: a percentile
bootstrap of the median (resample the pairs with replacement, take each resample's median).
"""

from __future__ import annotations

import argparse
import random
import statistics


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def median_interval(values: list[float], level: float = 0.9, draws: int = 10_000,
                    seed: int = 0) -> tuple[float, float]:
    """The central ``level`` interval of the median of ``values``, by bootstrap."""
    if not values:
        raise ValueError("no values")
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    tail = int(draws * (1 - level) / 2)
    return medians[tail], medians[draws - 1 - tail]


def describe(ratios: list[float]) -> str:
    """``median 1.074 (90 % interval 1.026-1.117 over 10 pairs)``."""
    low, high = median_interval(ratios)
    return f"median {statistics.median(ratios):.3f} (90 % interval {low:.3f}-{high:.3f} over {len(ratios)} pairs)"
