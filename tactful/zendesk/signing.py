"""Zendesk webhook signatures.

Zendesk signs every webhook request: ``X-Zendesk-Webhook-Signature`` is
``base64(HMAC-SHA256(key=signing_secret, msg=timestamp + raw_body))`` where ``timestamp`` is
the value of ``X-Zendesk-Webhook-Signature-Timestamp`` (ISO 8601, e.g.
``2026-11-22T10:32:05Z``). Verification compares in constant time and rejects timestamps
more than ``tolerance`` away from now (replays).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
INVOCATION_HEADER = "X-Zendesk-Webhook-Invocation-Id"
DEFAULT_TOLERANCE = timedelta(minutes=5)


class SignatureError(ValueError):
    """The request is not signed by Zendesk with our secret (or is too old)."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def parse_timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        raise SignatureError("signature timestamp has no UTC offset")
    return value


def verify(
    secret: str,
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> None:
    """Raise ``SignatureError`` unless the signature is valid and fresh."""
    if not signature or not timestamp:
        raise SignatureError("missing signature headers")
    try:
        when = parse_timestamp(timestamp)
    except ValueError as exc:
        raise SignatureError(f"bad signature timestamp: {exc}") from None
    if abs(now - when) > tolerance:
        raise SignatureError("stale signature timestamp")
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise SignatureError("signature does not match")
