"""``PlatformReport``: what a platform said about a send, merged over a run's batches."""

from __future__ import annotations

import pytest

from tactful.core.platform import MAX_DIAGNOSTICS, PlatformReport


def test_counts_add_up_and_a_missing_count_is_not_zero() -> None:
    a = PlatformReport(received=10, invalid=None, status="ok")
    b = PlatformReport(received=5, invalid=2, status="")
    merged = a.merge(b)
    assert (merged.received, merged.invalid, merged.status) == (15, 2, "ok")
    assert PlatformReport().merge(PlatformReport()).received is None


def test_the_latest_audience_bounds_and_match_rate_win() -> None:
    old = PlatformReport(audience_lower=100, audience_upper=200, match_rate="51-60%")
    new = PlatformReport(audience_lower=300, audience_upper=None, match_rate="")
    merged = old.merge(new)
    assert (merged.audience_lower, merged.audience_upper) == (300, 200)
    assert merged.match_rate == "51-60%"


def test_diagnostics_keep_their_first_order_once_and_are_bounded() -> None:
    many = tuple(f"reason {n}" for n in range(MAX_DIAGNOSTICS + 5))
    merged = PlatformReport(diagnostics=("b", "a")).merge(PlatformReport(diagnostics=("a", *many)))
    assert merged.diagnostics[:3] == ("b", "a", "reason 0")
    assert len(merged.diagnostics) == MAX_DIAGNOSTICS


@pytest.mark.parametrize(
    ("lower", "upper", "shown"),
    [
        (None, None, ""),
        (1000, 1200, "1,000–1,200"),
        (1000, 1000, "1,000"),
        (None, 4200, "4,200"),
        (1500, None, "1,500"),
    ],
)
def test_the_audience_size_for_people(lower: int | None, upper: int | None, shown: str) -> None:
    assert PlatformReport(audience_lower=lower, audience_upper=upper).audience_size == shown
