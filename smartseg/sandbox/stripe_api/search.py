"""Stripe's search query language, the subset smartseg can meet: parse once, test many records.

Supported: `field:'value'` (exact, case-insensitive), `field~'sub'` (substring, 3+ characters),
`metadata['key']:'value'`, `field:null`, numeric comparisons (`created>1700000000`),
negation with a leading `-`, and clauses joined by AND or OR (never both, at most 10), as
https://docs.stripe.com/search#search-query-language defines them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from smartseg.sandbox.stripe_api.errors import StripeError

__all__ = ["SEARCH_FIELDS", "Query", "parse_query"]

Record = dict[str, Any]
# Searchable fields per resource: name -> (kind, how to read it from a compact record).
SEARCH_FIELDS: dict[str, dict[str, tuple[str, Callable[[Record], Any]]]] = {
    "customers": {
        "created": ("number", lambda r: r["created"]),
        "email": ("string", lambda r: r.get("email")),
        "name": ("string", lambda r: r.get("name")),
        "phone": ("string", lambda r: r.get("phone")),
    },
    "subscriptions": {
        "created": ("number", lambda r: r["created"]),
        "status": ("token", lambda r: r["status"]),
    },
}
_MAX_CLAUSES = 10
_CLAUSE = re.compile(
    r"""\s*(?P<neg>-)?
    (?P<field>metadata\[(?P<q>['"])(?P<key>[^'"]+)(?P=q)\]|[a-z_]+)
    \s*(?P<op>>=|<=|:|~|>|<)\s*
    (?:'(?P<s1>(?:[^'\\]|\\.)*)'|"(?P<s2>(?:[^"\\]|\\.)*)"|(?P<bare>[^\s'"]+))\s*""",
    re.VERBOSE,
)
_JOIN = re.compile(r"\s+(AND|OR)\s+")


@dataclass(frozen=True, slots=True)
class _Clause:
    negate: bool
    field: str
    metadata_key: str | None
    op: str
    value: str | float | None

    def test(self, record: Record, fields: dict[str, tuple[str, Callable[[Record], Any]]]) -> bool:
        if self.metadata_key is not None:
            actual: Any = record["metadata"].get(self.metadata_key)
        else:
            actual = fields[self.field][1](record)
        return self._compare(actual) != self.negate

    def _compare(self, actual: Any) -> bool:
        if self.value is None:
            return actual is None
        if actual is None:
            return False
        if isinstance(self.value, float):
            number = float(actual)
            return {
                ":": number == self.value,
                ">": number > self.value,
                "<": number < self.value,
                ">=": number >= self.value,
                "<=": number <= self.value,
            }[self.op]
        if self.op == "~":
            return self.value.lower() in str(actual).lower()
        return str(actual).lower() == self.value.lower()


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: clauses joined by one connector."""

    resource: str
    clauses: tuple[_Clause, ...]
    any_of: bool

    def matches(self, record: Record) -> bool:
        fields = SEARCH_FIELDS[self.resource]
        tests = (clause.test(record, fields) for clause in self.clauses)
        return any(tests) if self.any_of else all(tests)


def parse_query(resource: str, text: str) -> Query:
    """Parse `text` for `resource` ("customers", "subscriptions"); 400 on anything invalid."""
    parts = _JOIN.split(text.strip())
    clauses_text, joins = parts[::2], set(parts[1::2])
    if len(joins) > 1:
        _invalid("a query cannot combine AND and OR")
    if len(clauses_text) > _MAX_CLAUSES:
        _invalid(f"a query can have at most {_MAX_CLAUSES} clauses")
    clauses = tuple(_parse_clause(resource, part) for part in clauses_text)
    return Query(resource, clauses, any_of=joins == {"OR"})


def _parse_clause(resource: str, text: str) -> _Clause:
    found = _CLAUSE.fullmatch(text)
    if not found:
        _invalid(f"could not parse {text.strip()!r}")
    fields = SEARCH_FIELDS[resource]
    field, key, op = found["field"], found["key"], found["op"]
    quoted = found["s1"] if found["s1"] is not None else found["s2"]
    if key is None and field not in fields:
        raise StripeError(
            400,
            f"Field '{field}' is an unsupported search field for resource {resource}. See "
            f"http://stripe.com/docs/search#query-fields-for-{resource} for a list of "
            "supported fields.",
            param="query",
        )
    kind = "string" if key is not None else fields[field][0]
    value: str | float | None
    if quoted is None and found["bare"] == "null":
        value = None
    elif kind == "number":
        raw = quoted if quoted is not None else found["bare"]
        try:
            value = float(raw)
        except ValueError:
            _invalid(f"{field} takes a number, not {raw!r}")
    elif quoted is None:
        _invalid(f"the value for {field} must be quoted")
    else:
        value = re.sub(r"\\(.)", r"\1", quoted)
        if op not in (":", "~"):
            _invalid(f"{op} compares numbers; {field} is a string field")
        if op == "~" and (kind != "string" or len(value) < 3):
            _invalid("substring search (~) needs a string field and at least 3 characters")
    metadata_key = key if field.startswith("metadata[") else None
    return _Clause(found["neg"] is not None, field, metadata_key, op, value)


def _invalid(reason: str) -> NoReturn:
    raise StripeError(400, f"The search query is invalid: {reason}.", param="query")
