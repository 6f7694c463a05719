"""What ``tactful reasons`` does with a store: train and activate, explain a ticket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from tactful.core.state import TicketRecord
from tactful.reasons import saved
from tactful.reasons.train import TrainReport, examples_from, train
from tactful.reasons.words import RULE_SOURCES, model_terms
from tactful.store.base import Reader, Store

PAGE = 2000


class ModelSettings(Protocol):
    threshold: float
    quality_floor: float
    held_out: float
    min_examples: int


def all_tickets(reader: Reader) -> Iterator[TicketRecord]:
    """Every ticket of every person, a page of persons at a time."""
    after: str | None = None
    while True:
        ids = reader.person_ids(after, PAGE)
        if not ids:
            return
        for records in reader.tickets_of(ids).values():
            yield from records
        after = ids[-1]


def train_and_activate(store: Store, settings: ModelSettings) -> TrainReport:
    """Train on the store's labelled tickets; save and activate the model unless refused."""
    with store.reader() as reader:
        examples = examples_from(all_tickets(reader))
        version = saved.next_version(reader)
    report = train(
        examples,
        version=version,
        held_out=settings.held_out,
        min_examples=settings.min_examples,
        quality_floor=settings.quality_floor,
    )
    if report.model is not None:
        with store.transaction() as tx:
            saved.save(tx, report.model, activate=True)
        report.activated = True
    return report


def explain(reader: Reader, ticket_id: int, threshold: float) -> dict[str, Any] | None:
    """How the ticket's reason was found, and the words that decided (None: no ticket)."""
    found = reader.load_tickets([ticket_id]).get(ticket_id)
    if found is None:
        return None
    _, record = found
    model = saved.active(reader)
    feeling = record.sentiment()
    out: dict[str, Any] = {
        "ticket_id": ticket_id,
        "reason": record.reason,
        "reason_source": record.source or None,
        "reason_confidence": record.confidence,
        "sentiment": None if feeling is None else feeling[0],
        "model_version": None if model is None else model.version,
        "threshold": threshold,
        "prediction": None,
        "words": [],
    }
    if record.source in RULE_SOURCES:
        out["note"] = f"the reason came from a [[reasons]] {record.source}; the model was not asked"
        return out
    terms = model_terms(record)
    if model is None:
        out["note"] = "no active model (tactful reasons train)"
        return out
    if not terms:
        out["note"] = "no words the model reads (no text, or a language Tactful does not read)"
        return out
    prediction = model.predict(terms)
    if prediction is None:
        out["note"] = "none of the ticket's words is known to the model"
        return out
    reason, confidence = prediction
    out["prediction"] = {"reason": reason, "confidence": confidence}
    out["words"] = [{"word": w, "weight": weight} for w, weight in model.explain(terms, reason)]
    if confidence < threshold:
        out["note"] = (
            f"the model is less sure than the threshold {threshold}: the reason stays other"
        )
    return out
