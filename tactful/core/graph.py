"""The person graph: which person each event is about (pure; the store's answers are given).

Rules (product.md §3):
- A Zendesk user id is always one person; so is every identifier of the configured key kind
  (default ``email``): persons sharing one are merged.
- Other identifiers (phones, external ids when the key is email) point at the person but never
  merge two persons; a lookup by them may find several.
- A Zendesk user merge merges the two users' persons.
- Person ids are ``p_`` + a keyed hash (the store's salt) of the identifier that created the
  person; when two persons merge, the smaller id survives and the other becomes an alias.
  Events are resolved in log order, so replays give the same ids.

``IdentityPlan`` reads an event's identifiers; ``PersonGraph`` resolves them to persons
within one batch, given what the store knows of them (``known``), and collects the links
and merges to write back. ``tactful.engine.identity_graph`` puts it on a store transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from tactful.core.events import (
    ConsentSet,
    Event,
    HealthSet,
    IdentifierKind,
    OutcomeRecorded,
    OverrideSet,
    PersonErased,
    RatingGiven,
    TicketVersion,
    UserDeleted,
    UserMerged,
    UserSeen,
)
from tactful.core.identity import normalize_identifier

IdentKey = tuple[str, str]  # (kind, normalized value)
JOINING_ALWAYS = "zendesk_user_id"


class Unresolvable(ValueError):
    """The event names no usable identifier of a person."""


def person_id_for(salt: str, key: IdentKey) -> str:
    digest = hashlib.blake2b(
        f"{key[0]}\x00{key[1]}".encode(), key=salt.encode()[:64], digest_size=10
    )
    return "p_" + digest.hexdigest()


class IdentityPlan:
    """Which identifiers an event carries, split into joining and attached ones."""

    def __init__(self, key_kind: str, default_region: str | None) -> None:
        self.key_kind = key_kind
        self.default_region = default_region

    def _norm(self, kind: IdentifierKind, raw: str | int) -> IdentKey | None:
        ident = normalize_identifier(kind, str(raw), self.default_region)
        return None if ident is None else (ident.kind, ident.value)

    def _split(self, idents: Sequence[IdentKey]) -> tuple[list[IdentKey], list[IdentKey]]:
        joining = [k for k in idents if k[0] in (JOINING_ALWAYS, self.key_kind)]
        others = [k for k in idents if k not in joining]
        return joining, others

    def identifiers(self, event: Event) -> tuple[list[IdentKey], list[IdentKey]] | None:
        """(joining, attached) identifiers of the person the event is about, or None if the
        event is not about one person (ticket status changes, merges)."""
        raw: list[tuple[IdentifierKind, str | int]] = []
        if isinstance(event, TicketVersion | RatingGiven):
            if event.requester_id is not None:
                raw.append(("zendesk_user_id", event.requester_id))
            raw.extend((i.kind, i.value) for i in event.requester)
        elif isinstance(event, UserSeen):
            raw.append(("zendesk_user_id", event.zendesk_user_id))
            raw.extend(("email", e) for e in event.emails)
            raw.extend(("phone", p) for p in event.phones)
            raw.extend(("external_id", x) for x in event.external_ids)
        elif isinstance(
            event, HealthSet | ConsentSet | OutcomeRecorded | PersonErased | OverrideSet
        ):
            raw.append((event.person.kind, event.person.value))
        elif isinstance(event, UserDeleted):
            raw.append(("zendesk_user_id", event.zendesk_user_id))
        else:
            return None
        keys: list[IdentKey] = []
        for kind, value in raw:
            key = self._norm(kind, value)
            if key is not None and key not in keys:
                keys.append(key)
        if any(k[0] == "person_id" for k in keys):
            return [k for k in keys if k[0] == "person_id"], []
        joining, others = self._split(keys)
        if not joining and not others:
            raise Unresolvable("no usable identifier of the person")
        return joining, others


class PersonGraph:
    """Resolves identifiers to persons within one batch, merging where the rules say.

    ``idmap``: each identifier's persons as the store knew them (``known``) plus this
    batch's links; ``alias``: absorbed person -> survivor; ``new_persons``: persons this
    batch created, with the moment; ``on_merge(absorbed, survivor, at)`` is told of each
    merge."""

    def __init__(self, salt: str, on_merge: Callable[[str, str, datetime], None]) -> None:
        self.salt = salt
        self.on_merge = on_merge
        self.idmap: dict[IdentKey, set[str]] = {}
        self.alias: dict[str, str] = {}
        self.new_persons: dict[str, datetime] = {}
        self.new_links: list[tuple[str, str, str]] = []

    def known(self, found: Mapping[IdentKey, set[str]]) -> None:
        """What the store knows of some identifiers: their persons."""
        self.idmap.update(found)

    def find(self, person_id: str) -> str:
        while person_id in self.alias:
            person_id = self.alias[person_id]
        return person_id

    def _owners(self, key: IdentKey) -> set[str]:
        return {self.find(p) for p in self.idmap.get(key, ())}

    def _link(self, key: IdentKey, person_id: str) -> None:
        owners = self.idmap.setdefault(key, set())
        if person_id not in owners and person_id not in self._owners(key):
            owners.add(person_id)
            self.new_links.append((key[0], key[1], person_id))

    def resolve(self, joining: list[IdentKey], others: list[IdentKey], at: datetime) -> str:
        """The person of these identifiers (created if none), linked to all of them."""
        owners: set[str] = set()
        for key in joining:
            owners |= self._owners(key)
        if not owners and not joining:
            # Only non-joining identifiers (e.g. a phone when the key is email): attach to
            # the single existing owner, else create a person keyed by the first of them.
            for key in others:
                owners |= self._owners(key)
            if len(owners) > 1:
                owners = {min(owners)}
        if not owners:
            first = (joining or others)[0]
            pid = person_id_for(self.salt, first)
            pid = self.find(pid)
            self.new_persons.setdefault(pid, at)
            owners = {pid}
        pid = min(owners)
        for other in sorted(owners - {pid}):
            self.merge(other, pid, at)
        for key in (*joining, *others):
            self._link(key, pid)
        return pid

    def merging(self, joining: Sequence[IdentKey]) -> frozenset[str] | None:
        """The persons ``resolve`` would merge for these joining identifiers (None: none)."""
        owners: set[str] = set()
        for key in joining:
            owners |= self._owners(key)
        return frozenset(owners) if len(owners) > 1 else None

    def merging_users(self, event: UserMerged) -> frozenset[str] | None:
        """The known persons ``merge_users`` would merge (None: it merges no known person,
        as when both users are new or already one person)."""
        source = self._owners(("zendesk_user_id", str(event.source_user_id)))
        target = self._owners(("zendesk_user_id", str(event.target_user_id)))
        if source == target:
            return None
        return frozenset(source | target)

    def merge(self, absorbed: str, survivor: str, at: datetime) -> None:
        absorbed, survivor = self.find(absorbed), self.find(survivor)
        if absorbed == survivor:
            return
        if survivor > absorbed:
            absorbed, survivor = survivor, absorbed
        # Owner sets and new links keep the absorbed id: every reader maps ids through
        # ``find`` (rewriting them here cost a pass over the whole batch per merge).
        self.alias[absorbed] = survivor
        self.on_merge(absorbed, survivor, at)

    def merge_users(self, event: UserMerged) -> str:
        source = self.resolve([("zendesk_user_id", str(event.source_user_id))], [], event.at)
        target = self.resolve([("zendesk_user_id", str(event.target_user_id))], [], event.at)
        self.merge(source, target, event.at)
        return self.find(target)

    def take_links(self) -> list[tuple[str, str, str]]:
        """The new (kind, value, person) links, each person its survivor; then none."""
        links = sorted({(k, v, self.find(p)) for k, v, p in self.new_links})
        self.new_links.clear()
        return links
