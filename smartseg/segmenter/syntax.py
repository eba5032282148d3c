"""The rule language's grammar and syntax tree: `when:` text in, position-carrying nodes out.

Parsing knows nothing of fields, types or SQL; `check.py` resolves names and types, `compile.py`
prints SQL. Every node keeps the [start, end) offsets of its text so that any later error can
put a caret under the spot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

__all__ = [
    "AGGREGATES",
    "Aggregate",
    "Between",
    "Binary",
    "Call",
    "Expr",
    "In",
    "IsNull",
    "ListOf",
    "Literal",
    "Name",
    "RuleSyntaxError",
    "Span",
    "Unary",
    "Window",
    "parse",
    "parse_duration_days",
]

AGGREGATES = ("any", "no", "all", "count", "sum", "avg", "min", "max", "latest")
_UNIT_DAYS = {"d": 1, "w": 7, "mo": 30, "y": 365}

_GRAMMAR = r"""
?start: expr

?expr: expr _OR conj            -> or_
     | conj
?conj: conj _AND neg            -> and_
     | neg
?neg: _NOT neg                  -> not_
    | pred
?pred: sum COMP sum             -> compare
     | sum _IN "(" items ")"    -> in_
     | sum _NOT _IN "(" items ")"  -> not_in
     | sum _BETWEEN sum _AND sum   -> between
     | sum _NOT _BETWEEN sum _AND sum -> not_between
     | sum _IS _NULL            -> is_null
     | sum _IS _NOT _NULL       -> is_not_null
     | sum
?sum: sum ADDOP product         -> arith
    | product
?product: product MULOP unary   -> arith
    | unary
?unary: "-" unary               -> negate
      | atom
?atom: NUMBER                   -> number
     | PERCENT                  -> percent
     | DURATION                 -> duration
     | DURATION _BEFORE DURATION -> window_before
     | _PREVIOUS DURATION       -> window_previous
     | _FIRST DURATION          -> window_first
     | STRING                   -> string
     | _TRUE                    -> true
     | _FALSE                   -> false
     | _NULL                    -> null
     | NAME ("." NAME)*         -> name
     | NAME "(" [items] ")"     -> call
     | NAME "." NAME "(" [items] ")" -> dotted_call
     | AGG NAME "(" [items] ")" -> aggregate
     | "[" [items] "]"          -> list_
     | "(" expr ")"

items: expr ("," expr)*

_OR.2: /or\b/i
_AND.2: /and\b/i
_NOT.2: /not\b/i
_IN.2: /in\b/i
_BETWEEN.2: /between\b/i
_IS.2: /is\b/i
_NULL.2: /null\b/i
_TRUE.2: /true\b/i
_FALSE.2: /false\b/i
_PREVIOUS.2: /previous\b(?=\s*[0-9])/i
_FIRST.2: /first\b(?=\s*[0-9])/i
_BEFORE.2: /before\b/i
AGG.3: /(any|no|all|count|sum|avg|min|max|latest)\b(?=\s+[A-Za-z_])/i

COMP: "<=" | ">=" | "!=" | "<>" | "=" | "<" | ">"
ADDOP: "+" | "-"
MULOP: "*" | "/"
DURATION.2: /[0-9]+(mo|d|w|y)\b/
PERCENT.2: /[0-9]+(\.[0-9]+)?%/
NUMBER: /[0-9]+(\.[0-9]+)?/
STRING: /'([^'\\]|\\.|'')*'/ | /"([^"\\]|\\.|"")*"/
NAME: /[A-Za-z_][A-Za-z0-9_]*/

COMMENT: /#[^\n]*/
%import common.WS
%ignore WS
%ignore COMMENT
"""

_KEYWORDS = frozenset(
    {"and", "or", "not", "in", "between", "is", "null", "true", "false", "previous", "first"}
    | {"before"}
)


@dataclass(frozen=True, slots=True)
class Span:
    """Offsets [start, end) of a node's text in the rule."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Expr:
    """Base of every syntax node."""

    span: Span


