"""Users: names, emails, phones, external ids, consent fields, deleted and duplicate users."""

from __future__ import annotations

from typing import Any

import orjson

from tactful.testing.sample.constants import _DAY, BASE_URL, _iso
from tactful.testing.sample.documents import user_document
from tactful.testing.sample.model import _Person
from tactful.testing.sample.state import _GeneratorState

_FIRST_NAMES = (
    "Olivia", "Emma", "Ava", "Sophia", "Mia", "Amelia", "Harper", "Evelyn", "Abigail",
    "Ella", "Grace", "Chloe", "Camila", "Priya", "Aisha", "Mei", "Sofia", "Lucia", "Noah",
    "Liam", "James", "Lucas", "Mateo", "Ethan", "Daniel", "Hannah", "Zoe", "Nora", "Layla",
    "Riley", "Maya", "Leah", "Ines", "Yuki", "Fatima", "Jade", "Elena", "Clara", "Ruby",
    "Isla",
)  # fmt: skip
_LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
    "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White",
    "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen",
    "King", "Wright", "Scott", "Nguyen", "Patel", "Kim", "Chen",
)  # fmt: skip
_EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com")
_AREA_CODES = ("212", "213", "305", "312", "404", "415", "503", "512", "617", "646", "702",
               "718", "801", "206", "303", "310", "347", "917")  # fmt: skip
_EXCHANGES = tuple(e for e in range(201, 1000) if e % 100 != 11)  # no N11 service codes
_TIME_ZONES = (
    ("Eastern Time (US & Canada)", "America/New_York"),
    ("Central Time (US & Canada)", "America/Chicago"),
    ("Mountain Time (US & Canada)", "America/Denver"),
    ("Pacific Time (US & Canada)", "America/Los_Angeles"),
)


class _UserGenerator(_GeneratorState):
    """Writes the user records of a person."""

    def _person_users(self, index: int) -> _Person | None:
        """Write the person's users; the person, or None for a deleted user (no tickets)."""
        rng = self.rng
        first = rng.choice(_FIRST_NAMES)
        last = rng.choice(_LAST_NAMES)
        name = f"{first} {last}"
        roll = rng.random()
        active = roll >= 0.01
        phone_only = active and roll < 0.09
        email = None if phone_only else f"{first}.{last}{index}@{rng.choice(_EMAIL_DOMAINS)}"
        if email is not None:
            email = email.lower()
        phone: str | None = None
        if phone_only or rng.random() < 0.3:
            phone = self._phone(index, e164=phone_only or rng.random() < 0.5)
        external_id = str(6_100_000_000_000 + index * 7) if rng.random() < 0.1 else None
        # Users are spread over the year before the window, in export (updated_at) order.
        year_ago = self.start_ts - 365 * _DAY
        updated = year_ago + (index * 365 * _DAY) // max(self.persons, 1)
        created = updated - rng.randrange(0, 400 * _DAY)
        user_id = self._user_id()
        user_ids = [user_id]
        tags = self._user_tags()
        consent = self._consent()
        if not active:  # a deleted user: Zendesk scrubs identifiers
            self._user(user_id, name, None, None, None, created, updated, [], consent, False)
            return None
        self._user(user_id, name, email, phone, external_id, created, updated, tags, consent, True)
        if email is not None and rng.random() < 0.01:
            # Same human, second user id (guest checkout, messaging), same email.
            dup_email = email.title() if rng.random() < 0.5 else email
            dup_id = self._user_id()
            user_ids.append(dup_id)
            dup_created = min(updated, created + rng.randrange(_DAY, 200 * _DAY))
            no_consent = dict.fromkeys(consent)  # Zendesk lists every user field, unset: null
            self._user(
                dup_id, first, dup_email, None, None, dup_created, updated, [], no_consent, True
            )
        return _Person(name, email, tuple(user_ids))

    def _user_id(self) -> int:
        self.next_user += 1
        return self.next_user

    def _phone(self, index: int, *, e164: bool) -> str:
        area = self.rng.choice(_AREA_CODES)
        exchange = _EXCHANGES[(index // 10_000) % len(_EXCHANGES)]
        line = index % 10_000
        if e164:
            return f"+1{area}{exchange}{line:04d}"
        style = self.rng.randrange(3)
        if style == 0:
            return f"({area}) {exchange}-{line:04d}"
        if style == 1:
            return f"{area}.{exchange}.{line:04d}"
        return f"+1 {area}-{exchange}-{line:04d}"

    def _user_tags(self) -> list[str]:
        rng = self.rng
        tags = []
        if rng.random() < 0.25:
            tags.append("subscriber")
        if rng.random() < 0.05:
            tags.append("vip")
        if rng.random() < 0.005:
            tags.append("wholesale")
        return tags

    def _consent(self) -> dict[str, Any]:
        rng = self.rng
        ads = rng.random()
        mail = rng.random()
        return {
            "loyalty_tier": rng.choice((None, None, "silver", "gold")),
            "marketing_consent_ads": None if ads < 0.5 else ads < 0.85,
            "marketing_consent_email": None if mail < 0.4 else mail < 0.85,
        }

    def _user(
        self,
        user_id: int,
        name: str,
        email: str | None,
        phone: str | None,
        external_id: str | None,
        created: int,
        updated: int,
        tags: list[str],
        user_fields: dict[str, Any],
        active: bool,
    ) -> None:
        user = user_document(
            base_url=BASE_URL,
            user_id=user_id,
            name=name,
            email=email,
            created_at=_iso(created),
            updated_at=_iso(updated),
            time_zone=self.rng.choice(_TIME_ZONES),
            phone=phone,
            role="end-user",
            external_id=external_id,
            tags=tags,
            active=active,
            user_fields=user_fields,
        )
        if not active:
            user["permanently_deleted"] = False
        self.users.add(updated, user_id, orjson.dumps(user))

    # -- tickets
