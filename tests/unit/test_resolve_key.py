"""``views.resolve_key`` on keys that are digits to ``str.isdigit`` but not to ``int``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tactful.readmodels.views import resolve_key
from tactful.store.sqlite import open_store
from tactful.testing import new_store_url


@pytest.mark.parametrize("key", ["³", "٣", "①", "1²"])
def test_a_unicode_digit_key_finds_nobody_instead_of_failing(tmp_path: Path, key: str) -> None:
    # Found by the schemathesis fuzz (GET /api/people/%C2%B3 answered 500): "³".isdigit()
    # is true, int("³") raises.
    store = open_store(new_store_url(tmp_path))
    try:
        with store.reader() as reader:
            assert resolve_key(reader, key, "US") == []
    finally:
        store.close()
