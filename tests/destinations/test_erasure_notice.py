"""Issue 22: the ``person_erased`` notice an analytics tool receives names no one.

Segment, Amplitude and Mixpanel cannot delete a person through their ingestion APIs, so an
erasure reaches them as a ``person_erased`` event. It must carry neither Tactful's ``p_…``
id nor any identifier (the person is being forgotten), and the vendor must still accept it:
Segment with an ``anonymousId``, Amplitude with a ``device_id`` (both the event's own dedupe
id, unrelated to the person), Mixpanel with the empty ``distinct_id`` it documents for
events that belong to no user."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from tactful.config.models import DestinationSettings
from tactful.delivery.store import DeliveryRow
from tactful.delivery.worker import dest_kinds, erase_item
from tactful.destinations import registry
from tactful.testing.fakes.analytics import FakeAmplitude, FakeMixpanel, FakeSegment

PERSON = "p_0f3a9c77e2"
IDENTIFIERS = {
    "email": ["ann@example.com"],
    "phone": ["+14155550100"],
    "external_id": ["CUST-00042"],
    "zendesk_user_id": ["9001"],
}
SECRETS = (PERSON, "ann@example.com", "+14155550100", "CUST-00042", "cust-00042", "9001")

VENDORS: dict[str, tuple[Callable[[], Any], dict[str, str]]] = {
    "segment": (FakeSegment, {"write_key": "segment-write-key"}),
    "amplitude": (FakeAmplitude, {"api_key": "amplitude-api-key"}),
    "mixpanel": (
        FakeMixpanel,
        {
            "project_id": "12345",
            "service_account_user": "sa.user",
            "service_account_secret": "sa-secret",
        },
    ),
}


def erase_row(destination: str) -> DeliveryRow:
    payload = {"person_id": PERSON, "identifiers": IDENTIFIERS}
    at = 1_796_000_000_000_000
    return DeliveryRow(
        7, destination, PERSON, "erase", "person_erased", None, "41:erase:person_erased", at,
        payload, "pending", 0, at, at, "",
    )  # fmt: skip


@pytest.mark.parametrize("type_name", sorted(VENDORS))
def test_the_erasure_notice_names_no_one_and_the_vendor_accepts_it(
    type_name: str, serve: Callable[[Any], str]
) -> None:
    make_fake, keys = VENDORS[type_name]
    fake = make_fake()
    config = DestinationSettings.model_validate(
        {"name": "tool", "type": type_name, "base_url": serve(fake), **keys}
    )
    dest = registry.create(config)
    item = erase_item(erase_row("tool"), config, dest_kinds(dest), ours=False)
    assert item is not None and item.kind == "event" and item.name == "person_erased"

    try:
        outcomes = dest.send([item])
    finally:
        dest.close()

    assert [o.kind for o in outcomes] == ["ok"], outcomes
    [stored] = fake.snapshot().values()
    body = orjson.dumps(stored).decode()
    assert "person_erased" in body
    assert not [s for s in SECRETS if s in body], body
    assert "p_" not in body.replace("person_erased", "")


def test_the_brands_own_webhook_still_gets_the_person_id_it_knows_people_by() -> None:
    """The webhook's bodies name people by ``person_id`` (its schema requires it), so the
    brand's receiver needs it to forget them; it still gets no identifier."""
    config = DestinationSettings.model_validate(
        {"name": "hook", "type": "webhook", "url": "https://hooks.example.com/t"}
    )
    item = erase_item(erase_row("hook"), config, frozenset({"event"}), ours=False)
    assert item is not None
    assert item.person_id == PERSON
    assert not any(getattr(item.identifiers, f) for f in item.identifiers.__slots__)
