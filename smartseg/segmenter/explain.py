"""Preview a segment's members and explain one entity, without writing memberships.

Both reuse the evaluation's own SQL (the same metric tables and predicates, inside a
transaction that is rolled back), so what they show is exactly what `evaluate` would decide.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smartseg.errors import SmartsegError
from smartseg.segmenter.compile import EvalTime
from smartseg.segmenter.evaluate import prepared, resolve_refs
from smartseg.segmenter.rules import RuleSet, SegmentRule
from smartseg.segmenter.typed import (
    TAggregate,
    TBetween,
    TBinary,
    TCall,
    TConst,
    TExpr,
    TIn,
    TIsNull,
    TSegment,
    TUnary,
)

__all__ = ["Clause", "Explanation", "Preview", "explain", "preview", "value_nodes"]


@dataclass(frozen=True, slots=True)
class Preview:
    """A segment's size and its first members with the values its rule reads."""

    key: str
    level: str
    total: int
    columns: tuple[str, ...]
    rows: tuple[tuple[int, str, tuple[Any, ...]], ...]  # (id, name or email, values)


@dataclass(frozen=True, slots=True)
class Clause:
    """One line of an explanation: a condition, whether it holds, and the values behind it."""

    depth: int
    text: str
    holds: bool | None  # None: unknown, because a value it needs is missing
    values: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Explanation:
    key: str
    level: str
    entity_id: int
    entity: str
    member: bool
    clauses: tuple[Clause, ...]
    notes: tuple[str, ...] = field(default=())


def value_nodes(tree: TExpr) -> list[TExpr]:
    """The non-constant values a rule compares, in reading order, each once (by its text)."""
    seen: dict[str, TExpr] = {}
    for node in _walk_values(tree):
        if node.label and node.label not in seen:
            seen[node.label] = node
    return list(seen.values())


def _walk_values(node: TExpr) -> Iterator[TExpr]:
    match node:
        case TBinary(op="and" | "or"):
            yield from _walk_values(node.left)
            yield from _walk_values(node.right)
        case TUnary(op="not"):
            yield from _walk_values(node.operand)
        case _:
            yield from _operands(node)


def _operands(node: TExpr) -> Iterator[TExpr]:
    """The values a single condition reads (constants left out)."""
    match node:
        case TBinary():
            parts: tuple[TExpr, ...] = (node.left, node.right)
        case TIn():
            parts = (node.operand,)
        case TBetween():
            parts = (node.operand,)
        case TIsNull():
            parts = (node.operand,)
        case TCall():
            parts = node.args
        case TAggregate(op="any" | "no" | "all"):
            parts = (node,)
        case _:
            parts = ()
    for part in parts:
        if not isinstance(part, TConst | TSegment):
            yield part


def _value_sql(prep: prepared, node: TExpr, scope: Any) -> Any:
    """SQL for a value; counting aggregates show their count rather than true/false."""
    compiler = prep.compiler
    if isinstance(node, TAggregate) and node.op in ("any", "no", "all"):
        return sa.func.coalesce(compiler.aggregate_value(node, scope), 0)
    return compiler.expr(node, scope)


def _name_columns(level: str, row: Any) -> list[Any]:
    """The columns `_entity_label` reads: an account's name, a contact's name and email."""
    if level == "account":
        return [row.c.name]
    return [row.c.first_name, row.c.last_name, row.c.email]


def _entity_label(level: str, row: Any) -> str:
    if level == "account":
        return str(row.name)
    name = " ".join(p for p in (row.first_name, row.last_name) if p)
    return f"{name} <{row.email}>" if row.email else name


def _display(value: Any) -> Any:
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _when(day: dt.date, tz: Any) -> EvalTime:
    return EvalTime(day, tz) if tz is not None else EvalTime(day)


def preview(
    engine: Engine, rules: RuleSet, key: str, *, day: dt.date, tz: Any = None, limit: int = 20
) -> Preview:
    """Members of `key` as of `day` with the values its rule reads; nothing is written."""
    rule = rules.get(key)
    with engine.connect() as connection, connection.begin() as transaction:
        with prepared(connection, rules, _when(day, tz), only=[key]) as prep:
            scope, joined = prep.compiler.entity_scope(rule.level)
            nodes = value_nodes(rule.checked.tree) if rule.checked else []
            columns = [_value_sql(prep, n, scope) for n in nodes]
            members = prep.compiler.members
            row = scope.row
            names = _name_columns(rule.level, row)
            query = (
                sa.select(row.c.id, *names, *columns)
                .select_from(
                    joined.join(
                        members,
                        sa.and_(
                            members.c.entity_id == row.c.id,
                            members.c.segment_key == sa.literal(key),
                        ),
                    )
                )
                .order_by(row.c.id)
                .limit(limit)
            )
            rows = []
            for found in connection.execute(query):
                label = _entity_label(rule.level, found)
                values = tuple(_display(v) for v in found[len(names) + 1 :])
                rows.append((int(found[0]), label, values))
            total = prep.counts.get(key, 0)
        transaction.rollback()
    return Preview(key, rule.level, total, tuple(n.label for n in nodes), tuple(rows))


