"""What the demo's customers write about, and how busy each hour of the launch is.

Reasons, tags and subjects match the starter config's ``[[reasons]]`` (a tag and a subject
keyword each), so every ticket lands on the intended reason.
"""

from __future__ import annotations

from dataclasses import dataclass

LAUNCH_HOUR = 3.0  # the Glow Serum launches three simulated hours into the demo
RAMP_HOURS = 12.0  # tickets climb for half a day...
PEAK_HOURS = 48.0  # ...stay high for two days...
HALF_LIFE_HOURS = 30.0  # ...then calm down


@dataclass(frozen=True)
class Topic:
    reason: str
    subjects: tuple[str, ...]
    tags: tuple[str, ...]
    resolve_hours: tuple[float, float]  # from creation to "solved", before any backlog
    bad_csat: float  # chance that a rating is "bad" (the launch backlog adds to it)
    refund: float  # chance that the customer asks for a refund while the ticket is open
    urgent: float  # chance of a high/urgent priority


TOPICS: dict[str, Topic] = {
    t.reason: t
    for t in (
        Topic(
            "reaction",
            (
                "Irritation after using the Glow Serum",
                "Rash on my cheeks after the new serum",
                "Burning and itching from the Glow Serum",
                "Breakout since I started the serum",
            ),
            ("irritation",),
            (24, 96),
            0.45,
            0.25,
            0.45,
        ),
        Topic(
            "wrong_item",
            (
                "Wrong item in my launch order",
                "Received the wrong product",
                "Missing item from my Glow Serum order",
            ),
            ("wrong_item",),
            (12, 48),
            0.35,
            0.15,
            0.1,
        ),
        Topic(
            "shipping",
            ("Where is my order", "Tracking has not updated", "My delivery is delayed"),
            ("wismo",),
            (4, 24),
            0.15,
            0.02,
            0.05,
        ),
        Topic(
            "damaged",
            ("Serum bottle arrived leaking", "Package arrived damaged"),
            ("damaged",),
            (12, 48),
            0.3,
            0.2,
            0.1,
        ),
        Topic(
            "refund",
            ("Refund for my launch order", "I want my money back"),
            ("refund",),
            (24, 72),
            0.5,
            0.0,
            0.2,
        ),
        Topic(
            "billing",
            ("Double charged for my order", "Promo code did not apply"),
            ("billing",),
            (6, 36),
            0.2,
            0.05,
            0.05,
        ),
        Topic(
            "subscription",
            ("Pause my subscription", "Cancel my subscription"),
            ("subscription",),
            (4, 24),
            0.1,
            0.0,
            0.0,
        ),
        Topic(
            "account",
            ("Cannot log in to my account", "Password reset link not working"),
            ("login",),
            (2, 12),
            0.05,
            0.0,
            0.0,
        ),
        Topic(
            "product_issue",
            ("Serum pump stopped working", "Defective dropper"),
            ("defective",),
            (12, 48),
            0.3,
            0.1,
            0.05,
        ),
    )
}

# Which topics arrive, by weight: the launch wave, and an ordinary day.
LAUNCH_MIX = {"reaction": 36, "wrong_item": 30, "shipping": 16, "damaged": 8, "refund": 5}
LAUNCH_MIX["billing"] = 5
BASELINE_MIX = {"shipping": 30, "billing": 14, "subscription": 14, "account": 10}
BASELINE_MIX.update(wrong_item=10, product_issue=10, reaction=6, refund=6)

FIRST_NAMES = ("Ava", "Maya", "Noor", "Lena", "Chloe", "Priya", "Sofia", "Emma", "Zoe", "Hana",
               "Lucia", "Amara", "Ines", "Mia", "Nadia", "Elif", "Rosa", "Yuki", "Aisha", "Clara",
               "Sam", "Leo", "Omar", "Theo", "Jonas", "Ravi", "Mateo", "Kai")  # fmt: skip
LAST_NAMES = ("Garcia", "Chen", "Okafor", "Novak", "Rossi", "Patel", "Kim", "Silva", "Haddad",
              "Larsen", "Moreau", "Ito", "Mensah", "Fischer", "Kowalski", "Dubois", "Ahmed",
              "Costa", "Nguyen", "Berg")  # fmt: skip


def launch_intensity(hours: float) -> float:
    """0 before the launch, rising to 1, a plateau, then halving every HALF_LIFE_HOURS."""
    t = hours - LAUNCH_HOUR
    if t < 0:
        return 0.0
    if t < RAMP_HOURS:
        return t / RAMP_HOURS
    if t < RAMP_HOURS + PEAK_HOURS:
        return 1.0
    return float(0.5 ** ((t - RAMP_HOURS - PEAK_HOURS) / HALF_LIFE_HOURS))


def tickets_per_hour(hours: float, customers: int) -> tuple[float, float]:
    """(baseline, launch) ticket rates per simulated hour for ``customers`` customers."""
    return 0.0015 * customers, 0.006 * customers * launch_intensity(hours)