@dataclass(frozen=True, slots=True)
class Literal(Expr):
    """A constant: number, text, true/false, null, or a duration in days (`kind` says which)."""

    value: Any
    kind: str  # "number" | "text" | "bool" | "null" | "duration"


@dataclass(frozen=True, slots=True)
class Window(Expr):
    """A time window in days: the `length` days ending `before` days before the evaluation day,
    or, with `first`, the first `length` days from the start date."""

    length: int
    before: int = 0
    first: bool = False


@dataclass(frozen=True, slots=True)
class Name(Expr):
    """A field or named metric, possibly dotted (`account.edition`)."""

    parts: tuple[str, ...]

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True)
class Call(Expr):
    """A function call: `days_until(renewal_date)`, `events(30d, 'dashboards')`."""

    name: str
    args: tuple[Expr, ...]
    name_span: Span


@dataclass(frozen=True, slots=True)
class Aggregate(Expr):
    """An aggregate over related rows: `any contact(role = 'Decision Maker')`, `latest nps(x)`."""

    op: str
    table: str
    args: tuple[Expr, ...]
    table_span: Span


@dataclass(frozen=True, slots=True)
class ListOf(Expr):
    """`[a, b]` or the items after `in`."""

    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Unary(Expr):
    """`not x` or `-x`."""

    op: str
    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary(Expr):
    """`and`, `or`, a comparison or arithmetic; `op` is normalised (`<>` becomes `!=`)."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class In(Expr):
    operand: Expr
    items: ListOf
    negated: bool


@dataclass(frozen=True, slots=True)
class Between(Expr):
    operand: Expr
    low: Expr
    high: Expr
    negated: bool


@dataclass(frozen=True, slots=True)
class IsNull(Expr):
    operand: Expr
    negated: bool


class RuleSyntaxError(ValueError):
    """A rule's text does not parse; `start`/`end` locate the spot within the text."""

    def __init__(self, message: str, start: int, end: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.start = start
        self.end = end if end is not None else start + 1


def parse_duration_days(text: str) -> int:
    """`30d` -> 30, `2w` -> 14, `3mo` -> 90, `1y` -> 365 (months are 30 days, years 365)."""
    match = re.fullmatch(r"([0-9]+)(mo|d|w|y)", text)
    if match is None:
        raise ValueError(f"not a duration: {text!r}")
    return int(match.group(1)) * _UNIT_DAYS[match.group(2)]


def _span(meta: Any) -> Span:
    return Span(meta.start_pos, meta.end_pos)


def _tok_span(token: Token) -> Span:
    start = token.start_pos or 0
    return Span(start, token.end_pos if token.end_pos is not None else start + len(token))


def _unquote(text: str) -> str:
    quote = text[0]
    body = text[1:-1].replace(quote * 2, quote)
    return re.sub(r"\\(.)", r"\1", body)


@v_args(meta=True)
class _Build(Transformer[Token, Expr]):
    """Turn lark's parse tree into syntax nodes, keeping offsets."""

    def or_(self, meta: Any, c: list[Any]) -> Expr:
        return Binary(_span(meta), "or", c[0], c[1])

    def and_(self, meta: Any, c: list[Any]) -> Expr:
        return Binary(_span(meta), "and", c[0], c[1])

    def not_(self, meta: Any, c: list[Any]) -> Expr:
        return Unary(_span(meta), "not", c[0])

    def compare(self, meta: Any, c: list[Any]) -> Expr:
        op = "!=" if str(c[1]) == "<>" else str(c[1])
        return Binary(_span(meta), op, c[0], c[2])

    def in_(self, meta: Any, c: list[Any]) -> Expr:
        return In(_span(meta), c[0], ListOf(_span(meta), tuple(c[1])), False)

    def not_in(self, meta: Any, c: list[Any]) -> Expr:
        return In(_span(meta), c[0], ListOf(_span(meta), tuple(c[1])), True)

    def between(self, meta: Any, c: list[Any]) -> Expr:
        return Between(_span(meta), c[0], c[1], c[2], False)

    def not_between(self, meta: Any, c: list[Any]) -> Expr:
        return Between(_span(meta), c[0], c[1], c[2], True)

    def is_null(self, meta: Any, c: list[Any]) -> Expr:
        return IsNull(_span(meta), c[0], False)

    def is_not_null(self, meta: Any, c: list[Any]) -> Expr:
        return IsNull(_span(meta), c[0], True)

    def arith(self, meta: Any, c: list[Any]) -> Expr:
        return Binary(_span(meta), str(c[1]), c[0], c[2])

    def negate(self, meta: Any, c: list[Any]) -> Expr:
        return Unary(_span(meta), "-", c[0])

    def number(self, meta: Any, c: list[Any]) -> Expr:
        text = str(c[0])
        value: int | float = float(text) if "." in text else int(text)
        return Literal(_span(meta), value, "number")

    def percent(self, meta: Any, c: list[Any]) -> Expr:
        return Literal(_span(meta), float(str(c[0])[:-1]) / 100, "number")

    def duration(self, meta: Any, c: list[Any]) -> Expr:
        return Literal(_span(meta), parse_duration_days(str(c[0])), "duration")

    def window_before(self, meta: Any, c: list[Any]) -> Expr:
        return Window(
            _span(meta), parse_duration_days(str(c[0])), before=parse_duration_days(str(c[1]))
        )

    def window_previous(self, meta: Any, c: list[Any]) -> Expr:
        days = parse_duration_days(str(c[0]))
        return Window(_span(meta), days, before=days)

    def window_first(self, meta: Any, c: list[Any]) -> Expr:
        return Window(_span(meta), parse_duration_days(str(c[0])), first=True)

    def string(self, meta: Any, c: list[Any]) -> Expr:
        return Literal(_span(meta), _unquote(str(c[0])), "text")

    def true(self, meta: Any, c: list[Any]) -> Expr:
        return Literal(_span(meta), True, "bool")

    def false(self, meta: Any, c: list[Any]) -> Expr:
        return Literal(_span(meta), False, "bool")

    def null(self, meta: Any, c: list[Any]) -> Expr:
        return Literal(_span(meta), None, "null")

    def name(self, meta: Any, c: list[Any]) -> Expr:
        return Name(_span(meta), tuple(str(t) for t in c))

    def call(self, meta: Any, c: list[Any]) -> Expr:
        args = tuple(c[1]) if c[1] is not None else ()
        return Call(_span(meta), str(c[0]).lower(), args, _tok_span(c[0]))

    def dotted_call(self, meta: Any, c: list[Any]) -> Expr:
        args = tuple(c[2]) if c[2] is not None else ()
        name_span = Span(_tok_span(c[0]).start, _tok_span(c[1]).end)
        return Call(_span(meta), f"{c[0]}.{c[1]}".lower(), args, name_span)

    def aggregate(self, meta: Any, c: list[Any]) -> Expr:
        args = tuple(c[2]) if c[2] is not None else ()
        return Aggregate(_span(meta), str(c[0]).lower(), str(c[1]).lower(), args, _tok_span(c[1]))

    def list_(self, meta: Any, c: list[Any]) -> Expr:
        return ListOf(_span(meta), tuple(c[0]) if c[0] is not None else ())

    def items(self, meta: Any, c: list[Any]) -> Any:
        return list(c)


_PARSER = Lark(_GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=True)

_FRIENDLY = {
    "_OR": "or",
    "_AND": "and",
    "_NOT": "not",
    "_IN": "in",
    "_BETWEEN": "between",
    "_IS": "is",
    "_NULL": "null",
    "_TRUE": "true",
    "_FALSE": "false",
    "_BEFORE": "before",
    "_PREVIOUS": "previous",
    "_FIRST": "first",
    "COMP": "a comparison (=, !=, <, <=, >, >=)",
    "ADDOP": "+ or -",
    "MULOP": "* or /",
    "NUMBER": "a number",
    "PERCENT": "a percentage",
    "DURATION": "a duration like 30d",
    "STRING": "a quoted text",
    "NAME": "a field or function name",
    "AGG": "an aggregate (any, no, count...)",
    "LPAR": "(",
    "RPAR": ")",
    "LSQB": "[",
    "RSQB": "]",
    "COMMA": ",",
    "MINUS": "-",
    "DOT": ".",
    "$END": "the end of the rule",
}


def _expected(names: set[str], before: str = "") -> str:
    if {"NAME", "NUMBER", "STRING"} <= names:
        return "a value (a number, a 'quoted text', a field or a function)"
    if names & {"COMP", "_AND", "_OR", "$END"} and not names & {"NAME", "NUMBER"}:
        bare = re.sub(r"'([^'\\\\]|\\\\.|'')*'|\"([^\"\\\\]|\\\\.|\"\")*\"", "", before)
        closers = [c for o, c in ("()", "[]") if bare.count(o) > bare.count(c)]
        tail = f", {' or '.join(closers)}" if closers else ""
        return f"an operator, 'and' or 'or'{tail}"
    shown = sorted({_FRIENDLY.get(n, n.lower().lstrip("_")) for n in names})
    return ", ".join(shown[:6]) + (", ..." if len(shown) > 6 else "")


def _found(token: Token | None) -> str:
    if token is None or token.type == "$END":
        return "the end of the rule"
    return repr(str(token))


def parse(text: str) -> Expr:
    """Parse one `when:` expression; raise RuleSyntaxError with the offset of the problem."""
    if not text.strip():
        raise RuleSyntaxError("the rule is empty; write a condition such as status = 'Customer'", 0)
    control = re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", text)
    if control is not None:
        # SQLite's LIKE stops at NUL and PostgreSQL refuses it: no rule needs one.
        raise RuleSyntaxError(
            f"control character U+{ord(control.group()):04X} is not allowed in a rule",
            control.start(),
        )
    try:
        tree = _PARSER.parse(text)
    except UnexpectedCharacters as exc:
        at = exc.pos_in_stream or 0
        char = text[at]
        hint = ""
        if char in "\"'":
            hint = " (a text value is missing its closing quote)"
        raise RuleSyntaxError(f"unexpected character {char!r}{hint}", at) from None
    except UnexpectedToken as exc:
        token = exc.token
        start = token.start_pos if token.start_pos is not None else len(text)
        found = _found(token)
        if token.type == "NAME" and start > 0 and text[start - 1].isdigit():
            digits = re.search(r"[0-9.]+$", text[:start])
            begin = digits.start() if digits else start
            raise RuleSyntaxError(
                f"{text[begin:start]}{token} is not a duration; write days, weeks, months or "
                "years as 30d, 2w, 3mo or 1y",
                begin,
                start + len(str(token)),
            ) from None
        if token.type == "$END":
            start = len(text.rstrip())
        message = f"expected {_expected(set(exc.expected), text[:start])} but found {found}"
        if token.type == "NAME" and str(token).lower() in {"and", "or"}:
            message += f" (is something missing before {str(token)!r}?)"
        if token.type == "COMP" and text[max(0, start - 1)] in "=<>!":
            message = f"unexpected {found} (compare with a single =, or with <=, >=, !=)"
        raise RuleSyntaxError(message, start, start + max(1, len(str(token)))) from None
    except UnexpectedEOF as exc:
        raise RuleSyntaxError(
            f"the rule ends too early; expected {_expected(set(exc.expected))}", len(text)
        ) from None
    except UnexpectedInput as exc:  # pragma: no cover - lark's remaining cases
        raise RuleSyntaxError(str(exc).splitlines()[0], getattr(exc, "pos_in_stream", 0)) from None
    result = _Build().transform(tree)
    if not isinstance(result, Expr):  # pragma: no cover - the grammar always yields a node
        raise RuleSyntaxError("the rule did not parse into an expression", 0)
    return result


def is_keyword(word: str) -> bool:
    """True for words the language reserves (they cannot name a field)."""
    return word.lower() in _KEYWORDS or word.lower() in AGGREGATES
