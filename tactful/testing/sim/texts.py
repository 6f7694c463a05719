"""A generated, labelled sample of what customers write (issue 25's measurements).

``labelled_sample(n, seed)`` gives tickets as a support desk of a skincare shop sees them:
a subject that is often vague ("Order 48213", "Help please", "Re: your order"), a
description and sometimes a follow-up in the customer's words, the true reason, whether an
agent tagged it (then with one of the reason's tags), and the customer's mood (``negative``,
``neutral``, ``positive``) as a person would label it. Phrasings vary (several sentences per
reason, words swapped for synonyms, small typos, mentions of other reasons, a few tickets
that say too little to tell), and a few tickets are in Spanish, German or French. The
reasons and tags are the starter ``tactful.toml``'s. Deterministic for a seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

REASONS: dict[str, tuple[str, ...]] = {  # reason -> its starter tags
    "refund": ("refund", "refund_request", "chargeback"),
    "reaction": ("reaction", "allergic_reaction", "irritation"),
    "product_issue": ("product_issue", "defective", "faulty"),
    "wrong_item": ("wrong_item", "missing_item"),
    "damaged": ("damaged", "damaged_item"),
    "shipping": ("wismo", "shipping", "tracking"),
    "subscription": ("subscription", "cancel_subscription"),
    "billing": ("billing", "payment", "double_charge"),
    "account": ("account", "login", "password_reset"),
}
PRODUCTS = (
    "vitamin C serum", "night cream", "cleanser", "face mask", "toner", "eye cream",
    "sunscreen", "body lotion", "retinol oil", "lip balm", "moisturiser", "exfoliating scrub",
)  # fmt: skip
_BODIES: dict[str, tuple[str, ...]] = {
    "refund": (
        "I would like my money returned for the {p}, it is not what I expected.",
        "Can you reimburse me for order {o}? I sent the {p} back last week.",
        "I returned the {p} two weeks ago and still have not been credited.",
        "Please give me a refund for the {p}, I do not want it anymore.",
        "I want my money back for order {o}.",
        "How do I get reimbursed for the {p}? The return label was used already.",
        "I opened a dispute with my bank because nobody credited my return of the {p}.",
    ),
    "reaction": (
        "After using the {p} my face got red and itchy.",
        "The {p} gave me a rash on my cheeks and neck.",
        "My skin is burning since I applied the {p} yesterday.",
        "I broke out in hives after two days with the {p}.",
        "My eyes are swollen after I used the {p}, is this normal?",
        "I think I am allergic to something in the {p}, my skin is irritated.",
        "Small red bumps appeared everywhere the {p} touched my skin.",
    ),
    "product_issue": (
        "The pump on the {p} does not work, nothing comes out.",
        "The {p} smells strange and the texture has separated.",
        "The cap of the {p} will not close and the dispenser is stuck.",
        "The {p} stopped working after a week, the pump is jammed.",
        "The consistency of the {p} is watery, it seems faulty.",
        "The {p} has lumps in it and looks nothing like before.",
    ),
    "wrong_item": (
        "I ordered the {p} but received a {q} instead.",
        "My package from order {o} had a {q} in it, not the {p} I paid for.",
        "The box was missing the {p}, only the {q} was inside.",
        "You sent me the wrong size of the {p}.",
        "Order {o} is incomplete: the {p} was not in the parcel.",
        "I got someone else's order, there is a {q} and no {p}.",
    ),
    "damaged": (
        "The {p} arrived cracked and the liquid leaked all over the box.",
        "The bottle of {p} was smashed when I opened the parcel.",
        "My parcel came crushed and the {p} jar is shattered.",
        "The {p} leaked in transit, the box is soaked.",
        "The glass of the {p} was in pieces on arrival.",
        "The {p} container was dented and open when it came.",
    ),
    "shipping": (
        "Where is order {o}? It has been ten days.",
        "My parcel has not arrived yet and the tracking has not moved.",
        "The courier says delivered but I never got the package with the {p}.",
        "When will order {o} be dispatched?",
        "How long does delivery take to Canada? I ordered the {p}.",
        "The tracking number for order {o} does not work.",
        "My package seems lost, it was supposed to come on Monday.",
    ),
    "subscription": (
        "Please cancel my monthly box, I have too much {p} already.",
        "Can I pause my plan for two months?",
        "I want to skip next month's delivery of the {p}.",
        "How do I stop the automatic renewal of my membership?",
        "Please change my plan so the {p} comes every other month.",
        "I would like to end my membership after this box.",
    ),
    "billing": (
        "I was charged twice for order {o}.",
        "My card was debited but the order shows as unpaid.",
        "The discount code did not apply at checkout for the {p}.",
        "Can you send me an invoice for order {o} for my company?",
        "There is a charge on my statement I do not recognise.",
        "I paid with PayPal and the amount taken is higher than the total.",
    ),
    "account": (
        "I cannot sign in to my profile, the reset email never comes.",
        "I forgot my password and the link has expired.",
        "How do I change the email address on my profile?",
        "My login stopped working after the website update.",
        "Please delete my profile and my saved addresses.",
        "The site says my email is not registered but I have ordered before.",
    ),
}
# Subjects: vague ones (no rule can read them) and ones with a reason's keyword.
_VAGUE = (
    "Order {o}", "Help please", "Question", "Re: your order", "Hi", "Urgent", "Problem",
    "My order", "{P}", "Contact form", "Need help with {p}", "Following up",
)  # fmt: skip
_KEYWORD_SUBJECTS: dict[str, tuple[str, ...]] = {
    "refund": ("Refund request", "Money back please"),
    "reaction": ("Allergic reaction", "Rash after using {p}"),
    "product_issue": ("Defective {p}", "{P} not working"),
    "wrong_item": ("Wrong item received", "Missing item in order {o}"),
    "damaged": ("{P} arrived damaged", "Leaking bottle"),
    "shipping": ("Where is my order", "Delivery delayed"),
    "subscription": ("Cancel subscription", "Pause subscription"),
    "billing": ("Double charged", "Invoice for order {o}"),
    "account": ("Can't log in", "Password reset"),
}
_MOODS: dict[str, tuple[str, ...]] = {
    "negative": (
        "This is terrible service and I am really angry.",
        "I am so disappointed and frustrated, this is unacceptable.",
        "Awful experience. I will never order again.",
        "Honestly this is the worst, I am furious.",
        "I am very upset and nobody is helping me. Horrible.",
        "What a disaster, I hate how this was handled.",
    ),
    "neutral": (
        "Could you look into it?",
        "Let me know what the next step is.",
        "My order number is {o}.",
        "I can send a photo if needed.",
        "",
    ),
    "positive": (
        "Thanks so much, I love your products!",
        "Your team has always been great, I appreciate the help.",
        "Thank you, happy to wait. The serum is wonderful otherwise.",
        "I really enjoy the brand, thanks for your help!",
    ),
}
_FOLLOW_UPS: dict[str, tuple[str, ...]] = {
    "negative": (
        "Still no answer. This is ridiculous and I am losing patience.",
        "Nobody replied. Terrible.",
    ),
    "neutral": ("Any update on this?", "Just checking in on this."),
    "positive": ("Thanks again for looking into this!", "Great, thank you!"),
}
_FOREIGN = (
    ("es", "Hola, quiero un reembolso del {p}, no me gustó nada el producto que recibí."),
    ("de", "Hallo, mein Paket ist immer noch nicht angekommen, wo ist meine Bestellung?"),
    ("fr", "Bonjour, le flacon est arrivé cassé et le produit a coulé partout dans la boîte."),
)


@dataclass(frozen=True)
class LabelledTicket:
    ticket_id: int
    requester_id: int
    subject: str
    description: str
    follow_up: str  # "" when the customer wrote once
    reason: str  # the truth
    tag: str | None  # the agent's tag (None: untagged)
    mood: str  # negative | neutral | positive
    language: str  # "en", or the language of a foreign-language ticket


# Words people use for the same thing: swapped in at random, so that tickets of a reason do
# not all share the training tickets' words.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "parcel": ("package", "box", "delivery", "shipment"),
    "package": ("parcel", "box", "order"),
    "money": ("cash", "payment", "funds"),
    "skin": ("face", "cheeks", "neck"),
    "received": ("got", "was sent"),
    "charged": ("billed", "debited"),
    "cancel": ("stop", "end", "terminate"),
    "arrived": ("came", "showed up", "turned up"),
    "broken": ("cracked", "busted"),
    "order": ("purchase",),
    "itchy": ("itching", "sore"),
    "refund": ("reimbursement",),
}
# Tickets that say little (the model should not be sure of them) or mix two reasons.
_VAGUE_BODIES = (
    "Please call me back about my order {o}.",
    "See subject. Thanks.",
    "I have a problem with the {p}, can someone contact me?",
    "Hello, I need help with something.",
)


def _reword(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    for i, word in enumerate(words):
        bare = word.strip(".,?!").lower()
        if bare in _SYNONYMS and rng.random() < 0.5:
            words[i] = word.lower().replace(bare, rng.choice(_SYNONYMS[bare]))
    return " ".join(words)


def _typo(rng: random.Random, text: str) -> str:
    """Now and then swap two letters of one word, as people type."""
    words = text.split(" ")
    i = rng.randrange(len(words))
    w = words[i]
    if len(w) > 4 and w.isalpha():
        j = rng.randrange(1, len(w) - 2)
        words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


def labelled_sample(
    n: int, seed: int = 25, *, tagged: float = 0.6, foreign: float = 0.04
) -> list[LabelledTicket]:
    """``n`` tickets; a share ``tagged`` carries an agent's tag, ``foreign`` is not English."""
    rng = random.Random(seed)
    names = sorted(REASONS)
    out = []
    for i in range(n):
        order = str(rng.randrange(10000, 99999))
        product, other = rng.sample(PRODUCTS, 2)

        def fill(text: str, o: str = order, p: str = product, q: str = other) -> str:
            return text.format(o=o, p=p, q=q, P=p.capitalize())

        reason = rng.choice(names)
        mood = rng.choices(("negative", "neutral", "positive"), (0.35, 0.45, 0.2))[0]
        is_tagged = rng.random() < tagged
        language = "en"
        if rng.random() < foreign:
            language, body = rng.choice(_FOREIGN)
            reason = {"es": "refund", "de": "shipping", "fr": "damaged"}[language]
            description, subject, follow_up, mood = fill(body), fill("Order {o}"), "", "negative"
        else:
            first, second = rng.sample(_BODIES[reason], 2)
            parts = [_reword(rng, fill(first))]
            if rng.random() < 0.05:  # says too little to know the reason
                parts = [fill(rng.choice(_VAGUE_BODIES))]
            elif rng.random() < 0.1:  # mentions another reason too (the first one is the truth)
                parts.append(_reword(rng, fill(rng.choice(_BODIES[rng.choice(names)]))))
            elif rng.random() < 0.35:  # a second sentence of the same reason
                parts.append(_reword(rng, fill(second)))
            if rng.random() < 0.15:  # a word of another reason, as people mention things
                parts.append(f"I might ask for a refund if the {product} is not sorted.")
            mood_line = fill(rng.choice(_MOODS[mood]))
            parts.insert(0, mood_line) if rng.random() < 0.4 else parts.append(mood_line)
            description = " ".join(p for p in parts if p)
            if rng.random() < 0.2:
                description = _typo(rng, description)
            keyword = rng.random() < 0.3
            subject = fill(rng.choice(_KEYWORD_SUBJECTS[reason] if keyword else _VAGUE))
            follow_up = fill(rng.choice(_FOLLOW_UPS[mood])) if rng.random() < 0.3 else ""
        tag = rng.choice(REASONS[reason]) if is_tagged else None
        out.append(
            LabelledTicket(
                ticket_id=100_000 + i,
                requester_id=500_000 + i,
                subject=subject,
                description=description,
                follow_up=follow_up,
                reason=reason,
                tag=tag,
                mood=mood,
                language=language,
            )
        )
    return out
