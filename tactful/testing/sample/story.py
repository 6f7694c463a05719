"""The story of the skincare brand: contact reasons (tags, subjects, descriptions, priorities,
groups), products, channels and satisfaction comments."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class _Reason:
    field_value: str
    weight: int
    tag_sets: tuple[tuple[str, ...], ...]  # one is picked per ticket; () = agent forgot
    subjects: tuple[str, ...]  # some deliberately without the keyword
    descriptions: tuple[str, ...]
    priorities: tuple[tuple[str | None, int], ...]
    group: str
    ticket_type: str | None
    bad_rating: float  # chance that an answered rating is "bad"
    can_hold: bool = False


_REASONS: tuple[_Reason, ...] = (
    _Reason(
        field_value="refund_request",
        weight=11,
        tag_sets=(("refund",), ("refund", "returns"), ("refund_request",), ()),
        subjects=(
            "Refund for order #{order}",
            "Requesting a refund for the {product}",
            "Return and refund please",
            "Still waiting on my refund for #{order}",
            "Can I get my money back for the {product}?",
        ),
        descriptions=(
            "Hi, the {product} didn't work for me and I'd like a refund for order #{order}.",
            "I returned my order #{order} two weeks ago and haven't seen the money yet.",
        ),
        priorities=((None, 3), ("normal", 5), ("high", 2)),
        group="billing",
        ticket_type="task",
        bad_rating=0.3,
    ),
    _Reason(
        field_value="chargeback",
        weight=2,
        tag_sets=(("chargeback",), ("chargeback", "dispute"), ("payment_dispute",)),
        subjects=(
            "Chargeback received for order #{order}",
            "Dispute notification: order #{order}",
            "I disputed this charge with my bank",
        ),
        descriptions=(
            "A chargeback was opened for order #{order}. Reason: product not as described.",
            "I didn't recognise a charge from you so I disputed it with my bank.",
        ),
        priorities=(("high", 3), ("urgent", 1)),
        group="billing",
        ticket_type="problem",
        bad_rating=0.35,
    ),
    _Reason(
        field_value="reaction",
        weight=10,
        tag_sets=(("irritation",), ("allergic_reaction",), ("adverse_reaction", "safety"), ()),
        subjects=(
            "Skin irritation after using the {product}",
            "Allergic reaction to the {product}",
            "Rash and burning from the {product}",
            "Breakout after switching to the {product}",
            "Is redness normal with the {product}?",
        ),
        descriptions=(
            "I started the {product} three days ago and my cheeks are red and burning.",
            "My face broke out in hives after using the {product}. What's in it?",
        ),
        priorities=(("normal", 2), ("high", 5), ("urgent", 2)),
        group="safety",
        ticket_type="incident",
        bad_rating=0.3,
    ),
    _Reason(
        field_value="wrong_item",
        weight=9,
        tag_sets=(("wrong_item",), ("wrong_item", "fulfillment"), ("fulfillment_error",), ()),
        subjects=(
            "Wrong item in order #{order}",
            "Received the wrong product",
            "I ordered the {product} but got something else",
            "Missing item from order #{order}",
        ),
        descriptions=(
            "My order #{order} arrived but instead of the {product} there was a cleanser.",
            "The box for order #{order} was missing the {product}.",
        ),
        priorities=((None, 3), ("normal", 5), ("high", 1)),
        group="fulfillment",
        ticket_type="incident",
        bad_rating=0.15,
        can_hold=True,
    ),
    _Reason(
        field_value="shipping_delay",
        weight=24,
        tag_sets=(("shipping",), ("shipping", "wismo"), ("shipping_delay",), ()),
        subjects=(
            "Where is my order #{order}?",
            "Order #{order} hasn't arrived",
            "Shipping delay on my order",
            "Tracking hasn't updated in a week",
            "When will my package ship?",
        ),
        descriptions=(
            "It's been 10 days and order #{order} still shows label created.",
            "Can you tell me when my {product} will arrive? Order #{order}.",
        ),
        priorities=((None, 4), ("low", 2), ("normal", 4)),
        group="fulfillment",
        ticket_type="question",
        bad_rating=0.25,
        can_hold=True,
    ),
    _Reason(
        field_value="damaged_item",
        weight=8,
        tag_sets=(("damaged",), ("damaged", "fulfillment"), ("damaged_item",), ()),
        subjects=(
            "The {product} arrived damaged",
            "Broken bottle in my package",
            "Pump on the {product} is broken",
            "Package arrived leaking",
        ),
        descriptions=(
            "The {product} from order #{order} arrived cracked and leaked over everything.",
            "The pump on my {product} doesn't work, nothing comes out.",
        ),
        priorities=((None, 2), ("normal", 6), ("high", 1)),
        group="fulfillment",
        ticket_type="incident",
        bad_rating=0.12,
        can_hold=True,
    ),
    _Reason(
        field_value="subscription_billing",
        weight=16,
        tag_sets=(("subscription",), ("subscription", "cancel"), ("billing",), ()),
        subjects=(
            "Cancel my subscription",
            "Charged twice for order #{order}",
            "Skip my next subscription delivery",
            "Update my billing address",
            "Why was I charged this month?",
        ),
        descriptions=(
            "Please cancel my {product} subscription before the next charge.",
            "I see two charges for order #{order} on my card statement.",
        ),
        priorities=((None, 4), ("low", 2), ("normal", 4)),
        group="billing",
        ticket_type="question",
        bad_rating=0.2,
    ),
    _Reason(
        field_value="product_question",
        weight=20,
        tag_sets=(("how_to",), ("product_question",), ("how_to", "routine"), ()),
        subjects=(
            "How do I use the {product} with retinol?",
            "Can I use the {product} while pregnant?",
            "Which order should I apply my serums?",
            "Is the {product} safe for sensitive skin?",
            "Routine advice",
        ),
        descriptions=(
            "I just got the {product}. Morning or night? Before or after moisturizer?",
            "Can the {product} be combined with my vitamin C serum?",
        ),
        priorities=((None, 5), ("low", 4), ("normal", 1)),
        group="support",
        ticket_type="question",
        bad_rating=0.08,
    ),
)
_REASON_WEIGHTS = tuple(r.weight for r in _REASONS)

_PRODUCTS = (
    "Hydrating Serum",
    "Retinol Night Cream",
    "Vitamin C Brightening Serum",
    "Gentle Foaming Cleanser",
    "Mineral Sunscreen SPF 50",
    "AHA/BHA Exfoliating Toner",
    "Barrier Repair Moisturizer",
    "Niacinamide 10% Serum",
    "Peptide Eye Cream",
    "Kaolin Clay Mask",
)
_CHANNELS = (("web", 45), ("email", 35), ("native_messaging", 15), ("api", 5))
_CREATE_VIA = {
    "web": "Web form",
    "email": "Mail",
    "native_messaging": "Messaging",
    "api": "Web service",
}
_GOOD_COMMENTS = (
    "Thank you so much!",
    "Super quick help, thanks",
    "Lovely agent, sorted it right away",
    "Great service as always",
)
_BAD_COMMENTS = (
    "Took way too long",
    "Still haven't received my refund",
    "My skin is still irritated and nobody followed up",
    "Had to explain my issue three times",
)
_BAD_REASONS = (
    (5, "The issue took too long to resolve", 360_000_505_005),
    (6, "The issue was not resolved", 360_000_505_006),
    (7, "The agent's knowledge is unsatisfactory", 360_000_505_007),
    (8, "The agent's attitude is unsatisfactory", 360_000_505_008),
    (100, "Some other reason", 360_000_505_100),
)
