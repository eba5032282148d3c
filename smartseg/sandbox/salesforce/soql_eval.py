"""Evaluate a parsed SOQL query over in-memory records: a compiled predicate and a sort.

Semantics follow SOQL rather than SQL where they differ: text comparisons ignore case, `!=`
and NOT IN match nulls, date literals such as LAST_N_DAYS:n are ranges (`>` means after the
range), and `;` inside an INCLUDES value means "all of these".
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Callable, Iterable
from typing import Any

from smartseg.sandbox.salesforce.schema import FieldDef
from smartseg.sandbox.salesforce.soql import And, Compare, Condition, Literal, Not, Or, OrderItem
from smartseg.sandbox.salesforce.values import NUMERIC_TYPES

__all__ = ["Record", "compile_where", "date_range", "sort_records"]

Record = dict[str, Any]
Predicate = Callable[[Record], bool]
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _month_start(day: dt.date, months_back: int = 0) -> dt.date:
    index = day.year * 12 + day.month - 1 - months_back
    return dt.date(index // 12, index % 12 + 1, 1)


def date_range(name: str, number: int, today: dt.date) -> tuple[dt.date, dt.date]:
    """A date function literal as the half-open day range [start, end) it stands for."""
    one = dt.timedelta(days=1)
    ranges = {
        "TODAY": (today, today + one),
        "YESTERDAY": (today - one, today),
        "TOMORROW": (today + one, today + 2 * one),
        # LAST_N_DAYS includes today, so it spans n + 1 calendar days.
        "LAST_N_DAYS": (today - number * one, today + one),
        "NEXT_N_DAYS": (today + one, today + (number + 1) * one),
        "N_DAYS_AGO": (today - number * one, today - (number - 1) * one),
        "THIS_MONTH": (_month_start(today), _month_start(today, -1)),
        "LAST_MONTH": (_month_start(today, 1), _month_start(today)),
        "THIS_YEAR": (dt.date(today.year, 1, 1), dt.date(today.year + 1, 1, 1)),
    }
    return ranges[name]


def _like_regex(pattern: str) -> re.Pattern[str]:
    parts, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _normaliser(definition: FieldDef) -> Callable[[Any], Any]:
    """How a value of this field is compared: text ignores case; 15-char ids match 18-char ones."""
    if definition.type in ("id", "reference"):
        return lambda value: value[:15]
    if definition.type in NUMERIC_TYPES or definition.type in ("boolean", "date", "datetime"):
        return lambda value: value
    return lambda value: value.casefold()


def _range_predicate(name: str, op: str, low: Any, high: Any) -> Predicate:
    def test(value: Any) -> bool:
        if op == "=":
            return low <= value < high
        if op == "!=":
            return not low <= value < high
        if op == "<":
            return value < low
        if op == "<=":
            return value < high
        if op == ">":
            return value >= high
        return value >= low

    return lambda record: (v := record.get(name)) is not None and test(v)


def _date_fn(definition: FieldDef, op: str, literal: Literal, today: dt.date) -> Predicate:
    name, number = literal.value
    low, high = date_range(name, number, today)
    if definition.type == "datetime":
        start = dt.datetime.combine(low, dt.time(), tzinfo=dt.UTC)
        end = dt.datetime.combine(high, dt.time(), tzinfo=dt.UTC)
        return _range_predicate(definition.name, op, start, end)
    return _range_predicate(definition.name, op, low, high)


def _multi(value: str | None) -> frozenset[str]:
    return frozenset(v.strip().casefold() for v in (value or "").split(";") if v.strip())


def _compare(node: Compare, today: dt.date) -> Predicate:
    definition, name, op = node.field, node.field.name, node.op
    norm = _normaliser(definition)
    if op in ("INCLUDES", "EXCLUDES"):
        groups = [_multi(literal.value) for literal in node.values if literal.value is not None]
        wanted = op == "INCLUDES"
        return lambda r: any(g <= _multi(r.get(name)) for g in groups) == wanted
    if definition.type == "multipicklist" and op in ("=", "!="):
        target = _multi(node.values[0].value) if node.values[0].value is not None else None
        if target is None:
            return (
                (lambda r: r.get(name) is None)
                if op == "="
                else (lambda r: r.get(name) is not None)
            )
        same = op == "="
        return lambda r: (_multi(r.get(name)) == target) == same
    if op in ("IN", "NOTIN"):
        keys = {
            None if lit.value is None else norm(_number(definition, lit)) for lit in node.values
        }
        inside = op == "IN"
        return lambda r: (
            (((v := r.get(name)) is None and None in keys) or (v is not None and norm(v) in keys))
            == inside
        )
    literal = node.values[0]
    if op == "LIKE":
        regex = _like_regex(literal.value)
        return lambda r: (v := r.get(name)) is not None and regex.fullmatch(v) is not None
    if literal.kind == "date_fn":
        return _date_fn(definition, op, literal, today)
    if literal.value is None:
        if op == "=":
            return lambda r: r.get(name) is None
        if op == "!=":
            return lambda r: r.get(name) is not None
        return lambda r: False
    target = norm(_number(definition, literal))
    test = _OPS[op]
    if op == "!=":
        return lambda r: (v := r.get(name)) is None or norm(v) != target
    return lambda r: (v := r.get(name)) is not None and test(norm(v), target)


def _number(definition: FieldDef, literal: Literal) -> Any:
    if definition.type == "int" and literal.kind == "number":
        return int(literal.value) if float(literal.value).is_integer() else literal.value
    return literal.value


def compile_where(condition: Condition | None, today: dt.date) -> Predicate:
    """The WHERE clause as a function of a record; `today` resolves TODAY, LAST_N_DAYS, ..."""
    if condition is None:
        return lambda record: True
    if isinstance(condition, Compare):
        return _compare(condition, today)
    if isinstance(condition, Not):
        inner = compile_where(condition.part, today)
        return lambda record: not inner(record)
    parts = [compile_where(part, today) for part in condition.parts]
    if isinstance(condition, And):
        return lambda record: all(part(record) for part in parts)
    assert isinstance(condition, Or)
    return lambda record: any(part(record) for part in parts)


def sort_records(records: Iterable[Record], order: Iterable[OrderItem]) -> list[Record]:
    """ORDER BY: stable sorts from the last key to the first, nulls placed per item."""
    result = list(records)
    for item in reversed(list(order)):
        name, norm = item.field.name, _normaliser(item.field)
        if item.field.type in ("id", "reference"):
            norm = lambda value: value  # noqa: E731 - whole ids sort case-sensitively
        nulls = [r for r in result if r.get(name) is None]
        values = [r for r in result if r.get(name) is not None]
        values.sort(key=lambda r: norm(r[name]), reverse=item.descending)
        result = nulls + values if item.nulls_first else values + nulls
    return result
