"""The benchmarks' account of how sure a median of pair ratios is (bench/pairs.py)."""

import importlib.util
import statistics
from math import comb
from pathlib import Path

_spec = importlib.util.spec_from_file_location("bench_pairs", Path(__file__).resolve().parents[1] / "bench" / "pairs.py")
pairs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pairs)


def test_the_interval_is_the_exact_order_statistic_one_for_a_median():
    noisy = [1.117, 1.186, 1.093, 1.074, 1.074, 0.966, 0.966, 1.170, 1.026, 1.059]
    low, high, sure = pairs.median_interval(noisy)
    ordered = sorted(noisy)
    assert (low, high) == (ordered[1], ordered[8])  # the 2nd smallest and the 2nd largest of 10
    assert sure == 1 - 2 * (comb(10, 0) + comb(10, 1)) / 2 ** 10 >= 0.9
    # one step narrower would hold the median less often than 90 % of the time
    assert 1 - 2 * sum(comb(10, i) for i in range(3)) / 2 ** 10 < 0.9
    low3, high3, _ = pairs.median_interval(noisy * 3)
    assert low <= low3 <= statistics.median(noisy) <= high3 <= high and high3 - low3 < high - low


def test_too_few_pairs_give_no_interval_rather_than_a_false_one():
    assert [pairs.median_interval([1.0] * n) for n in range(5)] == [None] * 5
    assert pairs.median_interval([1.02] * 5) == (1.02, 1.02, 1 - 2 / 32)
    assert pairs.describe([1.0, 1.1, 1.2]) == "median 1.100 (too few for a 90 % interval over 3 pairs)"
    assert pairs.describe([1.0, 1.1, 1.2, 1.3, 1.4]) == "median 1.200 (93.8% interval 1.000-1.400 over 5 pairs)"
