"""Training a reason model on the store's own tickets (``tactful reasons train``).

Labelled tickets are the counted tickets whose reason came from a tag or a custom field (an
agent's or a form's choice), with words of their own (subject and the requester's texts).
Reasons with fewer than ``min_examples`` of them are not learned. A stratified share
(``held_out``) is kept aside to measure per-reason precision and recall; the model kept is
then fitted on every labelled ticket. One that falls under ``quality_floor`` (macro-averaged
precision or recall on the held-out tickets) is refused: not saved, not activated.
Everything is seeded: the same tickets give the same model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tactful.core.state import TicketRecord
from tactful.reasons.model import ReasonModel
from tactful.reasons.words import model_terms

LABEL_SOURCES = frozenset({"tag", "field"})
MIN_DF = 2  # a word of one ticket only is not learned (nor kept in the model)
SEED = 0


@dataclass(frozen=True)
class Example:
    ticket_id: int
    terms: tuple[str, ...]
    reason: str


@dataclass
class TrainReport:
    examples: int
    reasons: dict[str, dict[str, Any]]  # reason -> support, train, held_out, precision, recall
    skipped_reasons: dict[str, int]  # too few examples
    macro_precision: float | None = None
    macro_recall: float | None = None
    accuracy: float | None = None
    activated: bool = False
    refused: str | None = None
    version: int | None = None
    model: ReasonModel | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "reasons": self.reasons,
            "skipped_reasons": self.skipped_reasons,
            "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall,
            "accuracy": self.accuracy,
            "activated": self.activated,
            "refused": self.refused,
            "version": self.version,
        }


def examples_from(records: Iterable[TicketRecord]) -> list[Example]:
    """The labelled tickets among ``records`` (see the module)."""
    out = []
    for record in records:
        if not record.counted or record.source not in LABEL_SOURCES:
            continue
        terms = model_terms(record)
        if terms:
            out.append(Example(record.ticket_id, terms, record.reason))
    out.sort(key=lambda e: e.ticket_id)
    return out


def train(
    examples: Sequence[Example],
    *,
    version: int,
    held_out: float,
    min_examples: int,
    quality_floor: float,
) -> TrainReport:
    """Measure on a held-out share, then fit on all; ``report.model`` is set unless refused."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support
    from sklearn.model_selection import train_test_split

    counts = Counter(e.reason for e in examples)
    kept = sorted(r for r, n in counts.items() if n >= min_examples)
    skipped = {r: n for r, n in sorted(counts.items()) if n < min_examples}
    usable = [e for e in examples if e.reason in kept]
    report = TrainReport(len(usable), {}, skipped)
    if len(kept) < 2:
        report.refused = (
            f"needs at least 2 reasons with {min_examples} or more labelled tickets each "
            f"(found {len(kept)})"
        )
        return report
    labels = [e.reason for e in usable]
    train_part, test_part = train_test_split(
        usable, test_size=held_out, random_state=SEED, stratify=labels
    )
    measured = _fit(train_part, kept)
    predicted = [_predict_label(measured, e.terms) for e in test_part]
    truth = [e.reason for e in test_part]
    precision, recall, _, support = precision_recall_fscore_support(
        truth, predicted, labels=kept, zero_division=0
    )
    train_counts = Counter(e.reason for e in train_part)
    for k, reason in enumerate(kept):
        report.reasons[reason] = {
            "labelled": counts[reason],
            "train": train_counts[reason],
            "held_out": int(support[k]),
            "precision": round(float(precision[k]), 3),
            "recall": round(float(recall[k]), 3),
        }
    report.macro_precision = round(float(sum(precision) / len(kept)), 3)
    report.macro_recall = round(float(sum(recall) / len(kept)), 3)
    report.accuracy = round(float(accuracy_score(truth, predicted)), 3)
    if min(report.macro_precision, report.macro_recall) < quality_floor:
        report.refused = (
            f"held-out macro precision {report.macro_precision} / recall "
            f"{report.macro_recall} is under the quality floor {quality_floor}"
        )
        return report
    final = _fit(usable, kept)
    figures = report.to_json()
    report.model = ReasonModel(
        version, final.reasons, final.idf, final.coef, final.intercept, figures
    )
    report.version = version
    return report


def _predict_label(model: ReasonModel, terms: Sequence[str]) -> str:
    found = model.predict(terms)
    return "" if found is None else found[0]


def _fit(examples: Sequence[Example], reasons: Sequence[str]) -> ReasonModel:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer=list, binary=True, min_df=MIN_DF, norm="l2")
    matrix = vectorizer.fit_transform([list(e.terms) for e in examples])
    classifier = LogisticRegression(C=4.0, max_iter=2000, random_state=SEED)
    classifier.fit(matrix, [e.reason for e in examples])
    classes = [str(c) for c in classifier.classes_]
    coef = classifier.coef_.tolist()
    intercept = classifier.intercept_.tolist()
    if len(classes) == 2:  # one row: p(classes[1]) = sigmoid(w.x + b) = softmax([0, w.x + b])
        coef = [[0.0] * len(coef[0]), coef[0]]
        intercept = [0.0, intercept[0]]
    vocabulary: dict[str, int] = vectorizer.vocabulary_
    idf = vectorizer.idf_.tolist()
    return ReasonModel(
        version=0,
        reasons=tuple(classes),
        idf={t: float(idf[j]) for t, j in vocabulary.items()},
        coef={t: tuple(float(row[j]) for row in coef) for t, j in vocabulary.items()},
        intercept=tuple(float(b) for b in intercept),
    )
