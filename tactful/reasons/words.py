"""A ticket's words → its learned reason (used by the batch, training and ``explain``).

The model reads the subject's words and the requester's own texts. It is asked only when no
``[[reasons]]`` rule matched; a ticket with a text in a language Tactful does not read is
left to the rules. A reason the model is less sure of than the threshold, or one no longer
configured, leaves the ticket ``other``.
"""

from __future__ import annotations

from tactful.core.reasons import OTHER_REASON, ReasonClassifier
from tactful.core.state import TicketRecord, with_reason
from tactful.reasons.model import ReasonModel
from tactful.reasons.text import SUPPORTED, terms_of

RULE_SOURCES = frozenset({"tag", "field", "keyword"})


def model_terms(record: TicketRecord) -> tuple[str, ...]:
    """The words the model reads for this ticket (empty: the model is not asked)."""
    version = record.version
    if version is None:
        return ()
    parts = record.customer_parts()
    if any(p[5] and p[5] not in SUPPORTED for p in parts):
        return ()
    terms = set(terms_of(version.subject)) if version.subject else set()
    for part in parts:
        terms.update(part[3])
    return tuple(sorted(terms))


def learned(
    record: TicketRecord,
    rules: ReasonClassifier,
    model: ReasonModel | None,
    threshold: float,
) -> TicketRecord:
    """The record with the model's reason where the rules found none (see the module)."""
    if record.version is None or record.source in RULE_SOURCES:
        return record
    found = None
    if model is not None:
        terms = model_terms(record)
        found = model.predict(terms) if terms else None
    if found is None or found[1] < threshold or found[0] not in rules.reasons:
        return with_reason(record, OTHER_REASON, False, "", None)
    reason, confidence = found
    return with_reason(record, reason, rules.risk_of(reason), "model", confidence)
