"""A learned reason model as plain numbers, applied in pure Python.

scikit-learn trains it (``tactful.reasons.train``): TF-IDF over a ticket's distinct words
(binary term frequency, L2-normalised) and multinomial logistic regression. What is kept is
the vocabulary, the IDF weights, one coefficient row and intercept per reason: applying it
is a sparse dot product and a softmax over the ticket's known words, in a fixed order, so
every replay gives the same reason and confidence (no library version can change them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CONFIDENCE_PLACES = 3


@dataclass(frozen=True)
class ReasonModel:
    """``coef[w]``: the coefficient of word ``w`` for each reason (in ``reasons`` order)."""

    version: int
    reasons: tuple[str, ...]
    idf: Mapping[str, float]
    coef: Mapping[str, tuple[float, ...]]
    intercept: tuple[float, ...]
    report: Mapping[str, Any] = field(default_factory=dict)  # held-out figures

    def weights(self, terms: Iterable[str]) -> list[tuple[str, float]]:
        """The ticket's known words and their TF-IDF weight (L2-normalised), sorted."""
        idf = self.idf
        known = sorted({t for t in terms if t in idf})
        norm = math.sqrt(sum(idf[t] * idf[t] for t in known))
        return [(t, idf[t] / norm) for t in known] if norm else []

    def scores(self, terms: Iterable[str]) -> list[float] | None:
        """The probability of each reason, or None when no word of the ticket is known."""
        weights = self.weights(terms)
        if not weights:
            return None
        logits = list(self.intercept)
        for term, weight in weights:
            for k, c in enumerate(self.coef[term]):
                logits[k] += weight * c
        top = max(logits)
        exps = [math.exp(x - top) for x in logits]
        total = sum(exps)
        return [e / total for e in exps]

    def predict(self, terms: Iterable[str]) -> tuple[str, float] | None:
        """The likeliest reason and its probability (rounded), or None (no known word)."""
        scores = self.scores(terms)
        if scores is None:
            return None
        best = max(range(len(scores)), key=lambda k: (scores[k], -k))
        return self.reasons[best], round(scores[best], CONFIDENCE_PLACES)

    def explain(self, terms: Iterable[str], reason: str, top: int = 8) -> list[tuple[str, float]]:
        """The words that pushed most toward ``reason`` (weight × coefficient), largest
        first; words pushing away from it are left out."""
        if reason not in self.reasons:
            return []
        k = self.reasons.index(reason)
        pushes = [(t, w * self.coef[t][k]) for t, w in self.weights(terms)]
        pushes = [(t, round(p, 4)) for t, p in pushes if p > 0]
        pushes.sort(key=lambda tp: (-tp[1], tp[0]))
        return pushes[:top]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "reasons": list(self.reasons),
            "intercept": list(self.intercept),
            "words": {t: [self.idf[t], *self.coef[t]] for t in sorted(self.idf)},
            "report": dict(self.report),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReasonModel:
        words: Mapping[str, Sequence[float]] = data["words"]
        return cls(
            version=int(data["version"]),
            reasons=tuple(data["reasons"]),
            idf={t: float(v[0]) for t, v in words.items()},
            coef={t: tuple(float(x) for x in v[1:]) for t, v in words.items()},
            intercept=tuple(float(x) for x in data["intercept"]),
            report=dict(data.get("report") or {}),
        )
