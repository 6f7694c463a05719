"""HTTP Basic authentication (RFC 7617): the one place its header is built.

Zendesk API tokens (``{email}/token`` and the token), Customer.io's Track API, Segment's
write key, Mixpanel's service account and a webhook's ``basic_auth`` all send it this way.
"""

from __future__ import annotations

import base64


def basic_auth_header(user: str, password: str) -> str:
    """The ``Authorization`` value for ``user`` and ``password`` (UTF-8, as httpx does)."""
    if ":" in user:
        raise ValueError("a Basic auth user name cannot contain ':'")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"
