"""Interval estimates used by the measurement report (pure functions, no numpy/scipy).

- ``wilson_interval``: the Wilson score interval for one proportion (no continuity
  correction).
- ``newcombe_interval``: Newcombe's hybrid score interval for a difference of two independent
  proportions (Newcombe 1998, "Interval estimation for the difference between independent
  proportions", method 10), built from the two Wilson intervals.
- ``mean_interval`` / ``mean_difference_interval``: normal-approximation intervals for a mean
  (sample variance, n − 1) and for a difference of two independent means (unpooled variances).
- ``median``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054  # the 0.975 quantile of the standard normal distribution


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float


def wilson_interval(successes: int, n: int, z: float = Z95) -> Interval | None:
    """Wilson score interval for ``successes``/``n``; None when ``n`` is 0."""
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in 0..{n}, got {successes}")
    p = successes / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # Clamp rounding noise at the bounds (0/n gives exactly 0, n/n exactly 1).
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(low, high)


def newcombe_interval(
    successes1: int, n1: int, successes2: int, n2: int, z: float = Z95
) -> Interval | None:
    """Newcombe's hybrid score interval for p1 − p2 (method 10); None if either n is 0.

    With Wilson limits (l1, u1) and (l2, u2) and d = p1 − p2:
    L = d − sqrt((p1 − l1)² + (u2 − p2)²),  U = d + sqrt((u1 − p1)² + (p2 − l2)²).
    """
    w1 = wilson_interval(successes1, n1, z)
    w2 = wilson_interval(successes2, n2, z)
    if w1 is None or w2 is None:
        return None
    p1, p2 = successes1 / n1, successes2 / n2
    d = p1 - p2
    low = d - math.sqrt((p1 - w1.low) ** 2 + (w2.high - p2) ** 2)
    high = d + math.sqrt((w1.high - p1) ** 2 + (p2 - w2.low) ** 2)
    return Interval(max(-1.0, low), min(1.0, high))


def mean(values: Sequence[float]) -> float | None:
    return None if not values else math.fsum(values) / len(values)


def sample_variance(values: Sequence[float]) -> float | None:
    """Unbiased sample variance (divisor n − 1); None for fewer than two values."""
    n = len(values)
    if n < 2:
        return None
    m = math.fsum(values) / n
    return math.fsum((v - m) ** 2 for v in values) / (n - 1)


def mean_interval(values: Sequence[float], z: float = Z95) -> Interval | None:
    """mean ± z·s/√n (normal approximation); None for fewer than two values."""
    m, var = mean(values), sample_variance(values)
    if m is None or var is None:
        return None
    half = z * math.sqrt(var / len(values))
    return Interval(m - half, m + half)


def mean_difference_interval(
    values1: Sequence[float], values2: Sequence[float], z: float = Z95
) -> Interval | None:
    """(mean1 − mean2) ± z·sqrt(s1²/n1 + s2²/n2); None unless both have two values or more."""
    m1, m2 = mean(values1), mean(values2)
    v1, v2 = sample_variance(values1), sample_variance(values2)
    if m1 is None or m2 is None or v1 is None or v2 is None:
        return None
    half = z * math.sqrt(v1 / len(values1) + v2 / len(values2))
    d = m1 - m2
    return Interval(d - half, d + half)


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[mid])
    return (ordered[mid - 1] + ordered[mid]) / 2
