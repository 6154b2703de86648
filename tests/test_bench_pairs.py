"""The benchmarks' account of how sure a median of pair ratios is (bench/pairs.py)."""

import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from pairs import describe, median_interval  # noqa: E402


def test_the_interval_holds_the_median_and_narrows_as_pairs_accrue():
    noisy = [1.117, 1.186, 1.093, 1.074, 1.074, 0.966, 0.966, 1.170, 1.026, 1.059]
    low, high = median_interval(noisy)
    assert min(noisy) <= low <= statistics.median(noisy) <= high <= max(noisy)
    wide = high - low
    low4, high4 = median_interval(noisy * 4)
    assert low4 <= statistics.median(noisy) <= high4 and high4 - low4 < wide
    assert median_interval(noisy) == (low, high)  # seeded: the same pairs print the same interval


def test_identical_pairs_are_certain_and_no_pairs_are_refused():
    assert median_interval([1.02] * 5) == (1.02, 1.02)
    assert describe([1.0, 1.1, 1.2]).startswith("median 1.100 (90 % interval ")
    with pytest.raises(ValueError):
        median_interval([])
