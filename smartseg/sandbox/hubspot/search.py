"""`POST /crm/v3/objects/{objectType}/search` with HubSpot's operators, caps and paging rules.

filterGroups are OR-ed, the filters inside a group AND-ed. Number, date and datetime properties
compare as numbers (datetime filter values may be epoch ms or ISO), other properties as
case-insensitive strings, multi-checkbox properties as sets of options. `after` is an offset;
HubSpot refuses to page to offset 10,000 or beyond, which is why incremental syncs must restart
their hs_lastmodifieddate window instead of paging on. Archived records are never found.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from .errors import fail
from .objects import render
from .properties import PropertyDef, parse_ms
from .store import ObjectTable, PortalState, Record

__all__ = ["MAX_FILTERS", "MAX_FILTERS_PER_GROUP", "MAX_GROUPS", "MAX_RESULTS", "search"]

# Caps from HubSpot's current search reference (API-NOTES §2.3).
MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
MAX_LIMIT = 200
MAX_RESULTS = 10_000
MAX_BODY_CHARS = 3_000
OPERATORS = ("EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY",
             "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN")  # fmt: skip
_LOWER_BOUND_OPS = ("EQ", "GT", "GTE", "BETWEEN")
_SYSTEM_MS: dict[str, Callable[[Record], float]] = {
    "hs_lastmodifieddate": lambda r: r.updated,
    "lastmodifieddate": lambda r: r.updated,
    "createdate": lambda r: r.created,
    "hs_createdate": lambda r: r.created,
    "hs_object_id": lambda r: r.id,
}
_TOKEN = re.compile(r"[\w*]+")

Predicate = Callable[[Record], bool]


def _bad(message: str) -> Exception:
    return fail(400, "VALIDATION_ERROR", message)


def _is_numeric(prop: PropertyDef) -> bool:
    return prop.type in ("number", "date", "datetime")


def _number(prop: PropertyDef, raw: Any) -> float:
    text = str(raw)
    if prop.type in ("date", "datetime"):
        ms = parse_ms(text)
        if ms is None:
            raise _bad(f"{text} is not a valid {prop.type} value for {prop.name}")
        return float(ms)
    try:
        return float(text)
    except ValueError:
        raise _bad(f"{text} is not a valid number for {prop.name}") from None


def _getter(table: ObjectTable, prop: PropertyDef) -> Callable[[Record], Any]:
    """A function giving a record's comparable value: float, lower-case str, set or None."""
    name = prop.name
    if name in _SYSTEM_MS:
        return _SYSTEM_MS[name]
    if _is_numeric(prop):

        def numeric(rec: Record) -> float | None:
            value = rec.props.get(name)
            return None if not value else _number(prop, value)

        return numeric
    if prop.field_type == "checkbox":
        return lambda rec: (
            {v.lower() for v in rec.props[name].split(";")} if rec.props.get(name) else None
        )
    return lambda rec: rec.props[name].lower() if rec.props.get(name) else None  # fmt: skip


def _compile_filter(table: ObjectTable, spec: Any) -> tuple[Predicate, float | None]:
    """A filter's predicate, and its lower bound when it bounds the last-modified date below."""
    if not isinstance(spec, dict):
        raise _bad("Each filter must be an object")
    name, op = spec.get("propertyName"), spec.get("operator", "EQ")
    prop = table.schema.get(str(name))
    if prop is None:
        raise _bad(f"Property {name!r} does not exist on {table.type.name}")
    if op not in OPERATORS:
        raise _bad(f"Unknown operator {op!r}; expected one of {', '.join(OPERATORS)}")
    get = _getter(table, prop)
    numeric = _is_numeric(prop) or name == "hs_object_id"

    def conv(raw: Any) -> Any:
        if raw is None:
            raise _bad(f"Operator {op} on {name} needs a value")
        return _number(prop, raw) if numeric else str(raw).lower()

    if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        want = op == "HAS_PROPERTY"
        return (lambda rec: (get(rec) is not None) == want), None
    if op in ("IN", "NOT_IN"):
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise _bad(f"Operator {op} on {name} needs a non-empty `values` list")
        wanted = {conv(v) for v in values}
        hit = _member(wanted)
        return (
            (lambda rec: hit(get(rec))) if op == "IN" else (lambda rec: not hit(get(rec)))
        ), None
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        pattern = str(spec.get("value", "")).lower()
        found = _token_matcher(pattern)
        if op == "CONTAINS_TOKEN":
            return (lambda rec: found(get(rec))), None
        return (lambda rec: not found(get(rec))), None
    value = conv(spec.get("value"))
    if op == "BETWEEN":
        high = conv(spec.get("highValue"))
        return (lambda rec: (v := get(rec)) is not None and value <= v <= high), _bound(name, value)
    if op in ("EQ", "NEQ"):
        same = _member({value})
        if op == "EQ":
            return (lambda rec: same(get(rec))), _bound(name, value)
        return (lambda rec: not same(get(rec))), None
    compare: dict[str, Callable[[Any], bool]] = {
        "LT": lambda v: v < value, "LTE": lambda v: v <= value,
        "GT": lambda v: v > value, "GTE": lambda v: v >= value,
    }  # fmt: skip
    test = compare[op]
    lower = _bound(name, value) if op in _LOWER_BOUND_OPS else None
    return (lambda rec: (v := get(rec)) is not None and not isinstance(v, set) and test(v)), lower


def _bound(name: Any, value: Any) -> float | None:
    return float(value) if name in ("hs_lastmodifieddate", "lastmodifieddate") else None