def explain(
    engine: Engine, rules: RuleSet, key: str, ref: str, *, day: dt.date, tz: Any = None
) -> Explanation:
    """Why the entity named by `ref` is in or out of `key` as of `day`, clause by clause."""
    rule = rules.get(key)
    with engine.connect() as connection, connection.begin() as transaction:
        ids, _ = resolve_refs(connection, rule.level, [ref])
        if not ids:
            raise SmartsegError(
                f"no {rule.level} matches {ref!r}; give its id, its CRM id (e.g. "
                f"salesforce:001...), its {'domain' if rule.level == 'account' else 'email'} "
                "or its external key"
            )
        entity_id = ids[0]
        with prepared(connection, rules, _when(day, tz), only=[key]) as prep:
            explanation = _explain_one(prep, rule, entity_id)
        transaction.rollback()
    return explanation


def _explain_one(prep: prepared, rule: SegmentRule, entity_id: int) -> Explanation:
    compiler = prep.compiler
    scope, joined = compiler.entity_scope(rule.level)
    row = scope.row
    lines: list[tuple[int, TExpr, list[TExpr]]] = []
    if rule.checked is not None:
        _collect(rule.checked.tree, 0, lines)
    columns: list[Any] = []
    for _, node, values in lines:
        columns.append(compiler.expr(node, scope))
        columns.extend(_value_sql(prep, v, scope) for v in values)
    names = _name_columns(rule.level, row)
    query = sa.select(*names, *columns).select_from(joined).where(row.c.id == entity_id)
    found = prep.connection.execute(query).first()
    if found is None:
        raise SmartsegError(f"{rule.level} {entity_id} is deleted or does not exist")
    cells = list(found[len(names) :])
    clauses = []
    for depth, node, values in lines:
        holds = cells.pop(0)
        shown = tuple((_value_label(v), _display(cells.pop(0))) for v in values)
        text = node.label
        if isinstance(node, TBinary) and node.op in ("and", "or"):
            text = "all of:" if node.op == "and" else "any of:"
        elif isinstance(node, TUnary) and node.op == "not":
            text = "not:"
        clauses.append(Clause(depth, text, None if holds is None else bool(holds), shown))
    members = compiler.members
    member = prep.connection.execute(
        sa.select(sa.func.count()).where(
            members.c.segment_key == sa.literal(rule.key), members.c.entity_id == entity_id
        )
    ).scalar_one()
    notes = []
    include, _ = resolve_refs(prep.connection, rule.level, rule.spec.include)
    exclude, _ = resolve_refs(prep.connection, rule.level, rule.spec.exclude)
    if entity_id in include:
        notes.append("listed in include: a member whatever the rule says")
    if entity_id in exclude:
        notes.append("listed in exclude: never a member")
    if rule.spec.static:
        notes.append("static segment: members stay until excluded by hand")
    return Explanation(
        rule.key,
        rule.level,
        entity_id,
        _entity_label(rule.level, found),
        bool(member),
        tuple(clauses),
        tuple(notes),
    )


def _value_label(node: TExpr) -> str:
    if isinstance(node, TAggregate) and node.op in ("any", "no"):
        return f"{node.table} rows matching"
    if isinstance(node, TAggregate) and node.op == "all":
        return f"{node.table} rows not matching"
    return node.label


def _collect(node: TExpr, depth: int, out: list[tuple[int, TExpr, list[TExpr]]]) -> None:
    """Pre-order: and/or/not nodes, then each condition with the values it reads."""
    match node:
        case TBinary(op="and" | "or"):
            out.append((depth, node, []))
            for child in _flatten(node, node.op):
                _collect(child, depth + 1, out)
        case TUnary(op="not"):
            out.append((depth, node, []))
            _collect(node.operand, depth + 1, out)
        case _:
            out.append((depth, node, list(_operands(node))))


def _flatten(node: TExpr, op: str) -> list[TExpr]:
    if isinstance(node, TBinary) and node.op == op:
        return [*_flatten(node.left, op), *_flatten(node.right, op)]
    return [node]
