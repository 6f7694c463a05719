"""The support-state machine: ticket records and the per-person state derived from them.

Pure: no I/O, no clock. ``now`` never appears here; time-dependent decisions (windows,
cooldowns) live in ``tactful.core.rules`` and ``tactful.core.evaluate``.

Rules (product.md §3):

| fact                      | how it folds                                                       |
|---------------------------|--------------------------------------------------------------------|
| ticket version            | latest by (updated_at, key, content) wins; older never overwrites  |
| status observation        | every version and status event adds (at, status); a set, so any    |
|                           | order and any duplication give the same history                    |
| current ticket status     | status of the latest observation (ties: the latest version's)      |
| open                      | new / open / pending / hold                                        |
| resolution moment         | an observation of solved/closed whose predecessor was not resolved |
| merged ticket             | latest version tagged ``closed_by_merge`` or via channel ``merge``:|
|                           | counts nowhere, and its closing is no resolution                   |
| deleted ticket            | latest status ``deleted``: counts nowhere                          |
| ticket owner              | the requester of the latest version                                |
| risk                      | ``last_risk_at`` = max updated_at of versions whose reason is risky|
| brand                     | ``brand_id``: the latest *known* brand (a version without one keeps|
|                           | it) of the latest-created ticket; ``brand_ids``: the union         |
| ticket text               | a set of (at, key, author, terms, sentiment): any order, once each; |
|                           | only the requester's own words count (``customer_parts``)          |
| rating / health / consent | latest by (at, key) wins                                           |

Everything folds with max/union, so the state is independent of arrival order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import Field, dataclass, field, fields, replace
from datetime import datetime
from types import UnionType
from typing import Any, get_args, get_origin, get_type_hints

from tactful.core.events import (
    CONSENT_PURPOSES,
    OPEN_STATUSES,
    PRIORITIES,
    RESOLVED_STATUSES,
    RatingGiven,
    TicketStatusChanged,
    TicketText,
    TicketVersion,
)
from tactful.core.rules import FieldType

MERGE_TAG = "closed_by_merge"
MERGE_CHANNEL = "merge"
_PRIORITY_RANK = {name: rank for rank, name in enumerate(PRIORITIES)}

Observation = tuple[datetime, str]
BrandSeen = tuple[datetime, str, int]
# One ``TicketText`` as a ticket keeps it: (at, key, author id or None, terms, sentiment,
# language).
TextPart = tuple[datetime, str, int | None, tuple[str, ...], float | None, str]
REASON_SOURCES = ("tag", "field", "keyword", "model")
# A ticket whose customer's latest words score at or below this is a negative ticket (VADER's
# compound score: -0.05 is the usual edge of "negative"; -0.5 is clearly upset).
NEGATIVE_SENTIMENT = -0.5


@dataclass(frozen=True, slots=True)
class TicketRecord:
    """Everything known about one ticket, folded from all its versions and status events."""

    ticket_id: int
    version: TicketVersion | None  # latest version by (updated_at, key); None: status only
    reason: str
    risk: bool
    last_risk_at: datetime | None
    observations: frozenset[Observation]
    # The latest version that named a brand, as (updated_at, key, brand_id): trigger bodies
    # carry no brand, so the brand is the latest *known* one, whichever version wins.
    brand: BrandSeen | None = None
    # (status, last activity, last resolution), derived from the observations on first use:
    # a record is immutable, and the same one is read at every evaluation of its person.
    _derived: tuple[str | None, datetime | None, datetime | None] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    # How ``reason`` was found (``REASON_SOURCES``; "" for other) and how sure that is (rules:
    # 1.0; the learned model: its probability; other: None).
    source: str = ""
    confidence: float | None = None
    texts: frozenset[TextPart] = frozenset()

    def customer_parts(self) -> list[TextPart]:
        """The texts the requester wrote (author unknown counts as the requester: a
        description), oldest first."""
        if not self.texts:
            return []
        requester = self.version.requester_id if self.version is not None else None
        return sorted(p for p in self.texts if p[2] is None or p[2] == requester)

    def customer_terms(self) -> tuple[str, ...]:
        """The distinct words of the requester's texts, sorted."""
        terms: set[str] = set()
        for part in self.customer_parts():
            terms.update(part[3])
        return tuple(sorted(terms))

    def sentiment(self) -> tuple[float, datetime] | None:
        """The sentiment of the requester's latest text that has one, and its moment."""
        for at, _, _, _, score, _ in reversed(self.customer_parts()):
            if score is not None:
                return score, at
        return None

    def _derive(self) -> tuple[str | None, datetime | None, datetime | None]:
        derived = self._derived
        if derived is not None:
            return derived
        ordered = sorted(self.observations)
        if not ordered:
            derived = (None, None, None)
        else:
            latest_at = ordered[-1][0]
            first = len(ordered) - 1  # the observations at latest_at: ordered[first:]
            while first > 0 and ordered[first - 1][0] == latest_at:
                first -= 1
            status = ordered[first][1]  # the least status at the latest moment
            version = self.version
            if (
                version is not None
                and version.updated_at == latest_at
                and any(s == version.status for _, s in ordered[first:])
            ):
                status = version.status
            last_resolved_at = None
            previous: str | None = None
            for at, observed in ordered:
                if observed in RESOLVED_STATUSES and (
                    previous is None or previous not in RESOLVED_STATUSES
                ):
                    last_resolved_at = at
                previous = observed
            derived = (status, latest_at, last_resolved_at)
        object.__setattr__(self, "_derived", derived)
        return derived

    @property
    def status(self) -> str | None:
        """Status of the latest observation (ties: the latest version's, else the least)."""
        return self._derive()[0]

    @property
    def merged(self) -> bool:
        v = self.version
        return v is not None and (MERGE_TAG in v.tags or v.channel == MERGE_CHANNEL)

    @property
    def counted(self) -> bool:
        """Counts toward the person's state: has a version, not deleted, not merged away."""
        return self.version is not None and self.status != "deleted" and not self.merged

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def last_activity_at(self) -> datetime | None:
        return self._derive()[1]

    @property
    def last_resolved_at(self) -> datetime | None:
        """The latest of ``resolutions()`` (None: never resolved)."""
        return self._derive()[2]

    def resolutions(self) -> list[datetime]:
        """Moments the ticket went from not-resolved (or unknown) to solved/closed."""
        out: list[datetime] = []
        previous: str | None = None
        for at, status in sorted(self.observations):
            resolved = status in RESOLVED_STATUSES
            if resolved and (previous is None or previous not in RESOLVED_STATUSES):
                out.append(at)
            previous = status
        return out


