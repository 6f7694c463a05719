"""Per-platform normalization and hashing: the vendors' published examples, and properties."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tactful.destinations import hashing as h


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- published examples ----------------------------------------------------------------------


def test_meta_phone_example_digits_only_with_country_code() -> None:
    # Meta: "remove symbols, letters, and any leading zeroes", country code included, no "+".
    assert h.normalize_meta_phone("+1 (555) 987-6543") == "15559876543"
    assert h.meta_phone("+1 (555) 987-6543") == sha("15559876543")
    assert h.normalize_meta_phone("+44 844 412 4653") == "448444124653"
    assert h.normalize_meta_phone("0044 844 412 4653") == "448444124653"


def test_meta_email_trimmed_lowercased() -> None:
    assert h.normalize_meta_email("  Mary@Example.COM \n") == "mary@example.com"
    expected = "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79"
    assert h.meta_email("mary@example.com") == expected == sha("mary@example.com")


def test_meta_extern_id_is_normalized_like_the_official_sdk_but_not_hashed() -> None:
    # facebook-python-business-sdk CustomAudienceMixin.format_params: every multi-key value
    # is key.strip(" \t\r\n\0\x0B.").lower(); EXTERN_ID is then sent unhashed.
    assert h.meta_extern_id("  CUST-00042 ") == "cust-00042"
    assert h.meta_extern_id("\tCRM-000123.\n") == "crm-000123"
    assert h.meta_extern_id(" . ") is None


def test_meta_email_strips_what_the_official_sdk_strips() -> None:
    assert h.normalize_meta_email(" Ann@Example.com.\x0b") == "ann@example.com"


def test_tiktok_published_email_hash() -> None:
    # TikTok's "supported IDs and formats" page: janedoe@gmail.com -> d611…6c69.
    expected = "d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69"
    assert h.tiktok_email("JaneDoe@Gmail.com ") == expected


def test_tiktok_email_drops_plus_tag() -> None:
    # "Remove '+' and any characters following the '+' symbol until '@'."
    assert h.normalize_tiktok_email("Jane.Doe+ads@Gmail.com") == "jane.doe@gmail.com"
    assert h.normalize_tiktok_email("first name@x.com") == "firstname@x.com"


def test_tiktok_phone_examples_in_e164() -> None:
    # TikTok: (657)777-0000 in the US and 374-93-828222 (Armenia), with country code.
    assert h.normalize_tiktok_phone("+1 (657) 777-0000") == "+16577770000"
    assert h.normalize_tiktok_phone("+374 93 828222") == "+37493828222"
    assert h.tiktok_phone("+16577770000") == sha("+16577770000")


def test_google_examples() -> None:
    # Google Ads UserIdentifier: trim + lower-case emails, phones in E.164 e.g. +16502531234.
    assert h.normalize_google_phone("+1 650-253-1234") == "+16502531234"
    assert h.google_phone("+16502531234") == sha("+16502531234")
    assert h.google_email(" John.Doe@Gmail.com") == sha("john.doe@gmail.com")  # dots kept


@pytest.mark.parametrize(
    "fn",
    [h.meta_email, h.meta_phone, h.google_email, h.google_phone, h.tiktok_email, h.tiktok_phone],
)
def test_nothing_to_hash_gives_none(fn: object) -> None:
    assert callable(fn)
    assert fn("") is None
    assert fn("   ") is None


def test_is_sha256_hex() -> None:
    assert h.is_sha256_hex(sha("x"))
    assert not h.is_sha256_hex(sha("x").upper())
    assert not h.is_sha256_hex("abc")


# -- properties ------------------------------------------------------------------------------

local = st.from_regex(r"[A-Za-z0-9._]{1,20}", fullmatch=True)
domain = st.from_regex(r"[A-Za-z0-9]{1,12}\.[A-Za-z]{2,6}", fullmatch=True)
emails = st.builds(lambda a, b: f"{a}@{b}", local, domain)
phones = st.builds(lambda cc, n: f"+{cc}{n}", st.integers(1, 999), st.integers(10**6, 10**11))
space = st.sampled_from(["", " ", "\t", "  \n"])

NORMALIZERS = [
    h.normalize_meta_email,
    h.normalize_google_email,
    h.normalize_tiktok_email,
    h.normalize_meta_phone,
    h.normalize_google_phone,
    h.normalize_tiktok_phone,
]


@given(st.text(max_size=40))
def test_normalizers_are_idempotent(raw: str) -> None:
    for normalize in NORMALIZERS:
        once = normalize(raw)
        assert once is None or normalize(once) == once


@given(emails, space, space)
def test_email_hashes_ignore_case_and_surrounding_whitespace(email: str, a: str, b: str) -> None:
    for fn in (h.meta_email, h.google_email, h.tiktok_email):
        assert fn(f"{a}{email.upper()}{b}") == fn(email.lower())
        digest = fn(email)
        assert digest is not None and h.is_sha256_hex(digest)


@given(phones)
def test_phone_hashes_ignore_formatting(phone: str) -> None:
    digits = phone[1:]
    spaced = f"+{digits[:3]} ({digits[3:6]}) {digits[6:]}-"
    for fn in (h.meta_phone, h.google_phone, h.tiktok_phone):
        assert fn(spaced) == fn(phone)
    assert h.normalize_meta_phone(phone) == digits
    assert h.normalize_google_phone(phone) == h.normalize_tiktok_phone(phone) == phone
