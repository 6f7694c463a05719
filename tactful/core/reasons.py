"""Ticket reasons: the configured ``[[reasons]]`` mapping applied to a ticket version.

The first rule, in configuration order, that matches names the reason:

- any of its ``tags`` is on the ticket (case-insensitive);
- any of its ``fields`` (Zendesk custom field id -> accepted values) has one of the listed
  values (case-insensitive on values);
- any of its ``keywords`` occurs in the subject as a whole word (case-insensitive;
  ``refund`` matches "need a refund!" but not "refunded"; ``wrong item`` matches across
  any run of whitespace).

No rule matching gives ``("other", False)``. Pure; built once, called for every ticket
version, so all matching structures are precompiled.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["OTHER_REASON", "ReasonClassifier", "ReasonRule"]

OTHER_REASON = "other"


@dataclass(frozen=True)
class ReasonRule:
    """One ``[[reasons]]`` entry."""

    name: str
    tags: frozenset[str] = frozenset()
    keywords: tuple[str, ...] = ()
    fields: Mapping[str, frozenset[str]] = field(default_factory=dict)
    risk: bool = False


def keyword_pattern(keywords: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive regex matching any keyword as a whole word (or ``None``)."""
    parts = []
    for keyword in keywords:
        words = keyword.split()
        if words:
            parts.append(r"\s+".join(re.escape(word) for word in words))
    if not parts:
        return None
    # Longest first so that the alternation prefers "wrong item" over "wrong".
    parts.sort(key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)


class ReasonClassifier:
    """Classify ticket versions by the ordered reason rules."""

    __slots__ = ("_by_field", "_by_keyword", "_by_tag", "_keywords", "_patterns", "_results")

    def __init__(self, rules: Sequence[ReasonRule]) -> None:
        self._results: list[tuple[str, bool]] = [(rule.name, rule.risk) for rule in rules]
        # Lowest rule index for each tag / (field id, value) / keyword: one dict lookup each.
        self._by_tag: dict[str, int] = {}
        self._by_field: dict[tuple[str, str], int] = {}
        self._by_keyword: dict[str, int] = {}
        self._patterns: list[re.Pattern[str] | None] = []
        for index, rule in enumerate(rules):
            for tag in rule.tags:
                self._by_tag.setdefault(tag.strip().casefold(), index)
            for field_id, values in rule.fields.items():
                for value in values:
                    key = (str(field_id).strip(), value.strip().casefold())
                    self._by_field.setdefault(key, index)
            for keyword in rule.keywords:
                if keyword.split():
                    self._by_keyword.setdefault(_phrase(keyword), index)
            self._patterns.append(keyword_pattern(rule.keywords))
        # All keywords in one scan. The lookahead reports a match at every word start (also
        # overlapping ones), and at each start the alternation tries rules in order, so the
        # lowest rule matching anywhere in the subject is among the reported matches.
        alternatives = [
            p.pattern.removeprefix(r"(?<!\w)").removesuffix(r"(?!\w)")
            for p in self._patterns
            if p is not None
        ]
        self._keywords = (
            re.compile(r"(?=(?<!\w)(" + "|".join(alternatives) + r")(?!\w))", re.IGNORECASE)
            if alternatives
            else None
        )

    def classify(
        self,
        tags: Iterable[str],
        subject: str,
        custom_fields: Iterable[tuple[str, str]] = (),
    ) -> tuple[str, bool]:
        """Return ``(reason, risk)`` for a ticket version."""
        reason, risk, _ = self.classify_source(tags, subject, custom_fields)
        return reason, risk

    def classify_source(
        self,
        tags: Iterable[str],
        subject: str,
        custom_fields: Iterable[tuple[str, str]] = (),
    ) -> tuple[str, bool, str]:
        """Return ``(reason, risk, source)``: ``source`` says what matched the winning rule
        (``tag``, then ``field``, then ``keyword`` when several did), ``""`` for ``other``."""
        best = len(self._results)
        source = ""
        by_tag = self._by_tag
        if by_tag:
            for tag in tags:
                index = by_tag.get(tag.casefold())
                if index is not None and index < best:
                    best, source = index, "tag"
        by_field = self._by_field
        if by_field:
            for field_id, value in custom_fields:
                index = by_field.get((field_id, value.strip().casefold()))
                if index is not None and index < best:
                    best, source = index, "field"
        if subject and best and self._keywords is not None:
            for match in self._keywords.finditer(subject):
                index = self._keyword_rule(match.group(1))
                if index < best:
                    best, source = index, "keyword"
                    if not best:
                        break
        if best < len(self._results):
            reason, risk = self._results[best]
            return reason, risk, source
        return OTHER_REASON, False, ""

    def risk_of(self, reason: str) -> bool:
        """Whether the reason named ``reason`` is configured as a risk (unknown: no)."""
        return any(risk for name, risk in self._results if name == reason)

    @property
    def reasons(self) -> list[str]:
        """The configured reason names, in order."""
        return [name for name, _ in self._results]

    def _keyword_rule(self, text: str) -> int:
        index = self._by_keyword.get(_phrase(text))
        if index is None:  # case folding that differs from the regex's: ask each rule
            matching = (i for i, p in enumerate(self._patterns) if p and p.fullmatch(text))
            index = next(matching, len(self._results))
        return index


def _phrase(text: str) -> str:
    return " ".join(text.split()).casefold()