def _fingerprint(v: TicketVersion) -> tuple[Any, ...]:
    return (
        v.status,
        v.priority or "",
        v.tags,
        v.subject,
        v.channel,
        v.requester_id or 0,
        v.custom_fields,
        v.created_at,
        tuple((i.kind, i.value) for i in v.requester),
        v.brand_id or 0,
    )


def _newer(a: TicketVersion, b: TicketVersion) -> bool:
    """Latest by (updated_at, key); two different versions with the same time and key are
    ordered by their content, so the winner never depends on arrival order."""
    if (a.updated_at, a.key) != (b.updated_at, b.key):
        return (a.updated_at, a.key) > (b.updated_at, b.key)
    return _fingerprint(a) > _fingerprint(b)


def apply_version(
    record: TicketRecord | None,
    version: TicketVersion,
    reason: str,
    risk: bool,
    source: str = "",
    confidence: float | None = None,
) -> TicketRecord:
    """Fold one ticket version (already classified into ``reason``/``risk`` by the rules,
    found by ``source`` with ``confidence``)."""
    observation = (version.updated_at, version.status)
    risk_at = version.updated_at if risk else None
    seen = None if version.brand_id is None else (version.updated_at, version.key, version.brand_id)
    if record is None:
        return TicketRecord(
            ticket_id=version.ticket_id,
            version=version,
            reason=reason,
            risk=risk,
            last_risk_at=risk_at,
            observations=frozenset((observation,)),
            brand=seen,
            source=source,
            confidence=confidence,
        )
    last_risk_at = record.last_risk_at
    if risk_at is not None and (last_risk_at is None or risk_at > last_risk_at):
        last_risk_at = risk_at
    observations = record.observations | {observation}
    brand = record.brand
    if seen is not None and (brand is None or seen > brand):
        brand = seen
    if record.version is None or _newer(version, record.version):
        return TicketRecord(
            record.ticket_id,
            version,
            reason,
            risk,
            last_risk_at,
            observations,
            brand,
            source=source,
            confidence=confidence,
            texts=record.texts,
        )
    return replace(record, last_risk_at=last_risk_at, observations=observations, brand=brand)