def _member(wanted: set[Any]) -> Callable[[Any], bool]:
    def hit(v: Any) -> bool:
        if v is None:
            return False
        return bool(v & wanted) if isinstance(v, set) else v in wanted

    return hit


def _token_matcher(pattern: str) -> Callable[[Any], bool]:
    def found(v: Any) -> bool:
        if v is None:
            return False
        text = ";".join(sorted(v)) if isinstance(v, set) else str(v)
        if "*" in pattern:
            return fnmatch.fnmatchcase(text, pattern) or any(
                fnmatch.fnmatchcase(tok, pattern) for tok in _TOKEN.findall(text)
            )
        return pattern in _TOKEN.findall(text) or pattern == text

    return found  # fmt: skip


def _compile_groups(table: ObjectTable, groups: Any) -> tuple[list[list[Predicate]], float | None]:
    if groups is None:
        return [], None
    if not isinstance(groups, list):
        raise _bad("filterGroups must be a list")
    if len(groups) > MAX_GROUPS:
        raise _bad(f"Too many filter groups ({len(groups)}); the maximum is {MAX_GROUPS}")
    compiled: list[list[Predicate]] = []
    lowers: list[float | None] = []
    total = 0
    for group in groups:
        filters = group.get("filters", []) if isinstance(group, dict) else []
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise _bad(
                f"Too many filters in a group ({len(filters)}); "
                f"the maximum is {MAX_FILTERS_PER_GROUP}"
            )
        total += len(filters)
        parts = [_compile_filter(table, f) for f in filters]
        compiled.append([p for p, _ in parts])
        bounds = [b for _, b in parts if b is not None]
        lowers.append(max(bounds) if bounds else None)
    if total > MAX_FILTERS:
        raise _bad(f"Too many filters ({total}); the maximum is {MAX_FILTERS} across all groups")
    # The last-modified index can only be used when every OR branch is bounded below.
    usable = bool(lowers) and all(b is not None for b in lowers)
    return compiled, (min(b for b in lowers if b is not None) if usable else None)


def _sort_key(table: ObjectTable, sorts: Any) -> tuple[Callable[[Record], Any], bool] | None:
    if not sorts:
        return None
    if not isinstance(sorts, list) or len(sorts) > 1:
        raise _bad("Only one sort is supported per search")
    spec = sorts[0]
    if isinstance(spec, str):
        name, descending = spec.lstrip("-"), spec.startswith("-")
    elif isinstance(spec, dict):
        name, descending = spec.get("propertyName", ""), spec.get("direction") == "DESCENDING"
    else:
        raise _bad("A sort is a property name or {propertyName, direction}")
    prop = table.schema.get(name)
    if prop is None:
        raise _bad(f"Cannot sort on {name!r}: no such property on {table.type.name}")
    get = _getter(table, prop)

    def key(rec: Record) -> tuple[bool, Any, int]:
        v = get(rec)
        v = ";".join(sorted(v)) if isinstance(v, set) else v
        # Empty values sort last either way; ties go by id so paging is stable.
        missing = v is None
        return (missing != descending, v if v is not None else 0, rec.id)

    return key, descending  # fmt: skip


def _query_matcher(table: ObjectTable, query: Any) -> Predicate | None:
    words = _TOKEN.findall(str(query or "").lower())
    if not words:
        return None
    fields = table.type.searchable

    def match(rec: Record) -> bool:
        tokens = [t for f in fields for t in _TOKEN.findall(rec.props.get(f, "").lower())]
        return all(any(t.startswith(w.strip("*")) for t in tokens) for w in words)

    return match


def search(state: PortalState, table: ObjectTable, body: Any) -> dict[str, Any]:
    """Run one search request; returns CollectionResponseWithTotal JSON or raises HubSpot's 400."""
    if not isinstance(body, dict):
        raise _bad("Invalid input JSON: expected an object")
    if len(json.dumps(body)) > MAX_BODY_CHARS:
        raise _bad(f"The search request exceeds the maximum of {MAX_BODY_CHARS} characters")
    try:
        raw_limit = body.get("limit")
        limit = 10 if raw_limit is None else int(raw_limit)
        offset = int(body.get("after") or 0)
    except (TypeError, ValueError):
        raise _bad("limit and after must be integers") from None
    if not 0 <= limit <= MAX_LIMIT:
        raise _bad(f"limit must be between 0 and {MAX_LIMIT}; got {limit}")
    if offset >= MAX_RESULTS:
        raise _bad(
            f"Paging beyond {MAX_RESULTS} results is not supported: after={offset}. "
            "Narrow the filters (for example restart from the last hs_lastmodifieddate)."
        )
    groups, lower = _compile_groups(table, body.get("filterGroups"))
    order = _sort_key(table, body.get("sorts"))
    text = _query_matcher(table, body.get("query"))
    properties = body.get("properties") or None
    candidates: Iterable[Record] = (
        table.modified_since(int(lower)) if lower is not None else table.page_after(0, False)
    )
    matches = [
        rec
        for rec in candidates
        if (not groups or any(all(p(rec) for p in g) for g in groups))
        and (text is None or text(rec))
    ]
    if order is not None:
        key, descending = order
        matches.sort(key=key, reverse=descending)
    elif lower is not None:
        matches.sort(key=lambda r: r.id)
    page = matches[offset : offset + limit]
    response: dict[str, Any] = {
        "total": len(matches),
        "results": [render(state, table, rec, properties) for rec in page],
    }
    if offset + limit < len(matches) and limit:
        response["paging"] = {"next": {"after": str(offset + limit)}}
    return response
