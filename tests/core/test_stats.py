import math

import numpy as np
import pytest

from padlens.core.stats import Z95, diff_interval, wilson, wilson_halfwidth


def test_wilson_at_zero_successes_has_the_closed_form_upper_bound():
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(Z95 ** 2 / (10 + Z95 ** 2))   # k = 0: upper = z^2 / (n + z^2)
    assert hi == pytest.approx(0.2775, abs=1e-4)                          # the textbook 0.2775 (z = 1.96)
    lo, hi = wilson(10, 10)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(10 / (10 + Z95 ** 2))   # mirror image


def test_wilson_half_is_symmetric_around_one_half():
    lo, hi = wilson(5, 10)
    assert (lo, hi) == pytest.approx((0.2366, 0.7634), abs=1e-4)          # Newcombe 1998a, Table I: 5/10
    assert lo + hi == pytest.approx(1.0)
    assert wilson_halfwidth(5, 10) == pytest.approx((hi - lo) / 2)


def test_wilson_is_elementwise_and_nan_without_trials():
    lo, hi = wilson(np.array([0, 5, 3]), np.array([10, 10, 0]))
    assert lo[1] == pytest.approx(wilson(5, 10)[0]) and math.isnan(lo[2]) and math.isnan(hi[2])


def test_newcombe_difference_matches_his_worked_examples():
    # Newcombe 1998b ("Interval estimation for the difference between independent proportions"), Table II,
    # method 10: 56/70 - 48/80, 9/10 - 3/10 and 10/10 - 0/10
    assert diff_interval(56, 70, 48, 80) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    assert diff_interval(9, 10, 3, 10) == pytest.approx((0.1705, 0.8090), abs=1e-4)
    assert diff_interval(10, 10, 0, 10) == pytest.approx((0.6075, 1.0), abs=1e-4)


def test_difference_interval_contains_the_difference_and_flips_with_the_order():
    lo, hi = diff_interval(30, 50, 20, 40)
    assert lo < 30 / 50 - 20 / 40 < hi
    assert diff_interval(20, 40, 30, 50) == pytest.approx((-hi, -lo))
    assert all(math.isnan(v) for v in diff_interval(1, 0, 1, 5))
