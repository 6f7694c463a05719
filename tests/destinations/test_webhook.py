"""Standard Webhooks signing and the webhook destination against the fake receiver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from tactful.config.models import DestinationSettings
from tactful.destinations import registry, standard_webhooks
from tactful.destinations.base import Identifiers, Item
from tactful.destinations.webhook import GONE_ERROR, WebhookDestination, payload, webhook_id
from tactful.testing.conformance import Conformance, conformance_tests
from tactful.testing.fakes.webhook import FakeWebhookReceiver
from tests.destinations.conftest import Served

# The published test vector (standard-webhooks libraries/python/tests/test_webhooks.py).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_PAYLOAD = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def item(i: int, person: str | None = None, name: str = "support_state_changed") -> Item:
    return Item(
        key=f"k{i}",
        kind="event",
        person_id=person or f"p_{i:04d}",
        at=AT,
        identifiers=Identifiers(emails=(f"p{i}@example.com",)),
        name=name,
        properties={
            "old_state": {"has_open_ticket": False},
            "new_state": {"has_open_ticket": True},
            "changed": ["has_open_ticket"],
        },
    )


# -- the pure module -----------------------------------------------------------------------


def test_sign_matches_the_published_vector() -> None:
    assert standard_webhooks.sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_PAYLOAD) == (
        SPEC_SIGNATURE
    )
    bare = SPEC_SECRET.removeprefix("whsec_")
    assert standard_webhooks.sign(bare, SPEC_ID, SPEC_TIMESTAMP, SPEC_PAYLOAD) == SPEC_SIGNATURE


def test_sign_is_hmac_of_id_timestamp_payload() -> None:
    key = base64.b64decode(SPEC_SECRET.removeprefix("whsec_"))
    content = f"{SPEC_ID}.{SPEC_TIMESTAMP}.".encode() + SPEC_PAYLOAD
    mac = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    assert standard_webhooks.sign(key, SPEC_ID, SPEC_TIMESTAMP, SPEC_PAYLOAD) == "v1," + mac


def spec_headers(**overrides: str) -> dict[str, str]:
    headers = {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }
    return headers | overrides


def test_verify_accepts_the_vector_and_rotation_lists() -> None:
    now = SPEC_TIMESTAMP + 10
    assert standard_webhooks.verify(SPEC_SECRET, SPEC_PAYLOAD, spec_headers(), now=now) == SPEC_ID
    listed = f"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,xyz {SPEC_SIGNATURE}"
    upper = {k.upper(): v for k, v in spec_headers(**{"webhook-signature": listed}).items()}
    assert standard_webhooks.verify(SPEC_SECRET, SPEC_PAYLOAD, upper, now=now) == SPEC_ID


@pytest.mark.parametrize(
    ("headers", "now"),
    [
        (
            spec_headers(
                **{"webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="}
            ),
            0,
        ),
        (spec_headers(**{"webhook-timestamp": "hello"}), 0),
        ({k: v for k, v in spec_headers().items() if k != "webhook-id"}, 0),
        (spec_headers(**{"webhook-signature": "v1a,abc garbage"}), 0),
        (spec_headers(), 5 * 60 + 1),  # too old
        (spec_headers(), -(5 * 60 + 1)),  # too new
    ],
)
def test_verify_rejects(headers: dict[str, str], now: int) -> None:
    with pytest.raises(standard_webhooks.VerificationError):
        standard_webhooks.verify(SPEC_SECRET, SPEC_PAYLOAD, headers, now=SPEC_TIMESTAMP + now)


def test_verify_rejects_a_changed_body() -> None:
    with pytest.raises(standard_webhooks.VerificationError):
        standard_webhooks.verify(
            SPEC_SECRET, b'{"test": 2432232315}', spec_headers(), now=SPEC_TIMESTAMP
        )


def test_headers_sign_with_every_secret_and_ids_must_not_hold_dots() -> None:
    other = standard_webhooks.generate_secret()
    headers = standard_webhooks.headers([SPEC_SECRET, other], "msg_1", 1700000000, b"{}")
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (SPEC_SECRET, other):
        standard_webhooks.verify(secret, b"{}", headers, now=1700000000)
    with pytest.raises(ValueError, match="'\\.'"):
        standard_webhooks.sign(SPEC_SECRET, "msg.1", 1, b"{}")


@pytest.mark.parametrize("secret", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!", "whsec_YWJj"])
def test_sending_secrets_follow_the_spec(secret: str) -> None:
    with pytest.raises(ValueError):
        standard_webhooks.check_sending_secret(secret)


# -- the destination -----------------------------------------------------------------------


class TestWebhookConformance(Conformance):
    def make(self, base_url: str) -> WebhookDestination:
        return WebhookDestination(name="hooks", url=base_url + "/hooks", secret=SPEC_SECRET)

    def make_fake(self) -> Any:
        return FakeWebhookReceiver(SPEC_SECRET)

    def items(self, n: int) -> list[Item]:
        return [item(i) for i in range(n)]


conformance_tests(TestWebhookConformance)


@pytest.fixture
def served(serve: Served) -> Callable[..., tuple[FakeWebhookReceiver, WebhookDestination]]:
    def start(**kwargs: Any) -> tuple[FakeWebhookReceiver, WebhookDestination]:
        fake = FakeWebhookReceiver(SPEC_SECRET)
        url = serve(fake) + "/hooks"
        dest = WebhookDestination(name="hooks", url=url, secret=SPEC_SECRET, **kwargs)
        return fake, serve.closing(dest)

    return start


def test_body_is_the_spec_envelope_with_consented_identifiers(served: Any) -> None:
    fake, dest = served()
    segment_change = Item(
        "k9",
        "event",
        "p_0009",
        AT,
        Identifiers(),
        "segment_membership_changed",
        segment="vip",
        properties={"entered": True},
    )
    assert [o.kind for o in dest.send([item(1), segment_change])] == ["ok", "ok"]
    first, second = (d.payload for d in fake.deliveries)
    assert first == {
        "type": "support_state_changed",
        "timestamp": "2026-03-01T12:00:00.000Z",
        "data": {
            "person_id": "p_0001",
            "identifiers": {"email": ["p1@example.com"]},  # the API's names
            "old_state": {"has_open_ticket": False},
            "new_state": {"has_open_ticket": True},
            "changed": ["has_open_ticket"],
            "occurred_at": "2026-03-01T12:00:00.000Z",
        },
    }
    assert second["data"] == {
        "person_id": "p_0009",
        "identifiers": {},
        "entered": True,
        "occurred_at": "2026-03-01T12:00:00.000Z",
        "segment": "vip",
    }
    assert fake.requests[0].headers["content-type"] == "application/json"
    assert orjson.loads(fake.requests[0].body) == payload(item(1))


def test_properties_cannot_add_identifiers_or_change_the_person() -> None:
    sneaky = Item(
        "k",
        "event",
        "p_1",
        AT,
        Identifiers(),
        "support_state_changed",
        properties={"identifiers": {"email": ["x@example.com"]}, "person_id": "p_2", "a": 1},
    )
    assert payload(sneaky)["data"] == {
        "person_id": "p_1",
        "identifiers": {},
        "a": 1,
        "occurred_at": "2026-03-01T12:00:00.000Z",
    }


def test_webhook_id_is_stable_across_retries_and_the_timestamp_is_the_attempt(
    served: Any,
) -> None:
    start = time.time() - 90
    clock = iter([start, start + 60])
    fake, dest = served(clock=lambda: next(clock))
    fake.fail_next(1, 503)
    assert dest.send([item(1)])[0].kind == "retry"
    assert dest.send([item(1)])[0].kind == "ok"
    ids = [r.headers["webhook-id"] for r in fake.requests]
    stamps = [int(r.headers["webhook-timestamp"]) for r in fake.requests]
    assert ids == [webhook_id("k1")] * 2 and "." not in ids[0]
    assert stamps[1] - stamps[0] == 60
    assert fake.requests[0].body == fake.requests[1].body


def test_410_gone_rejects_and_disables_the_destination(served: Any) -> None:
    fake, dest = served()
    fake.gone = True
    first = dest.send([item(1)])
    assert first[0].kind == "reject" and first[0].error == GONE_ERROR
    assert dest.disabled
    later = dest.send([item(2), item(3)])
    assert [o.error for o in later] == [GONE_ERROR, GONE_ERROR]
    assert len(fake.requests) == 1


def test_after_a_transient_failure_the_rest_of_the_batch_waits(served: Any) -> None:
    fake, dest = served()
    fake.fail_next(1, 429, retry_after=3)
    outcomes = dest.send([item(1), item(2, person="p_0001"), item(3)])
    assert [o.kind for o in outcomes] == ["retry"] * 3
    assert [o.retry_after for o in outcomes] == [3, 3, 3]
    assert len(fake.requests) == 1


def test_a_bad_signature_is_refused_by_the_receiver(served: Any) -> None:
    fake, dest = served()
    secret = standard_webhooks.generate_secret()
    wrong = WebhookDestination(name="x", url=dest.url, secret=secret)
    try:
        outcome = wrong.send([item(1)])[0]
    finally:
        wrong.close()
    assert outcome.kind == "reject" and outcome.status == 401
    assert fake.unverified == 1 and fake.snapshot() == {}


def test_redirects_are_not_followed(served: Any) -> None:
    fake, dest = served()
    fake.fail_next(1, 302)
    outcome = dest.send([item(1)])[0]
    assert outcome.kind == "reject" and "redirect" in outcome.error


def test_registry_creates_it_from_settings() -> None:
    settings = DestinationSettings.model_validate(
        {"name": "hooks", "type": "webhook", "url": "https://example.com/h", "secret": SPEC_SECRET}
    )
    dest = registry.create(settings)
    try:
        assert isinstance(dest, WebhookDestination)
        assert dest.capabilities.kinds == frozenset({"event"}) and dest.purpose == "analytics"
    finally:
        dest.close()
    bad = settings.model_copy(update={"settings": {"url": "https://x", "secret": "whsec_YWJj"}})
    with pytest.raises(ValueError, match="24"):
        registry.create(bad)