def apply_status_change(record: TicketRecord | None, event: TicketStatusChanged) -> TicketRecord:
    observation = (event.at, event.status)
    if record is None:
        return TicketRecord(event.ticket_id, None, "other", False, None, frozenset((observation,)))
    if observation in record.observations:
        return record
    return replace(record, observations=record.observations | {observation})


def apply_text(record: TicketRecord | None, event: TicketText) -> TicketRecord:
    """Fold one ticket text (a set: any order, duplicates once; of equal texts the earliest
    by (at, key) stays, whatever the order they came in)."""
    part: TextPart = (
        event.at,
        event.key,
        event.author_id,
        event.terms,
        event.sentiment,
        event.language,
    )
    if record is None:
        return TicketRecord(
            event.ticket_id, None, "other", False, None, frozenset(), texts=frozenset((part,))
        )
    if part in record.texts:
        return record
    # Equal texts (a description repeated by every version) are kept once: the earliest.
    same = [p for p in record.texts if p[2:] == part[2:]]
    if same:
        first = min(same)
        if first < part:
            return record
        return replace(record, texts=(record.texts - {first}) | {part})
    return replace(record, texts=record.texts | {part})


def with_reason(
    record: TicketRecord, reason: str, risk: bool, source: str, confidence: float | None
) -> TicketRecord:
    """The record with its reason found another way (the learned model, or back to the
    rules' ``other``). A risky reason marks the version's moment as a risk moment."""
    if (reason, risk, source, confidence) == (
        record.reason,
        record.risk,
        record.source,
        record.confidence,
    ):
        return record
    last_risk_at = record.last_risk_at
    if risk and record.version is not None:
        at = record.version.updated_at
        last_risk_at = at if last_risk_at is None or at > last_risk_at else last_risk_at
    return replace(
        record,
        reason=reason,
        risk=risk,
        source=source,
        confidence=confidence,
        last_risk_at=last_risk_at,
    )


@dataclass(frozen=True, slots=True)
class Latest:
    """A latest-wins fact: the value with the greatest (at, key)."""

    at: datetime
    key: str
    value: Any

    def newer_than(self, other: Latest | None) -> bool:
        return other is None or (self.at, self.key) > (other.at, other.key)


def pick_latest(current: Latest | None, candidate: Latest) -> Latest:
    return candidate if candidate.newer_than(current) else current  # type: ignore[return-value]


def csat_score(rating: RatingGiven, *, good: int, bad: int) -> int:
    """The 1-5 ``csat_score`` of a rating: ``good``/``bad`` as configured; a score on a
    2-point scale likewise (1 bad, 2 good); on a 3-point scale 1, 3, 5; else as it is."""
    score = rating.score
    if score == "good" or (rating.scale == 2 and score == 2):
        return good
    if score == "bad" or (rating.scale == 2 and score == 1):
        return bad
    points = int(score)
    if 2 < rating.scale < 5:
        return 1 + round((points - 1) * 4 / (rating.scale - 1))
    return points


