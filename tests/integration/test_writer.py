"""The group-commit writer: a submitter that went away must not break the writer thread."""

from __future__ import annotations

import pytest

from tactful.engine.engine import Incoming
from tactful.engine.writer import Writer
from tactful.testing import at, harness, ticket

pytestmark = pytest.mark.store


def test_cancelled_submission_is_still_committed_and_the_writer_survives() -> None:
    h = harness("")
    writer = Writer(h.engine)
    first = writer.submit([Incoming([ticket(1, at(0))], None, "test")])
    assert first.cancel()  # the submitter gave up before the writer started
    writer.start()
    second = writer.submit([Incoming([ticket(2, at(1), requester_id=2)], None, "test")])
    assert second.result(timeout=10).applied >= 1
    writer.stop()
    with h.engine.store.reader() as reader:
        assert reader.counts()["tickets"] == 2
