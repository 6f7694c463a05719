"""Per-platform normalization and SHA-256 hashing of identifiers for ad audiences (pure).

Identifiers reach destinations already normalized (``tactful.core.identity``: emails trimmed
and lower-cased, phones in E.164 such as ``+15559876543``). Each ad platform then wants its
own canonical text before hashing; the hashes only match the platform's if that text is
byte-for-byte what the platform hashes on its side. Every hash is SHA-256, lower-case hex.

- Meta (Customer File Custom Audiences, "Hashing and Normalizing Data"; the official
  ``facebook_business`` SDK's ``CustomAudienceMixin.normalize_key``): EMAIL trimmed and
  lower-cased; PHONE digits only (symbols, letters and the ``+`` removed), leading zeros
  removed, country code included; EXTERN_ID is sent as is (the SDK never hashes it).
- Google Ads Customer Match (``UserIdentifier``): email trimmed and lower-cased; phone in
  E.164 *with* the ``+``. The Gmail dot-removal rule is documented for enhanced conversions,
  not for Customer Match, so it is not applied.
- TikTok (Ads Manager "List of supported IDs and formats for a customer file"): email
  lower-cased, spaces removed, and ``+`` plus everything after it up to ``@`` removed;
  phone in E.164 with the ``+`` (the format TikTok's own audience connectors document).

Normalizers return ``None`` for values that leave nothing to match on; hashers then do too.
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "google_email",
    "google_phone",
    "is_sha256_hex",
    "meta_email",
    "meta_extern_id",
    "meta_phone",
    "normalize_google_email",
    "normalize_google_phone",
    "normalize_meta_email",
    "normalize_meta_phone",
    "normalize_tiktok_email",
    "normalize_tiktok_phone",
    "sha256_hex",
    "tiktok_email",
    "tiktok_phone",
]

_NON_DIGITS = re.compile(r"[^0-9]")
_WHITESPACE = re.compile(r"\s+")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def sha256_hex(text: str) -> str:
    """SHA-256 of the UTF-8 bytes of ``text``, as 64 lower-case hex characters."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_sha256_hex(value: str) -> bool:
    """Whether ``value`` looks like what ``sha256_hex`` returns (64 lower-case hex)."""
    return _SHA256_HEX.fullmatch(value) is not None


def _hashed(value: str | None) -> str | None:
    return sha256_hex(value) if value else None


def _digits(raw: str) -> str:
    """Digits only, without leading zeros (an international ``00`` prefix goes too)."""
    return _NON_DIGITS.sub("", raw).lstrip("0")


# -- Meta ---------------------------------------------------------------------------------

# What Meta's official SDK trims from every multi-key value before normalizing it
# (facebook-python-business-sdk, ``CustomAudienceMixin.format_params``).
_META_TRIM = " \t\r\n\0\x0b."


def normalize_meta_email(raw: str) -> str | None:
    """Trim whitespace (and stray dots) at both ends and lower-case."""
    return raw.strip(_META_TRIM).lower() or None


def normalize_meta_phone(raw: str) -> str | None:
    """Digits only, no ``+``, no leading zeros: ``+1 (555) 987-6543`` -> ``15559876543``."""
    return _digits(raw) or None


def meta_email(raw: str) -> str | None:
    return _hashed(normalize_meta_email(raw))


def meta_phone(raw: str) -> str | None:
    return _hashed(normalize_meta_phone(raw))


def meta_extern_id(raw: str) -> str | None:
    """EXTERN_ID is not hashed, but normalized as the official SDK does: trimmed and
    lower-cased (``" CUST-00042 "`` -> ``"cust-00042"``), so it matches the brand's own
    uploads made with Meta's SDK."""
    return raw.strip(_META_TRIM).lower() or None


# -- Google -------------------------------------------------------------------------------


def normalize_google_email(raw: str) -> str | None:
    """Trim leading and trailing whitespace and lower-case."""
    return raw.strip().lower() or None


def normalize_google_phone(raw: str) -> str | None:
    """E.164 with the ``+``: ``+1 (555) 987-6543`` -> ``+15559876543``."""
    digits = _digits(raw)
    return f"+{digits}" if digits else None


def google_email(raw: str) -> str | None:
    return _hashed(normalize_google_email(raw))


def google_phone(raw: str) -> str | None:
    return _hashed(normalize_google_phone(raw))


def normalize_datamanager_email(raw: str) -> str | None:
    """The Data Manager API's rule: lower-case, no whitespace anywhere; for ``gmail.com`` and
    ``googlemail.com`` no dots and no ``+tag`` in the local part
    (https://developers.google.com/data-manager/api/devguides/concepts/formatting):
    ``Cloudy.SF+shop@Gmail.com`` -> ``cloudysf@gmail.com``."""
    value = _WHITESPACE.sub("", raw).lower()
    local, at, domain = value.rpartition("@")
    if at and domain in ("gmail.com", "googlemail.com"):
        value = f"{local.split('+', 1)[0].replace('.', '')}@{domain}"
    return value or None


def datamanager_email(raw: str) -> str | None:
    return _hashed(normalize_datamanager_email(raw))


# -- TikTok -------------------------------------------------------------------------------


def normalize_tiktok_email(raw: str) -> str | None:
    """Lower-case, no spaces, no ``+tag`` in the local part: ``J+ads@X.com`` -> ``j@x.com``."""
    value = _WHITESPACE.sub("", raw).lower()
    local, at, domain = value.rpartition("@")
    if at and "+" in local:
        value = f"{local.split('+', 1)[0]}@{domain}"
    return value or None


def normalize_tiktok_phone(raw: str) -> str | None:
    """E.164 with the ``+``: ``+1 (657) 777-0000`` -> ``+16577770000``."""
    digits = _digits(raw)
    return f"+{digits}" if digits else None


def tiktok_email(raw: str) -> str | None:
    return _hashed(normalize_tiktok_email(raw))


def tiktok_phone(raw: str) -> str | None:
    return _hashed(normalize_tiktok_phone(raw))