@dataclass(frozen=True, slots=True)
class PersonFacts:
    """Per-person facts that are not tickets: latest rating, health and consent, and the
    Zendesk users of the person that Zendesk deleted.

    A person is *deleted* once every Zendesk user of theirs is (``deleted``, decided by the
    batch, which knows the person's Zendesk user ids): from then on no purpose counts as
    consented, whatever the consent facts say, so every destination stops syncing them.
    """

    rating: Latest | None = None  # value: csat score 1-5
    health: Latest | None = None  # value: satisfied | neutral | unsatisfied
    consent: tuple[tuple[str, Latest], ...] = ()  # purpose -> Latest(value: bool)
    override: Latest | None = None  # value: ISO time promos are suppressed until, or None
    deleted_users: tuple[tuple[str, Latest], ...] = ()  # Zendesk user id -> Latest(True)
    deleted: Latest | None = None  # value: True once every Zendesk user is deleted

    def consent_for(self, purpose: str) -> bool | None:
        if self.deleted is not None:
            return False
        for name, latest in self.consent:
            if name == purpose:
                return bool(latest.value)
        return None

    def stated_consent(self) -> list[tuple[str, bool]]:
        """(purpose, granted) for every purpose with a known answer (a deleted person: every
        purpose, not granted)."""
        if self.deleted is not None:
            return [(purpose, False) for purpose in CONSENT_PURPOSES]
        return [(purpose, bool(latest.value)) for purpose, latest in self.consent]

    def with_consent(self, purpose: str, candidate: Latest) -> PersonFacts:
        current = dict(self.consent)
        current[purpose] = pick_latest(current.get(purpose), candidate)
        return replace(self, consent=tuple(sorted(current.items())))

    def with_deleted_user(self, user_id: str, candidate: Latest) -> PersonFacts:
        current = dict(self.deleted_users)
        current[user_id] = pick_latest(current.get(user_id), candidate)
        return replace(self, deleted_users=tuple(sorted(current.items())))

    def combine(self, other: PersonFacts) -> PersonFacts:
        """Facts of two persons being merged into one (order-independent).

        The survivor counts as deleted only if both were: a merge keeps a live person live."""
        rating = self.rating if other.rating is None else pick_latest(self.rating, other.rating)
        health = self.health if other.health is None else pick_latest(self.health, other.health)
        merged = self
        for purpose, latest in other.consent:
            merged = merged.with_consent(purpose, latest)
        for user_id, latest in other.deleted_users:
            merged = merged.with_deleted_user(user_id, latest)
        override = (
            self.override if other.override is None else pick_latest(self.override, other.override)
        )
        deleted = None
        if self.deleted is not None and other.deleted is not None:
            deleted = pick_latest(self.deleted, other.deleted)
        return PersonFacts(rating, health, merged.consent, override, merged.deleted_users, deleted)


CLEAR = "clear"  # the support state of a person no ``[[states]]`` rule matches


# What a field is derived from (tickets, facts or the rules), and whether it is inferred
# from what customers wrote (or how a reason was found).
TICKETS: Mapping[str, object] = {"source": "tickets"}
INFERRED: Mapping[str, object] = {"source": "tickets", "inferred": True}
FACTS: Mapping[str, object] = {"source": "facts"}
RULES: Mapping[str, object] = {"source": "rules"}


