"""Interval estimates against published and hand-computed values."""

from __future__ import annotations

import math

import pytest

from tactful.report.stats import (
    Z95,
    mean_difference_interval,
    mean_interval,
    median,
    newcombe_interval,
    sample_variance,
    wilson_interval,
)


def close(interval: object, low: float, high: float, tol: float = 5e-5) -> None:
    assert interval is not None
    assert interval.low == pytest.approx(low, abs=tol)  # type: ignore[attr-defined]
    assert interval.high == pytest.approx(high, abs=tol)  # type: ignore[attr-defined]


def test_wilson_matches_newcombe_1998_single_proportion_examples() -> None:
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", method 3
    close(wilson_interval(81, 263), 0.2553, 0.3662)
    close(wilson_interval(15, 148), 0.0624, 0.1605)
    close(wilson_interval(0, 20), 0.0, 0.1611)
    close(wilson_interval(1, 29), 0.0061, 0.1718)


def test_wilson_by_hand() -> None:
    # 1/2: p = .5, z² = 3.8415; centre = (.5 + 3.8415/4)/(1 + 3.8415/2) = .5
    # half = z/(1 + z²/2) * sqrt(.25/2 + z²/16) = .67105 * sqrt(.125 + .24009) = .40547
    z2 = Z95 * Z95
    half = Z95 / (1 + z2 / 2) * math.sqrt(0.125 + z2 / 16)
    close(wilson_interval(1, 2), 0.5 - half, 0.5 + half, 1e-12)
    assert half == pytest.approx(0.40547, abs=1e-5)
    close(wilson_interval(10, 10), 0.7225, 1.0)
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_newcombe_difference_matches_the_paper() -> None:
    # Newcombe (1998), "Interval estimation for the difference between independent
    # proportions", method 10 (hybrid score, no continuity correction)
    close(newcombe_interval(56, 70, 48, 80), 0.0524, 0.3339)
    close(newcombe_interval(9, 10, 3, 10), 0.1705, 0.8090)
    close(newcombe_interval(6, 7, 2, 7), 0.0582, 0.8062)
    close(newcombe_interval(5, 56, 0, 29), -0.0381, 0.1926)
    close(newcombe_interval(0, 10, 0, 20), -0.1611, 0.2775)
    assert newcombe_interval(1, 0, 1, 2) is None


def test_newcombe_is_built_from_the_wilson_limits() -> None:
    w1, w2 = wilson_interval(56, 70), wilson_interval(48, 80)
    assert w1 is not None and w2 is not None
    p1, p2 = 0.8, 0.6
    low = 0.2 - math.sqrt((p1 - w1.low) ** 2 + (w2.high - p2) ** 2)
    high = 0.2 + math.sqrt((w1.high - p1) ** 2 + (p2 - w2.low) ** 2)
    close(newcombe_interval(56, 70, 48, 80), low, high, 1e-12)


def test_means_by_hand() -> None:
    values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]  # mean 5, sum of squares 32
    assert sample_variance(values) == pytest.approx(32 / 7)
    half = Z95 * math.sqrt(32 / 7 / 8)
    close(mean_interval(values), 5 - half, 5 + half, 1e-12)
    assert mean_interval([1.0]) is None
    # (1, 3) vs (0, 4): means 2 and 2, variances 2 and 8 -> 0 ± z*sqrt(2/2 + 8/2)
    half = Z95 * math.sqrt(5)
    close(mean_difference_interval([1.0, 3.0], [0.0, 4.0]), -half, half, 1e-12)
    assert mean_difference_interval([1.0, 3.0], [1.0]) is None


def test_median() -> None:
    assert median([]) is None
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
