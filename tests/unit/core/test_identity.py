from __future__ import annotations

import pytest

from tactful.core.events import Identifier
from tactful.core.identity import (
    normalize_email,
    normalize_external_id,
    normalize_identifier,
    normalize_phone,
    normalize_zendesk_user_id,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Mary@Example.com ", "mary@example.com"),
        ("mary@example.com", "mary@example.com"),
        ("JOE.SMITH+tag@Mail.Example.CO.UK", "joe.smith+tag@mail.example.co.uk"),
        ("\tann@example.org\n", "ann@example.org"),
    ],
)
def test_email_is_trimmed_and_lower_cased(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "mary",
        "mary@",
        "@example.com",
        "mary@example",
        "mary@@example.com",
        "mary@exa@mple.com",
        "mary smith@example.com",
        "mary@exam ple.com",
        "mary@.com",
        "mary@example.",
        "mary@example..com",
        "-",
    ],
)
def test_implausible_emails_are_rejected(raw: str) -> None:
    assert normalize_email(raw) is None


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        # 555 numbers are not "valid" for phonenumbers but are possible: we keep them.
        ("+1 (555) 987-6543", None, "+15559876543"),
        ("+1 (555) 987-6543", "GB", "+15559876543"),
        ("(555) 987-6543", "US", "+15559876543"),
        ("555.987.6543", "us", "+15559876543"),
        ("+15559876543", None, "+15559876543"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("00 44 20 7946 0958", "DE", "+442079460958"),
        ("+1 555 987 6543 ext. 12", None, "+15559876543"),
        ("1-800-FLOWERS", "US", "+18003569377"),
    ],
)
def test_phone_is_normalized_to_e164(raw: str, region: str | None, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("", "US"),
        ("   ", "US"),
        ("-", "US"),
        ("not a phone", "US"),
        ("12", "US"),
        ("555-987-6543", None),  # national number without a default region
        ("+999 1234", None),  # no such country code
        ("+1 555 987 65430000", None),  # too long
    ],
)
def test_unusable_phones_are_rejected(raw: str, region: str | None) -> None:
    assert normalize_phone(raw, region) is None


def test_external_id_is_trimmed_and_keeps_case() -> None:
    assert normalize_external_id("  Cust-42 ") == "Cust-42"
    assert normalize_external_id("   ") is None
    assert normalize_external_id("") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("123", "123"),
        (" 007 ", "7"),
        (42, "42"),
        ("12x", None),
        ("", None),
        ("-5", None),
        ("0", None),
        (0, None),
        ("1.5", None),
        (True, None),
    ],
)
def test_zendesk_user_id(raw: str | int, expected: str | None) -> None:
    assert normalize_zendesk_user_id(raw) == expected


def test_normalize_identifier_dispatches_by_kind() -> None:
    assert normalize_identifier("email", " Mary@Example.com ", None) == Identifier(
        "email", "mary@example.com"
    )
    assert normalize_identifier("phone", "(555) 987-6543", "US") == Identifier(
        "phone", "+15559876543"
    )
    assert normalize_identifier("external_id", " abc ", None) == Identifier("external_id", "abc")
    assert normalize_identifier("zendesk_user_id", "0042", None) == Identifier(
        "zendesk_user_id", "42"
    )
    assert normalize_identifier("person_id", " p_1 ") == Identifier("person_id", "p_1")


@pytest.mark.parametrize(
    ("kind", "raw"),
    [("email", "nope"), ("phone", "nope"), ("external_id", "  "), ("zendesk_user_id", "x1")],
)
def test_normalize_identifier_returns_none_for_unusable_values(kind: str, raw: str) -> None:
    assert normalize_identifier(kind, raw, "US") is None  # type: ignore[arg-type]


def test_normalization_is_idempotent() -> None:
    email = normalize_email("  Mary@Example.com ")
    assert email is not None and normalize_email(email) == email
    phone = normalize_phone("(555) 987-6543", "US")
    assert phone is not None and normalize_phone(phone, None) == phone
