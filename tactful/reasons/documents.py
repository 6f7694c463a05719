"""Raw documents without the customers' text, for the store (docs/reasons.md).

Tactful keeps each received document (a webhook body, an export page, an API response)
beside the events read from it. Once its events are read, the text in it is no longer
needed: ``without_text`` blanks every description and comment body (also inside a saved
webhook attempt's payload string) before the document is stored. A document kept to be read
later (a body waiting for its requester's consent or for a ticket fetch) is stored whole
until then, and stored again, without text, when it is read.
"""

from __future__ import annotations

from typing import Any

import orjson

TEXT_KEYS = frozenset({"description", "body", "html_body", "plain_body"})
_MARKERS = tuple(f'"{key}"'.encode() for key in TEXT_KEYS)
_NESTED = frozenset({"payload"})  # JSON inside a string (saved webhook invocation attempts)


def without_text(document: bytes) -> bytes:
    """``document`` with every text value of ``TEXT_KEYS`` blanked (unchanged when it has
    none, or is not JSON)."""
    if not any(marker in document for marker in _MARKERS):
        return document
    try:
        data = orjson.loads(document)
    except orjson.JSONDecodeError:
        return document
    cleaned, changed = _clean(data)
    return orjson.dumps(cleaned) if changed else document


def _clean(value: Any) -> tuple[Any, bool]:
    if isinstance(value, list):
        changed = False
        out = []
        for item in value:
            item, did = _clean(item)
            out.append(item)
            changed = changed or did
        return out, changed
    if not isinstance(value, dict):
        return value, False
    changed = False
    result: dict[str, Any] = {}
    for key, item in value.items():
        if key in TEXT_KEYS and isinstance(item, str) and item:
            result[key] = ""
            changed = True
        elif key in _NESTED and isinstance(item, str) and item.lstrip().startswith("{"):
            inner = item.encode()
            cleaned = without_text(inner)
            result[key] = cleaned.decode() if cleaned is not inner else item
            changed = changed or cleaned is not inner
        else:
            result[key], did = _clean(item)
            changed = changed or did
    return result, changed
