"""Standard Webhooks signatures (symmetric ``v1``), pure functions.

Per the Standard Webhooks specification (github.com/standard-webhooks/standard-webhooks,
``spec/standard-webhooks.md``):

- headers ``webhook-id`` (stable across retries, the receiver's idempotency key),
  ``webhook-timestamp`` (integer unix seconds of the attempt) and ``webhook-signature``;
- the signed content is ``{msg_id}.{timestamp}.{payload}`` (the exact body bytes);
- the signature is ``v1,`` + base64(HMAC-SHA256(key, content)), where the key is the
  base64-decoded part of a ``whsec_…`` secret; the header is a space-delimited list of
  signatures (several during a secret rotation) and a receiver accepts any one that matches;
- receivers compare in constant time and reject timestamps outside a tolerance (5 minutes in
  the reference libraries) to prevent replays.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence

from tactful.clock import epoch_seconds

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24  # the spec: "Random. At least 24 bytes (192 bits, 512 maximum)"
MAX_SECRET_BYTES = 64
TOLERANCE_SECONDS = 5 * 60
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


class VerificationError(ValueError):
    """The request is not an authentic, fresh Standard Webhooks message."""


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_``-prefixed (or bare) base64 secret."""
    encoded = secret.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from e
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def check_sending_secret(secret: str) -> bytes:
    """``decode_secret`` plus the spec's producer rules: prefix and 24–64 random bytes."""
    if not secret.strip().startswith(SECRET_PREFIX):
        raise ValueError("the webhook secret must start with 'whsec_'")
    key = decode_secret(secret)
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"the webhook secret must decode to {MIN_SECRET_BYTES}–{MAX_SECRET_BYTES} bytes, "
            f"got {len(key)}"
        )
    return key


def generate_secret(nbytes: int = 32) -> str:
    """A new random ``whsec_`` secret."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode()


def _check_part(name: str, value: str) -> None:
    # The spec: the id and timestamp must not contain "." (the content's delimiter).
    if not value or "." in value or any(c.isspace() for c in value):
        raise ValueError(f"invalid {name} {value!r}: non-empty, no '.' and no spaces")


def sign(secret: str | bytes, msg_id: str, timestamp: int, payload: bytes) -> str:
    """One ``v1,<base64>`` signature of ``{msg_id}.{timestamp}.{payload}``."""
    _check_part("webhook id", msg_id)
    key = decode_secret(secret) if isinstance(secret, str) else secret
    content = f"{msg_id}.{int(timestamp)}.".encode() + payload
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(
    secrets_: str | Sequence[str], msg_id: str, timestamp: int, payload: bytes
) -> dict[str, str]:
    """The three headers; several secrets (rotation) give a space-delimited signature list."""
    keys = [secrets_] if isinstance(secrets_, str) else list(secrets_)
    if not keys:
        raise ValueError("at least one secret is needed")
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(int(timestamp)),
        SIGNATURE_HEADER: " ".join(sign(k, msg_id, timestamp, payload) for k in keys),
    }


def verify(
    secret: str | bytes,
    payload: bytes,
    request_headers: Mapping[str, str],
    *,
    now: float | None = None,
    tolerance: float = TOLERANCE_SECONDS,
) -> str:
    """Check the headers against ``payload``; return the ``webhook-id``.

    Raises ``VerificationError`` when a header is missing or malformed, the timestamp is
    outside ``tolerance`` seconds of ``now``, or no ``v1`` signature matches.
    """
    lower = {k.lower(): v for k, v in request_headers.items()}
    msg_id = lower.get(ID_HEADER, "")
    stamp = lower.get(TIMESTAMP_HEADER, "")
    signatures = lower.get(SIGNATURE_HEADER, "")
    if not (msg_id and stamp and signatures):
        raise VerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    if not stamp.isdigit():
        raise VerificationError("webhook-timestamp is not integer unix seconds")
    current = epoch_seconds() if now is None else now
    if abs(current - int(stamp)) > tolerance:
        raise VerificationError("webhook-timestamp is outside the tolerance")
    try:
        expected = base64.b64decode(sign(secret, msg_id, int(stamp), payload)[3:])
    except ValueError as e:
        raise VerificationError(str(e)) from e
    for entry in signatures.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, candidate):
            return msg_id
    raise VerificationError("no matching signature")