@dataclass(frozen=True, slots=True)
class SupportState:
    """A person's support state (product.md section 3): the one list of its fields, in the
    order they are published (person JSON, API, CLI). The names, rule types, sources,
    inferred fields, blank values and the event schema's ``values`` derive from it.
    Inferred fields (from what customers wrote, or how a reason was found) are in rules, the
    person view and the API; a destination is told them only when it opts in
    (``inferences = true``)."""

    has_open_ticket: bool = field(default=False, metadata=TICKETS)
    open_ticket_count: int = field(default=0, metadata=TICKETS)
    open_reasons: list[str] = field(default_factory=list, metadata=TICKETS)
    ticket_count: int = field(default=0, metadata=TICKETS)
    last_ticket_at: datetime | None = field(default=None, metadata=TICKETS)
    last_activity_at: datetime | None = field(default=None, metadata=TICKETS)
    last_ticket_status: str | None = field(default=None, metadata=TICKETS)
    ticket_reason: str | None = field(default=None, metadata=TICKETS)
    last_resolved_at: datetime | None = field(default=None, metadata=TICKETS)
    priority: str | None = field(default=None, metadata=TICKETS)
    refund_risk: bool = field(default=False, metadata=TICKETS)
    last_refund_at: datetime | None = field(default=None, metadata=TICKETS)
    csat_score: int | None = field(default=None, metadata=FACTS)
    csat_at: datetime | None = field(default=None, metadata=FACTS)
    health: str | None = field(default=None, metadata=FACTS)
    health_at: datetime | None = field(default=None, metadata=FACTS)
    ticket_tags: list[str] = field(default_factory=list, metadata=TICKETS)
    brand_id: int | None = field(default=None, metadata=TICKETS)
    brand_ids: list[str] = field(default_factory=list, metadata=TICKETS)
    reason_source: str | None = field(default=None, metadata=INFERRED)
    reason_confidence: float | None = field(default=None, metadata=INFERRED)
    last_sentiment: float | None = field(default=None, metadata=INFERRED)
    sentiment_at: datetime | None = field(default=None, metadata=INFERRED)
    negative_ticket: bool = field(default=False, metadata=INFERRED)
    promo_override_until: datetime | None = field(default=None, metadata=FACTS)
    support_state: str = field(default=CLEAR, metadata=RULES)

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> SupportState:
        """The typed value of a state mapping (fields it lacks are blank)."""
        return cls(**{k: values[k] for k in STATE_FIELD_NAMES if k in values})

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in STATE_FIELD_NAMES}


def _rule_type(hint: Any) -> FieldType:
    """How rules read a field of this Python type."""
    if isinstance(hint, UnionType):  # ``X | None``
        (hint,) = [t for t in get_args(hint) if t is not type(None)]
    if get_origin(hint) is list:
        return "list"
    names: dict[Any, FieldType] = {
        bool: "bool",
        int: "int",
        float: "float",
        str: "str",
        datetime: "time",
    }
    return names[hint]


STATE_FIELDS: tuple[Field[Any], ...] = fields(SupportState)
STATE_FIELD_NAMES = tuple(f.name for f in STATE_FIELDS)
# Each field's type as rules read it (``tactful.core.rules``).
FIELD_TYPES: dict[str, FieldType] = {
    name: _rule_type(hint) for name, hint in get_type_hints(SupportState).items()
}
INFERRED_FIELD_NAMES = tuple(f.name for f in STATE_FIELDS if f.metadata.get("inferred"))
FACT_FIELD_NAMES = tuple(f.name for f in STATE_FIELDS if f.metadata["source"] == "facts")
TICKET_FIELD_NAMES = tuple(f.name for f in STATE_FIELDS if f.metadata["source"] == "tickets")
# The derived fields of a person about whom nothing is known (no ticket, rating or health).
_DERIVED = (*TICKET_FIELD_NAMES, *FACT_FIELD_NAMES)
BLANK_FIELDS: dict[str, Any] = {k: v for k, v in SupportState().values().items() if k in _DERIVED}


def derive_state(tickets: Iterable[TicketRecord], facts: PersonFacts) -> dict[str, Any]:
    """All §3 fields except ``support_state`` (which needs the rules and a moment)."""
    return {**ticket_fields(tickets), **fact_fields(facts)}


def fact_fields(facts: PersonFacts) -> dict[str, Any]:
    """The fields that come from ratings and agent input."""
    rating, health = facts.rating, facts.health
    return {
        "csat_score": rating.value if rating is not None else None,
        "csat_at": rating.at if rating is not None else None,
        "health": health.value if health is not None else None,
        "health_at": health.at if health is not None else None,
        "promo_override_until": _override_until(facts.override),
    }


