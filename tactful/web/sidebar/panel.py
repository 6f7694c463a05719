"""The panel: what Tactful knows about the ticket's requester, their ESP profile and value
score, gathered into ``PanelData`` and rendered by ``templates/sidebar/panel.html``.

It leads with one sentence an agent can act on (``summary.lead``), then what marketing sees
(the segments the person is in with the reason in words, value, engagement, consent); the
rules and raw fields sit behind a "Details" disclosure."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tactful.core.events import CONSENT_PURPOSES
from tactful.destinations.profiles import MarketingProfile, ProfileError
from tactful.readmodels.valuescore import ValueScore, value_score
from tactful.readmodels.views import resolve_key
from tactful.store.pages import SentChange
from tactful.store.records import from_us
from tactful.web.present import At, Phrase, moment, words
from tactful.web.sidebar import proof
from tactful.web.sidebar.notes import NOTED
from tactful.web.sidebar.state import EspUnavailable, SidebarState
from tactful.web.sidebar.summary import SegmentWords, label_of, lead, mood, segment_words
from tactful.web.templating import render as render_template

HEALTH_CHOICES = ("satisfied", "neutral", "unsatisfied")
STATE_SHOWN = (
    "support_state",
    "has_open_ticket",
    "open_ticket_count",
    "open_reasons",
    "ticket_count",
    "last_ticket_at",
    "last_activity_at",
    "last_ticket_status",
    "last_resolved_at",
    "priority",
    "refund_risk",
    "csat_score",
    "csat_at",
    "health",
    "health_at",
    "last_sentiment",
    "negative_ticket",
    "reason_source",
    "promo_override_until",
)


@dataclass
class PanelData:
    email: str
    now: datetime
    person_id: str | None = None
    problem: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    consent: dict[str, bool] = field(default_factory=dict)
    segments: list[SegmentWords] = field(default_factory=list)
    # change, what, outcome, the platform's own confirmation
    sent: list[tuple[SentChange, str, str, Phrase]] = field(default_factory=list)
    profile: MarketingProfile | None = None
    esp_name: str | None = None
    esp_problem: str | None = None
    score: ValueScore | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)
    notes: bool = False  # [zendesk] private_notes: actions can go on the ticket as proof
    noted: dict[int, str] = field(default_factory=dict)  # action id -> its note's status

    @staticmethod
    def provable(action: dict[str, Any]) -> bool:
        """An action that was done (a note is not itself proven)."""
        return bool(action["action"] != "note" and action["status"] == "done")

    def note_status(self, action: dict[str, Any]) -> str | None:
        """ "noted" (a note exists or may), "offer" (the agent can add one), or None."""
        if not self.provable(action):
            return None
        if self.noted.get(int(action["id"])) in NOTED:
            return "noted"
        return "offer" if self.notes else None

    def note_words(self, action: dict[str, Any]) -> str:
        return {
            "done": "On the ticket as a private note.",
            "running": "Being added to the ticket…",
            "unconfirmed": "Zendesk did not confirm the note: look at the ticket.",
        }.get(self.noted.get(int(action["id"]), ""), "")

    @property
    def last_action(self) -> dict[str, Any] | None:
        """The latest action on the person that was done."""
        return next((a for a in self.actions if self.provable(a)), None)

    @property
    def told_since_last(self) -> list[tuple[SentChange, str, str, Phrase]]:
        """What the tools were told since the last action, oldest first: its confirmation."""
        last = self.last_action
        if last is None:
            return []
        return [t for t in reversed(self.sent) if t[0].at_us >= int(last["at_us"])]

    @property
    def lead(self) -> Phrase:
        return lead(self.segments)

    @property
    def member_of(self) -> list[SegmentWords]:
        return [s for s in self.segments if s.member]

    @property
    def health(self) -> str | None:
        value = self.state.get("health")
        return value if value in HEALTH_CHOICES else None

    @property
    def mood(self) -> Phrase:
        """How the customer sounded in their latest words (empty: nothing read)."""
        return mood(self.state)

    @property
    def paused_until(self) -> datetime | None:
        until = self.state.get("promo_override_until")
        return until if isinstance(until, datetime) and until > self.now else None


def find_person(state: SidebarState, email: str) -> tuple[str | None, str | None]:
    """(person id, problem) for the requester's email."""
    ctx = state.ctx
    with ctx.engine.store.reader() as reader:
        matches = resolve_key(reader, email, ctx.settings.identity.default_region)
    if not matches:
        return None, f"Tactful has no record of {email}"
    if len(matches) > 1:
        return None, f"{email} matches {len(matches)} people in Tactful"
    return matches[0], None


REBUILDING = (
    "Tactful is rebuilding its records (a replay is running): this person's state is back "
    "when it ends."
)


def gather_local(state: SidebarState, email: str, now: datetime) -> PanelData:
    ctx = state.ctx
    data = PanelData(email=email, now=now, esp_name=state.esp_name)
    if ctx.rebuilding():  # half built: said, not shown
        data.problem = REBUILDING
        return data
    data.person_id, data.problem = find_person(state, email)
    if data.person_id is None:
        return data
    pid = data.person_id
    with ctx.engine.store.reader() as reader:
        row = reader.load_persons([pid]).get(pid)
        sent = reader.sent_changes(pid)
        data.score = value_score(reader, pid, now)
        data.actions = reader.actions_of(pid)
        data.noted = reader.notes_of(pid)
    data.notes = ctx.settings.zendesk.private_notes
    if row is None:
        data.person_id, data.problem = None, f"Tactful has no record of {email}"
        return data
    data.state = dict(row.state)
    for purpose in CONSENT_PURPOSES:
        known = row.facts.consent_for(purpose)
        data.consent[purpose] = ctx.consent_defaults.get(purpose, True) if known is None else known
    data.segments = segment_words(ctx.settings.segments, row.memberships, data.state, now)
    types = {d.name: d.type for d in ctx.settings.destinations}
    labels = {s.name: label_of(s) for s in ctx.settings.segments}
    data.sent = [
        (c, proof.what(c, types, labels), proof.outcome(c, types), proof.confirmation(c, types))
        for c in sent
    ]
    return data


async def gather(state: SidebarState, email: str) -> PanelData:
    """Tactful's own data always; the ESP profile when the ESP answers in time."""
    now = state.clock()
    data = gather_local(state, email, now)
    try:
        data.profile = await state.call_esp(lambda esp: esp.read_profile(email))
        if data.profile is None:
            data.esp_problem = f"No profile for {email} at {data.esp_name}."
    except (EspUnavailable, ProfileError) as exc:
        data.esp_problem = f"ESP unavailable: {exc}"
    return data


def _at_us(value: Any) -> datetime:
    return from_us(int(value))


def render(data: PanelData, flash: tuple[str, str] | None = None) -> str:
    now = data.now
    return render_template(
        "sidebar/panel.html",
        d=data,
        flash=flash,
        now=now,
        at=lambda value: moment(value, now),
        at_us=lambda value: moment(_at_us(value), now),
        words=words,
        is_at=lambda part: isinstance(part, At),
        idem=lambda: uuid.uuid4().hex,
        health_choices=HEALTH_CHOICES,
        state_shown=[k for k in STATE_SHOWN if data.state.get(k) not in (None, [], "")],
    )
