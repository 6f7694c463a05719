"""The conformance suite every destination passes against its fake vendor (Singer SDK style).

Shipped in the package, so that whoever writes a destination runs the same suite. A
destination's test module does::

    from tactful.testing.conformance import Conformance, conformance_tests

    class TestMeta(Conformance):
        def make(self, base_url: str) -> Destination: ...      # the destination under test
        def make_fake(self) -> FakeVendor: ...                  # its fake vendor
        def items(self, n: int) -> list[Item]: ...              # n valid items it consumes
        # optional: rejected_item() and ordered(), for the two checks that need them

    conformance_tests(TestMeta)   # (pytest collects the inherited test_* methods)

Checks: batching within the vendor limit, 2xx → ok, 429 (with Retry-After) and 5xx →
retry, other 4xx → reject, idempotency (sending the same items twice leaves the vendor as
once); where the vendor reports per-item errors, a rejected item does not sink the others
(``rejected_item``); where a later item about a person overrides an earlier one, per-person
order (``ordered``: the vendor ends as if only the last had been sent). A vendor fake is
easiest built on ``tactful.testing.fakes.base.FakeBase`` (the request log and
``fail_next``).

A destination without HTTP (the local warehouse) sets ``http = False`` and overrides
``served()`` to yield the store it writes and the destination; the checks of HTTP statuses
do not apply to it, the others do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

import pytest

from tactful.destinations.base import Destination, Item
from tactful.testing.fakes.base import RecordedRequest
from tactful.testing.sim.server import run_in_thread

F = TypeVar("F", bound="FakeVendor")
D = TypeVar("D", bound=Destination)


@contextmanager
def serving(fake: F, build: Callable[..., D]) -> Iterator[tuple[F, Callable[..., D]]]:
    """``fake`` served on a loopback port, and ``make(**options)``: ``build(base_url,
    **options)``, a destination talking to it. Every destination made is closed, and the
    fake stopped, at the end (a test's vendor fixture)."""
    base_url, stop = run_in_thread(fake.app)
    made: list[D] = []

    def make(**options: Any) -> D:
        made.append(build(base_url, **options))
        return made[-1]

    try:
        yield fake, make
    finally:
        for dest in made:
            dest.close()
        stop()


class FakeVendor(Protocol):
    """What a fake vendor server offers the suite."""

    app: Any  # ASGI app
    requests: list[RecordedRequest]

    def fail_next(self, n: int, status: int, retry_after: int | None = None) -> None:
        """The next ``n`` data requests answer ``status`` (with ``Retry-After``)."""
        ...

    def snapshot(self) -> Any:
        """The vendor's stored state (comparable with ==), for idempotency checks."""
        ...

    def max_items_per_request(self) -> int:
        """The documented request limit the fake enforces (413/400 beyond it)."""
        ...


class Conformance:
    """Base class: subclasses implement ``make``, ``make_fake`` and ``items`` (or, without
    HTTP, ``served`` and ``items``)."""

    http = True  # False: the destination writes somewhere local; no statuses to answer

    def make(self, base_url: str) -> Destination:
        raise NotImplementedError

    def make_fake(self) -> FakeVendor:
        raise NotImplementedError

    def items(self, n: int) -> list[Item]:
        raise NotImplementedError

    def rejected_item(self) -> Item | None:
        """An item the vendor refuses on its own while accepting the rest of the request
        (per-item errors); None when the vendor answers a request as a whole."""
        return None

    def ordered(self) -> list[Item] | None:
        """Items about one person, in order, the last of which decides what the vendor
        holds (an add then a removal; two profile updates); None when items only add up."""
        return None

    @contextmanager
    def served(self) -> Iterator[tuple[FakeVendor, Destination]]:
        """A fresh fake vendor on a loopback port and the destination talking to it."""
        with serving(self.make_fake(), self.make) as (fake, make):
            yield fake, make()

    @pytest.fixture
    def vendor(self) -> Iterator[tuple[FakeVendor, Destination]]:
        with self.served() as served:
            yield served

    # -- the suite ---------------------------------------------------------------------------

    def test_batches_stay_within_the_vendor_limit(self, vendor: Any) -> None:
        fake, dest = vendor
        n = min(dest.capabilities.max_batch, 3 * max(1, fake.max_items_per_request()) + 1)
        outcomes = dest.send(self.items(n))
        assert [o.kind for o in outcomes] == ["ok"] * n
        assert dest.capabilities.max_batch >= 1
        assert all(r.status < 400 for r in fake.requests)

    def test_ok_on_2xx(self, vendor: Any) -> None:
        fake, dest = vendor
        outcomes = dest.send(self.items(2))
        assert [o.kind for o in outcomes] == ["ok", "ok"]
        if self.http:
            assert fake.requests, "nothing reached the vendor"
        else:
            with self.served() as (empty, _):
                assert fake.snapshot() != empty.snapshot(), "nothing was written"

    def _needs_http(self) -> None:
        if not self.http:
            pytest.skip("no HTTP: no status to answer")

    def test_429_is_retry_with_retry_after(self, vendor: Any) -> None:
        self._needs_http()
        fake, dest = vendor
        fake.fail_next(1, 429, retry_after=7)
        outcomes = dest.send(self.items(1))
        assert outcomes[0].kind == "retry"
        assert outcomes[0].retry_after == 7

    def test_5xx_is_retry(self, vendor: Any) -> None:
        self._needs_http()
        fake, dest = vendor
        fake.fail_next(1, 503)
        assert dest.send(self.items(1))[0].kind == "retry"

    def test_other_4xx_is_reject_not_retry(self, vendor: Any) -> None:
        self._needs_http()
        fake, dest = vendor
        fake.fail_next(1, 400)
        outcome = dest.send(self.items(1))[0]
        assert outcome.kind == "reject"
        assert outcome.error

    def test_idempotent_resend(self, vendor: Any) -> None:
        fake, dest = vendor
        items = self.items(3)
        assert [o.kind for o in dest.send(items)] == ["ok"] * 3
        once = fake.snapshot()
        assert [o.kind for o in dest.send(items)] == ["ok"] * 3
        assert fake.snapshot() == once

    def test_a_rejected_item_does_not_sink_the_others(self, vendor: Any) -> None:
        bad = self.rejected_item()
        if bad is None:
            pytest.skip("the vendor answers a request as a whole (no per-item errors)")
        fake, dest = vendor
        first, last = self.items(2)
        outcomes = dest.send([first, bad, last])
        assert [o.kind for o in outcomes] == ["ok", "reject", "ok"]
        assert outcomes[1].error
        with self.served() as (fresh, other):  # the vendor holds the others, as if alone
            assert [o.kind for o in other.send([first, last])] == ["ok", "ok"]
            assert fake.snapshot() == fresh.snapshot()

    def test_per_person_order(self, vendor: Any) -> None:
        ordered = self.ordered()
        if ordered is None:
            pytest.skip("no later item overrides an earlier one at this vendor")
        assert len({i.person_id for i in ordered}) == 1 and len(ordered) > 1
        fake, dest = vendor
        assert [o.kind for o in dest.send(ordered)] == ["ok"] * len(ordered)
        with self.served() as (fresh, other):
            assert [o.kind for o in other.send(ordered[-1:])] == ["ok"]
            assert fake.snapshot() == fresh.snapshot()


def conformance_tests(cls: type[Conformance]) -> type[Conformance]:
    """Check at import that a destination's suite is complete (pytest runs the inherited
    ``test_*`` methods): it must subclass ``Conformance`` and provide its hooks."""
    if not issubclass(cls, Conformance):
        raise TypeError(f"{cls.__name__} must subclass Conformance")
    hooks = ("make", "make_fake", "items") if cls.http else ("served", "items")
    missing = [hook for hook in hooks if getattr(cls, hook) is getattr(Conformance, hook)]
    if missing:
        raise TypeError(f"{cls.__name__} does not implement {', '.join(missing)}")
    return cls