def _override_until(override: Latest | None) -> datetime | None:
    if override is None or override.value is None:
        return None
    value = override.value
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def ticket_fields(tickets: Iterable[TicketRecord]) -> dict[str, Any]:
    """The fields that come from the person's tickets (``TICKET_FIELD_NAMES``)."""
    open_count = 0
    ticket_count = 0
    open_reasons: set[str] = set()
    open_tags: set[str] = set()
    priority_rank = -1
    refund_risk = False
    last_ticket_at: datetime | None = None
    newest_created: tuple[datetime, int] | None = None
    ticket_reason: str | None = None
    brand_id: int | None = None
    brand_ids: set[str] = set()
    newest_updated: tuple[datetime, int] | None = None
    last_ticket_status: str | None = None
    last_activity_at: datetime | None = None
    last_resolved_at: datetime | None = None
    last_refund_at: datetime | None = None
    reason_source: str | None = None
    reason_confidence: float | None = None
    last_sentiment: tuple[datetime, float] | None = None
    negative_ticket = False
    for record in tickets:
        version = record.version
        if version is None:
            continue
        status, activity, resolved_at = record._derive()
        if status == "deleted" or MERGE_TAG in version.tags or version.channel == MERGE_CHANNEL:
            continue  # not counted (see ``TicketRecord.counted``)
        ticket_count += 1
        feeling = record.sentiment() if record.texts else None
        if feeling is not None:
            if last_sentiment is None or feeling[1] > last_sentiment[0]:
                last_sentiment = (feeling[1], feeling[0])
            if status in OPEN_STATUSES and feeling[0] <= NEGATIVE_SENTIMENT:
                negative_ticket = True
        if status in OPEN_STATUSES:
            open_count += 1
            open_reasons.add(record.reason)
            open_tags.update(version.tags)
            if record.risk:
                refund_risk = True
            if version.priority is not None:
                priority_rank = max(priority_rank, _PRIORITY_RANK.get(version.priority, -1))
        created = (version.created_at, record.ticket_id)
        if newest_created is None or created > newest_created:
            newest_created = created
            ticket_reason = record.reason
            brand_id = None if record.brand is None else record.brand[2]
            reason_source = record.source or None
            reason_confidence = record.confidence
            last_ticket_at = version.created_at
        if record.brand is not None:
            brand_ids.add(str(record.brand[2]))
        if activity is not None:
            updated = (activity, record.ticket_id)
            if newest_updated is None or updated > newest_updated:
                newest_updated = updated
                last_ticket_status = status
            if last_activity_at is None or activity > last_activity_at:
                last_activity_at = activity
        if resolved_at is not None and (last_resolved_at is None or resolved_at > last_resolved_at):
            last_resolved_at = resolved_at
        if record.last_risk_at is not None and (
            last_refund_at is None or record.last_risk_at > last_refund_at
        ):
            last_refund_at = record.last_risk_at
    return {
        "has_open_ticket": open_count > 0,
        "open_ticket_count": open_count,
        "open_reasons": sorted(open_reasons),
        "ticket_count": ticket_count,
        "last_ticket_at": last_ticket_at,
        "last_activity_at": last_activity_at,
        "last_ticket_status": last_ticket_status,
        "ticket_reason": ticket_reason,
        "last_resolved_at": last_resolved_at,
        "priority": PRIORITIES[priority_rank] if priority_rank >= 0 else None,
        "refund_risk": refund_risk,
        "last_refund_at": last_refund_at,
        "ticket_tags": sorted(open_tags),
        "brand_id": brand_id,
        "brand_ids": sorted(brand_ids),
        "reason_source": reason_source,
        "reason_confidence": reason_confidence,
        "last_sentiment": last_sentiment[1] if last_sentiment is not None else None,
        "sentiment_at": last_sentiment[0] if last_sentiment is not None else None,
        "negative_ticket": negative_ticket,
    }
