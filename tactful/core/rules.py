"""The rules language of ``[[states]]`` and ``[[segments]]``: parse once, evaluate fast.

A rule is a boolean expression over the fields of a person's support state (product.md
section 5). ``parse_rule`` type-checks it against a field schema and compiles it into nested
closures; ``Rule.evaluate(values, now)`` returns the value *and* the next moment at which the
passing of time alone could change it, so the engine sleeps until then instead of rescanning.

Rules:

    rule      := and ("or" and)*
    and       := not ("and" not)*
    not       := "not" not | "(" rule ")" | predicate
    predicate := operand
               | operand ("==" | "!=" | "<" | "<=" | ">" | ">=") operand
               | operand ["not"] "in" operand
               | field "is" ["not"] "null"
               | field "within" DURATION | field "older" "than" DURATION
    operand   := field | "str" | 'str' | integer | decimal | "true" | "false"
               | "[" literal, ... "]"
    DURATION  := integer unit, unit one of m h d w              30m 12h 7d 2w

    form                      holds when                                  field types
    f                         f is True                                   bool
    a == b   a != b           both set and equal / different              bool int str
    a < b  <=  >  >=          both set and ordered so                     int float str
    f in [l1, l2]             f set and equal to one of the literals      int str
    "x" in f   s in f         list f set and contains the string          list (s: str)
    a not in b                both set and the ``in`` form does not hold  as ``in``
    f is null / is not null   f unset (None or missing) / set             any
    f within D                f set and now - f <= D                      time
    f older than D            f set and now - f > D                       time

- Any comparison with an unset field is false, ``!=`` and ``not in`` included; only
  ``is null`` holds for it. ``not`` is plain negation: ``not has_open_ticket`` holds when the
  field is unset. A comparison needs at least one field; time fields take only ``within``,
  ``older than`` and ``is null``.
- Precedence: ``not`` > ``and`` > ``or``; parentheses group. Keywords are case-insensitive,
  field names are lower-case identifiers. Strings take backslash escapes.
- ``evaluate`` returns ``(value, next_change)``: with the same values the result is ``value``
  at every instant of ``[now, next_change)``, or of ``[now, ∞)`` when ``next_change`` is
  None; ``next_change > now`` always. ``x within D`` is true up to and including ``x + D``
  and false from ``x + D + 1µs``; ``x older than D`` flips at that same instant.
- A ``float`` field compares with decimals (``-0.5``) and integers alike.
- Values must match the schema (bool, int, float, str, aware UTC datetime, list/tuple/set
  of str);
  evaluation does not check them, so it never raises on well-typed input.
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

__all__ = ["FieldType", "Rule", "RuleError", "parse_duration", "parse_rule"]

FieldType = Literal["bool", "int", "float", "str", "time", "list"]
Values = Mapping[str, object]
Static = Callable[[Values], bool]
Timed = Callable[[Values, datetime], tuple[bool, datetime | None]]

_TRUE_NEVER: tuple[bool, datetime | None] = (True, None)
_FALSE_NEVER: tuple[bool, datetime | None] = (False, None)
_US = timedelta(microseconds=1)
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}  # seconds per unit
_MAX_SECONDS = 100 * 366 * 86400  # longer windows are a typo, and would overflow datetime
_KEYWORDS = frozenset(
    {"and", "or", "not", "in", "is", "null", "within", "older", "than", "true", "false"}
)
_DIGITS = frozenset("0123456789")
_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_") | _DIGITS
_ESCAPES = {"n": "\n", "t": "\t"}
_ORDERING = frozenset({"<", "<=", ">", ">="})
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


class RuleError(Exception):
    """A rule that does not parse or does not type-check, with where the problem is."""

    def __init__(self, message: str, rule_name: str, text: str, position: int) -> None:
        super().__init__(message, rule_name, text, position)
        self.message = message
        self.rule_name = rule_name
        self.text = text
        self.position = position  # 0-based character offset into text
        self.line = text.count("\n", 0, position) + 1
        self.column = position - (text.rfind("\n", 0, position) + 1) + 1

    def __str__(self) -> str:
        start = self.position - self.column + 1
        end = self.text.find("\n", start)
        source = self.text[start : end if end >= 0 else len(self.text)]
        pad = "".join("\t" if c == "\t" else " " for c in source[: self.column - 1])
        return (
            f"rule {self.rule_name!r}: {self.message} at line {self.line}, column {self.column}"
            f"\n    {source}\n    {pad}^"
        )


def parse_duration(text: str) -> timedelta:
    """Parse ``30m``, ``12h``, ``7d`` or ``2w`` (whitespace around is ignored)."""
    s = text.strip()
    digits, unit = s[:-1], s[-1:].lower()
    if s and set(s) <= _DIGITS:
        raise ValueError(f"duration {text!r} is missing its unit (m, h, d or w), e.g. {s}d")
    if not digits or not set(digits) <= _DIGITS or unit not in _UNITS:
        raise ValueError(f"invalid duration {text!r}: expected an integer and a unit m, h, d or w")
    seconds = int(digits) * _UNITS[unit]
    if seconds > _MAX_SECONDS:
        raise ValueError(f"duration {text!r} is longer than 100 years")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Rule:
    """A compiled rule; ``evaluate`` is pure and safe to call from any thread."""

    name: str
    text: str
    fields_used: frozenset[str]
    _fn: Timed = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        # The hot path calls the compiled closure itself (no method call in between); the
        # method below documents it and is what a subclass or a copy without it would use.
        object.__setattr__(self, "evaluate", self._fn)

    def evaluate(self, values: Values, now: datetime) -> tuple[bool, datetime | None]:
        """Return ``(value, next_change)``; see the module docstring for the contract."""
        return self._fn(values, now)


def parse_rule(text: str, *, name: str, fields: Mapping[str, FieldType]) -> Rule:
    """Parse, type-check against ``fields`` and compile ``text``; raise RuleError."""
    parser = _Parser(text, name, fields)
    static, timed = parser.parse()
    if timed is None:
        assert static is not None
        timed = _static_root(static)
    return Rule(name, text, frozenset(parser.used), timed)


# --- tokens and operands -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # name kw str int dur op ( ) [ ] , end
    text: str
    pos: int
    value: Any = None


@dataclass(frozen=True, slots=True)
class _Operand:
    kind: str  # field, lit or list
    type: str  # a FieldType; for a list literal, the element type ("" when empty)
    value: Any  # field name, literal value, or tuple of literal values
    pos: int
    text: str

    def describe(self) -> str:
        if self.kind == "field":
            return f"{self.type} field '{self.value}'"
        return f"list {self.text}" if self.kind == "list" else f"{self.type} {self.text}"


_Node = tuple[Static | None, Timed | None]  # exactly one is set


class _Parser:
    def __init__(self, text: str, name: str, fields: Mapping[str, FieldType]) -> None:
        self.text, self.name, self.fields = text, name, fields
        self.used: set[str] = set()
        self.toks = self._tokenize()
        self.i = 0

    def error(self, message: str, pos: int) -> RuleError:
        return RuleError(message, self.name, self.text, pos)

    def _tokenize(self) -> list[_Tok]:
        text, n, i, toks = self.text, len(self.text), 0, []
        while i < n:
            c, start = text[i], i
            if c.isspace():
                i += 1
                continue
            if c in _WORD and c not in _DIGITS:
                while i < n and text[i] in _WORD:
                    i += 1
                word = text[start:i]
                kw = word.lower() in _KEYWORDS
                toks.append(_Tok("kw" if kw else "name", word.lower() if kw else word, start))
            elif c in _DIGITS or (c == "-" and i + 1 < n and text[i + 1] in _DIGITS):
                i += 1
                while i < n and text[i] in _DIGITS:
                    i += 1
                if i < n and text[i] in _WORD:  # a duration: digits and a unit
                    while i < n and text[i] in _WORD:
                        i += 1
                    try:
                        toks.append(
                            _Tok("dur", text[start:i], start, parse_duration(text[start:i]))
                        )
                    except ValueError as e:
                        raise self.error(str(e), start) from None
                elif i + 1 < n and text[i] == "." and text[i + 1] in _DIGITS:  # a decimal
                    i += 1
                    while i < n and text[i] in _DIGITS:
                        i += 1
                    toks.append(_Tok("float", text[start:i], start, float(text[start:i])))
                else:
                    toks.append(_Tok("int", text[start:i], start, int(text[start:i])))
            elif c in "\"'":
                i, chars = i + 1, []
                while i < n and text[i] != c:
                    if text[i] == "\\" and i + 1 < n:
                        i += 1
                        chars.append(_ESCAPES.get(text[i], text[i]))
                    else:
                        chars.append(text[i])
                    i += 1
                if i >= n:
                    raise self.error("unterminated string", start)
                i += 1
                toks.append(_Tok("str", text[start:i], start, "".join(chars)))
            elif text.startswith(("==", "!=", "<=", ">="), i):
                i += 2
                toks.append(_Tok("op", text[start:i], start))
            elif c in "<>":
                i += 1
                toks.append(_Tok("op", c, start))
            elif c in "()[],":
                i += 1
                toks.append(_Tok(c, c, start))
            elif c in "=!":
                raise self.error(f"unexpected {c!r} (use '==' or '!=')", start)
            else:
                raise self.error(f"unexpected character {c!r}", start)
        toks.append(_Tok("end", "end of rule", n))
        return toks

    def peek(self, kw: str = "") -> bool:
        tok = self.toks[self.i]
        return tok.kind == "kw" and tok.text == kw

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def unexpected(self, expected: str) -> RuleError:
        tok = self.toks[self.i]
        found = tok.text if tok.kind == "end" else f"'{tok.text}'"
        return self.error(f"expected {expected}, found {found}", tok.pos)

    # --- grammar ---------------------------------------------------------------------------

    def parse(self) -> _Node:
        if self.toks[0].kind == "end":
            raise self.error("empty rule", 0)
        node = self.or_()
        if self.toks[self.i].kind != "end":
            raise self.unexpected("'and', 'or' or end of rule")
        return node

    def or_(self) -> _Node:
        nodes = [self.and_()]
        while self.peek("or"):
            self.i += 1
            nodes.append(self.and_())
        return nodes[0] if len(nodes) == 1 else _combine(nodes, is_and=False)

    def and_(self) -> _Node:
        nodes = [self.not_()]
        while self.peek("and"):
            self.i += 1
            nodes.append(self.not_())
        return nodes[0] if len(nodes) == 1 else _combine(nodes, is_and=True)

    def not_(self) -> _Node:
        if self.peek("not"):
            self.i += 1
            return _negate(self.not_())
        if self.toks[self.i].kind == "(":
            opening = self.take()
            node = self.or_()
            if self.toks[self.i].kind == "end":
                raise self.error("unclosed '('", opening.pos)
            if self.take().kind != ")":
                self.i -= 1
                raise self.unexpected("')', 'and' or 'or'")
            return node
        return self.predicate()

    def predicate(self) -> _Node:
        left = self.operand()
        tok = self.toks[self.i]
        if tok.kind == "op":
            self.i += 1
            return self.compare(left, tok, self.operand())
        if self.peek("in") or self.peek("not"):
            self.i += 1
            if tok.text == "not":
                if not self.peek("in"):
                    raise self.unexpected("'in' after 'not'")
                self.i += 1
            return self.member(left, tok, self.operand(), negate=tok.text == "not")
        if self.peek("is"):
            self.i += 1
            negate = self.peek("not")
            self.i += negate
            if not self.peek("null"):
                raise self.unexpected("'null'")
            self.i += 1
            if left.kind != "field":
                raise self.error("'is null' needs a field", left.pos)
            return (_is_not_null if negate else _is_null)(left.value), None
        if self.peek("within") or self.peek("older"):
            self.i += 1
            if tok.text == "older" and self.take().text != "than":
                self.i -= 1
                raise self.unexpected("'than' after 'older'")
            if left.type != "time" or left.kind != "field":
                what = "within" if tok.text == "within" else "older than"
                raise self.error(f"'{what}' needs a time field, found {left.describe()}", tok.pos)
            return None, _window(left.value, self.duration(), within=tok.text == "within")
        if left.kind == "field" and left.type == "bool":
            return _bool_field(left.value), None
        if left.kind == "lit" and left.type == "bool":
            return (_always if left.value else _never), None
        hint = "; use 'within' or 'older than'" if left.type == "time" else ""
        raise self.error(f"{left.describe()} is not a condition{hint}", left.pos)

    def duration(self) -> timedelta:
        tok = self.take()
        if tok.kind == "dur":
            return tok.value  # type: ignore[no-any-return]
        self.i -= 1
        if tok.kind == "int":
            raise self.error(f"missing duration unit after {tok.text} (m, h, d or w)", tok.pos)
        raise self.unexpected("a duration such as 7d")

    def operand(self) -> _Operand:
        tok = self.take()
        if tok.kind == "name":
            if tok.text not in self.fields:
                close = difflib.get_close_matches(tok.text, list(self.fields), 1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise self.error(f"unknown field '{tok.text}'{hint}", tok.pos)
            self.used.add(tok.text)
            return _Operand("field", self.fields[tok.text], tok.text, tok.pos, tok.text)
        if tok.kind in ("str", "int", "float") or (
            tok.kind == "kw" and tok.text in ("true", "false")
        ):
            kind = "bool" if tok.kind == "kw" else tok.kind
            value = tok.text == "true" if kind == "bool" else tok.value
            return _Operand("lit", kind, value, tok.pos, tok.text)
        if tok.kind == "[":
            items: list[_Operand] = []
            while self.toks[self.i].kind != "]":
                item = self.operand()
                if item.kind != "lit" or item.type in ("bool", "float"):
                    raise self.error("a list holds only strings or integers", item.pos)
                if items and item.type != items[0].type:
                    raise self.error(f"list mixes {items[0].type} and {item.type}", item.pos)
                items.append(item)
                if self.toks[self.i].kind == ",":
                    self.i += 1
                elif self.toks[self.i].kind != "]":
                    raise self.unexpected("',' or ']'")
            end = self.take().pos + 1
            elem = items[0].type if items else ""
            values = tuple(x.value for x in items)
            return _Operand("list", elem, values, tok.pos, self.text[tok.pos : end])
        self.i -= 1
        if tok.kind == "dur":
            raise self.error("a duration can only follow 'within' or 'older than'", tok.pos)
        raise self.unexpected("a field or a value")

    def compare(self, a: _Operand, tok: _Tok, b: _Operand) -> _Node:
        op = tok.text
        for x in (a, b):
            if x.type == "time":
                msg = f"cannot use '{op}' on {x.describe()}; use 'within', 'older than'"
                raise self.error(msg + " or 'is null'", tok.pos)
            if x.type == "list" or x.kind == "list":
                raise self.error(f"cannot use '{op}' on {x.describe()}; use 'in'", tok.pos)
        if a.kind != "field" and b.kind != "field":
            raise self.error("a comparison needs a field on one side", tok.pos)
        if a.type != b.type and {a.type, b.type} != {"int", "float"}:
            raise self.error(f"cannot compare {a.describe()} with {b.describe()}", tok.pos)
        if op in _ORDERING and a.type == "bool":
            raise self.error(f"cannot order {a.describe()} with '{op}'", tok.pos)
        if a.kind == "field" and b.kind == "field":
            return _field_vs_field(a.value, op, b.value), None
        if a.kind == "field":
            return _field_vs_lit(a.value, op, b.value), None
        return _field_vs_lit(b.value, _FLIP[op], a.value), None

    def member(self, a: _Operand, tok: _Tok, b: _Operand, *, negate: bool) -> _Node:
        if b.kind == "list":
            if a.kind != "field" or a.type not in ("int", "str"):
                raise self.error(
                    f"'{b.text}' needs an int or str field, found {a.describe()}", a.pos
                )
            if b.type not in ("", a.type):
                raise self.error(f"{a.describe()} cannot be in a list of {b.type}", tok.pos)
            return _field_in_set(a.value, frozenset(b.value), negate), None
        if b.kind == "field" and b.type == "list":
            if a.type != "str" or a.kind == "list":
                raise self.error(f"'in {b.value}' needs a string, found {a.describe()}", a.pos)
            if a.kind == "lit":
                return _lit_in_field(a.value, b.value, negate), None
            return _field_in_field(a.value, b.value, negate), None
        raise self.error(f"'in' needs a list on its right, found {b.describe()}", b.pos)


# --- closures: everything below runs on the hot path -----------------------------------------


def _always(v: Values) -> bool:
    return True


def _never(v: Values) -> bool:
    return False


def _bool_field(name: str) -> Static:
    return lambda v: v.get(name) is True


def _is_null(name: str) -> Static:
    return lambda v: v.get(name) is None


def _is_not_null(name: str) -> Static:
    return lambda v: v.get(name) is not None


def _field_vs_lit(name: str, op: str, lit: Any) -> Static:
    if op == "==":
        return lambda v: v.get(name) == lit  # lit is never None, so unset is false
    test = _OPS[op]
    return lambda v: (x := v.get(name)) is not None and test(x, lit)


def _field_vs_field(a: str, op: str, b: str) -> Static:
    test = _OPS[op]
    return lambda v: (x := v.get(a)) is not None and (y := v.get(b)) is not None and test(x, y)


def _field_in_set(name: str, items: frozenset[Any], negate: bool) -> Static:
    if negate:
        return lambda v: (x := v.get(name)) is not None and x not in items
    return lambda v: (x := v.get(name)) is not None and x in items


def _lit_in_field(lit: str, name: str, negate: bool) -> Static:
    if negate:
        return lambda v: (c := v.get(name)) is not None and lit not in c  # type: ignore[operator]
    return lambda v: (c := v.get(name)) is not None and lit in c  # type: ignore[operator]


def _field_in_field(a: str, b: str, negate: bool) -> Static:
    def f(v: Values) -> bool:
        x, c = v.get(a), v.get(b)
        return x is not None and c is not None and (x in c) != negate  # type: ignore[operator]

    return f


def _window(name: str, window: timedelta, *, within: bool) -> Timed:
    edge_after = window + _US  # within holds before x + edge_after, older than from it on

    def f(v: Values, now: datetime) -> tuple[bool, datetime | None]:
        x: Any = v.get(name)
        if x is None:
            return _FALSE_NEVER
        edge: datetime = x + edge_after
        if now < edge:
            return (within, edge)
        return _FALSE_NEVER if within else _TRUE_NEVER

    return f


def _static_root(s: Static) -> Timed:
    return lambda v, now: _TRUE_NEVER if s(v) else _FALSE_NEVER


def _negate(node: _Node) -> _Node:
    s, t = node
    if s is not None:
        return (lambda v: not s(v)), None
    assert t is not None

    def f(v: Values, now: datetime) -> tuple[bool, datetime | None]:
        value, nxt = t(v, now)
        return (not value, nxt)

    return None, f


def _combine(nodes: list[_Node], *, is_and: bool) -> _Node:
    """``and``/``or`` of nodes. Time-independent children are folded into one static closure
    that runs first; the timed ones then decide the value and the next change:
    ``and`` true changes at the earliest child change; ``and`` false is stuck while any false
    child is stuck, i.e. until the latest false child's change (never if one never changes).
    ``or`` is the mirror image."""
    statics = [s for s, _ in nodes if s is not None]
    timeds = tuple(t for _, t in nodes if t is not None)
    s: Static | None = None
    for child in statics:
        s = child if s is None else (_and2 if is_and else _or2)(s, child)
    if not timeds:
        return s, None
    short = _FALSE_NEVER if is_and else _TRUE_NEVER  # what a decisive static child means

    def f(v: Values, now: datetime) -> tuple[bool, datetime | None]:
        if s is not None and s(v) != is_and:
            return short
        soonest: datetime | None = None  # earliest change among non-decisive children
        latest: datetime | None = None  # latest change among decisive children
        decided = False
        for t in timeds:
            value, nxt = t(v, now)
            if value != is_and:  # decisive: false under and, true under or
                if nxt is None:
                    return short
                decided = True
                if latest is None or nxt > latest:
                    latest = nxt
            elif nxt is not None and (soonest is None or nxt < soonest):
                soonest = nxt
        if decided:
            return (not is_and, latest)
        return (is_and, soonest)

    return None, f


def _and2(a: Static, b: Static) -> Static:
    return lambda v: a(v) and b(v)


def _or2(a: Static, b: Static) -> Static:
    return lambda v: a(v) or b(v)
