"""What someone wrote → the few things Tactful keeps of it (the edge; docs/reasons.md).

``reduce(text)`` gives the language, a sentiment score and the distinct words. Nothing else
of the text is kept: no word order, no digits, no e-mail or web addresses, no words longer
than ``MAX_WORD``. Languages Tactful reads are ``SUPPORTED``; a text detected as another
language keeps its language code only, and its ticket's reason is left to the rules.

VADER (``vaderSentiment``) scores English with a lexicon and rules, offline. py3langid
detects the language with the model it ships (no download).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Any

SUPPORTED = frozenset({"en"})
MAX_TERMS = 200
MAX_WORD = 24
MIN_WORD = 2
MAX_CHARS = 20_000  # longer texts are cut: the first part says what the ticket is about
# A detected language counts when the detector is at least this sure; short or mixed texts
# below it count as unknown and are read as if supported.
LANGUAGE_CONFIDENCE = 0.6
_ADDRESS = re.compile(r"\S+@\S+|\b(?:https?://|www\.)\S+", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_TAGS = re.compile(r"<[^>]{0,500}>")
# Words too common to say anything about a reason (kept short: TF-IDF weighs the rest).
STOP_WORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have he her
    hers him his how i i'm i've if in into is it it's its me my of on or our ours she so
    than that the their them then there these they this those to too us was we were what
    when where which who why will with would you your yours hi hello thanks thank regards
    dear please""".split()  # noqa: SIM905
)


@dataclass(frozen=True, slots=True)
class Reduced:
    terms: tuple[str, ...]
    sentiment: float | None
    language: str


def reduce(text: str) -> Reduced:
    """The distinct words, the sentiment and the language of ``text`` (see the module)."""
    text = _TAGS.sub(" ", text[:MAX_CHARS])
    language = detect_language(text)
    if language and language not in SUPPORTED:
        return Reduced((), None, language)
    return Reduced(terms_of(text), sentiment_of(text), language)


def terms_of(text: str) -> tuple[str, ...]:
    """The distinct words of ``text``, lower-case and sorted (see the module)."""
    text = unicodedata.normalize("NFKC", _ADDRESS.sub(" ", text)).casefold()
    words = {
        w for w in _WORD.findall(text) if MIN_WORD <= len(w) <= MAX_WORD and w not in STOP_WORDS
    }
    return tuple(sorted(words)[:MAX_TERMS])


def sentiment_of(text: str) -> float | None:
    """VADER's compound score in [-1, 1], to 4 places (None: nothing to score)."""
    if not text.strip():
        return None
    scores: dict[str, float] = _vader().polarity_scores(text)
    return round(float(scores["compound"]), 4)


# Plain English needs no detector: three of these words in an ASCII text say enough.
_ENGLISH_HINTS = frozenset(
    "the and my was have with this you not is it of for".split()  # noqa: SIM905
)


def detect_language(text: str) -> str:
    """ISO 639-1 code of the text's language, or ``""`` when the detector is not sure."""
    text = _ADDRESS.sub(" ", text)
    if len(text.split()) < 3:
        return ""
    if text.isascii() and len(_ENGLISH_HINTS.intersection(_WORD.findall(text.casefold()))) >= 3:
        return "en"
    code, confidence = _identifier().classify(text)
    return str(code) if float(confidence) >= LANGUAGE_CONFIDENCE else ""


@cache
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
