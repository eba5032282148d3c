"""The naive baseline: each rule evaluated in Python, entity by entity, as a hand-written script.

What a RevOps engineer writes without smartseg: for each rule, for each live account (or
contact), load that entity's rows with per-entity queries (its row, its usage, its activities,
its contacts...) and test the rule in Python. The bench times it against smartseg's evaluation
of the same rules on the same database, and uses it as an independent oracle: it interprets the
checked rule tree (`smartseg.segmenter.typed`) with SQL's three-valued logic as docs/rules.md
describes it and shares no code with the compiler, so equal memberships mean the SQL is right.

Honest on both sides: per-entity queries only (`naive_rows.py`), nothing cached across rules
or entities, the same as-of day. It runs on SQLite (the database a script would start with);
constructs it does not interpret (custom fields, `round`, `number`, non-constant text
patterns, hand-listed members) leave their rule out, and the bench reports how many rules it
covered.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench.naive_rows import Entity, Row, Store
from smartseg.segmenter.catalogue import RELATED
from smartseg.segmenter.rules import RuleSet, SegmentRule
from smartseg.segmenter.typed import (
    TAccount,
    TAggregate,
    TBetween,
    TBinary,
    TCall,
    TConst,
    TContactOf,
    TCustom,
    TDerived,
    TExpr,
    TField,
    TIn,
    TIsNull,
    TSegment,
    TUnary,
    TUsage,
    Type,
    WindowSpec,
)
from smartseg.store import models
from smartseg.store.models import table_of

__all__ = ["NaiveResult", "open_memberships", "run_naive", "unsupported", "walk"]

_MEMBERSHIP = table_of(models.Membership)
_TEXT_TESTS = ("contains", "starts_with", "ends_with", "has_tag")
_SUPPORTED_CALLS = frozenset(
    {"days_since", "days_until", "lower", "upper", "length", "abs", "coalesce", "greatest"}
    | {"least", *_TEXT_TESTS}
)


def walk(node: TExpr) -> Iterator[TExpr]:
    """Every node of a checked tree, depth first."""
    yield node
    for f in fields(node):
        value = getattr(node, f.name)
        children = value if isinstance(value, tuple) else (value,)
        for child in children:
            if isinstance(child, TExpr):
                yield from walk(child)


def unsupported(rule: SegmentRule) -> str | None:
    """Why this interpreter leaves `rule` out, or None when it evaluates it fully."""
    if rule.checked is None or rule.spec.static or rule.spec.include or rule.spec.exclude:
        return "members listed by hand (include, exclude or static)"
    for node in walk(rule.checked.tree):
        if isinstance(node, TCustom):
            return f"custom field {node.key!r}"
        if isinstance(node, TCall):
            if node.name not in _SUPPORTED_CALLS:
                return f"function {node.name}()"
            if node.name in _TEXT_TESTS and not isinstance(node.args[1], TConst):
                return f"{node.name}() with a pattern that is not a constant"
    return None


# --- SQL's three-valued logic ----------------------------------------------------------------


def _and(*values: bool | None) -> bool | None:
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def _or(*values: bool | None) -> bool | None:
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


def _not(value: bool | None) -> bool | None:
    return None if value is None else not value


def _compare(op: str, left: Any, right: Any) -> bool | None:
    if left is None or right is None:
        return None
    match op:
        case "=":
            return bool(left == right)
        case "!=":
            return bool(left != right)
        case "<":
            return bool(left < right)
        case "<=":
            return bool(left <= right)
        case ">":
            return bool(left > right)
        case ">=":
            return bool(left >= right)
    raise AssertionError(f"unknown comparison {op}")


def _days_between(later: Any, earlier: Any) -> int | None:
    if later is None or earlier is None:
        return None
    return (later - earlier).days


def _nothing() -> Any:
    return None


@dataclass(slots=True)
class Scope:
    """Where names are read while interpreting: the row, whose metrics, its account and contact."""

    level: str  # "account", "contact" or a related table
    row: Row | None
    entity: Entity | None = None  # whose metrics this level's metrics are (None: none)
    account: Callable[[], Row | None] = _nothing
    account_entity: Callable[[], Entity | None] = _nothing
    contact: Callable[[], Row | None] = _nothing


def _once(fn: Callable[[], Any]) -> Callable[[], Any]:
    box: list[Any] = []

    def get() -> Any:
        if not box:
            box.append(fn())
        return box[0]

    return get


# --- the interpreter -------------------------------------------------------------------------


class Interpreter:
    """Evaluates checked rule trees for one evaluation day against per-entity rows."""

    def __init__(self, store: Store, day: dt.date, members: Mapping[str, set[int]]) -> None:
        self.store = store
        self.day = day
        self.end = dt.datetime.combine(day, dt.time(0), dt.UTC)
        self.members = members

    def entity_scope(self, entity: Entity) -> Scope:
        if entity.level == "account":
            return Scope("account", entity.row, entity, lambda: entity.row, lambda: entity)
        account = entity.account

        def account_entity() -> Entity | None:
            row = account()
            # Metrics exist for live accounts only: a deleted account's contacts read none.
            if row is None or row["deleted_at"] is not None:
                return None
            return Entity(self.store, "account", row, self.day)

        return Scope("contact", entity.row, entity, account, _once(account_entity))

    def holds(self, tree: TExpr, entity: Entity) -> bool:
        return self.value(tree, self.entity_scope(entity)) is True

    def value(self, node: TExpr, scope: Scope) -> Any:
        match node:
            case TConst():
                return int(node.value) if node.type is Type.DURATION else node.value
            case TField():
                return _field(scope.row, node)
            case TDerived(name="today"):
                return self.day
            case TDerived(name="tenure"):
                account = scope.account()
                return _days_between(self.day, account["start_date"] if account else None)
            case TAccount():
                if scope.level == "account":
                    return self.value(node.inner, scope)
                inner = Scope("account", scope.account(), scope.account_entity(), scope.account)
                return self.value(node.inner, inner)
            case TContactOf():
                assert isinstance(node.inner, TField)
                return _field(scope.contact(), node.inner)
            case TUsage():
                return 0 if scope.entity is None else self._usage(node, scope.entity)
            case TAggregate():
                return _finish(node, self._aggregate(node, scope))
            case TSegment():
                if node.of_account:
                    owner = scope.row["account_id"] if scope.row is not None else None
                else:
                    owner = scope.row["id"] if scope.row is not None else None
                return owner is not None and int(owner) in self.members[node.key]
            case TCall():
                return self._call(node, scope)
            case TUnary(op="not"):
                return _not(self.value(node.operand, scope))
            case TUnary():
                operand = self.value(node.operand, scope)
                return None if operand is None else -operand
            case TBinary():
                return self._binary(node, scope)
            case TIn():
                kind = _common(node.operand, *node.items)
                value = self._as(node.operand, kind, scope)
                items = [self._as(i, kind, scope) for i in node.items]
                found: bool | None = None
                if value is not None:
                    found = any(value == i for i in items if i is not None) or (
                        None if None in items else False
                    )
                return _not(found) if node.negated else found
            case TBetween():
                kind = _common(node.operand, node.low)
                value = self._as(node.operand, kind, scope)
                low, high = self._as(node.low, kind, scope), self._as(node.high, kind, scope)
                inside = _and(_compare(">=", value, low), _compare("<=", value, high))
                return _not(inside) if node.negated else inside
            case TIsNull():
                missing = self.value(node.operand, scope) is None
                return not missing if node.negated else missing
        raise AssertionError(f"the naive baseline cannot interpret {node!r}")

    def _as(self, node: TExpr, kind: Type, scope: Scope) -> Any:
        """A comparison operand; text compares ignoring case."""
        value = self.value(node, scope)
        if kind is Type.TEXT and value is not None:
            return str(value).lower()
        return value

    def _binary(self, node: TBinary, scope: Scope) -> Any:
        op = node.op
        if op == "and":
            left = self.value(node.left, scope)
            return False if left is False else _and(left, self.value(node.right, scope))
        if op == "or":
            left = self.value(node.left, scope)
            return True if left is True else _or(left, self.value(node.right, scope))
        if op in ("=", "!=", "<", "<=", ">", ">="):
            kind = _common(node.left, node.right)
            return _compare(op, self._as(node.left, kind, scope), self._as(node.right, kind, scope))
        left, right = self.value(node.left, scope), self.value(node.right, scope)
        if left is None or right is None:
            return None
        lt, rt = node.left.type, node.right.type
        if Type.DATE in (lt, rt):
            if lt is Type.DATE and rt is Type.DATE:
                return _days_between(left, right)
            day, days = (left, right) if lt is Type.DATE else (right, left)
            return day + dt.timedelta(days=-int(days) if op == "-" else int(days))
        if op == "/":
            return None if right == 0 else float(left) / float(right)
        if op == "*":
            return left * right
        return left + right if op == "+" else left - right

    def _call(self, node: TCall, scope: Scope) -> Any:
        args = [self.value(a, scope) for a in node.args]
        match node.name:
            case "days_since":
                return _days_between(self.day, args[0])
            case "days_until":
                return _days_between(args[0], self.day)
            case "lower" | "upper":
                return None if args[0] is None else getattr(str(args[0]), node.name)()
            case "length":
                return None if args[0] is None else len(str(args[0]))
            case "abs":
                return None if args[0] is None else abs(args[0])
            case "coalesce":
                return next((a for a in args if a is not None), None)
            case "greatest" | "least":
                present = [a for a in args if a is not None]
                if not present:
                    return None
                return max(present) if node.name == "greatest" else min(present)
            case "contains" | "starts_with" | "ends_with" | "has_tag":
                if args[0] is None or args[1] is None:
                    return None
                text, needle = str(args[0]).lower(), str(args[1]).lower()
                if node.name == "has_tag":
                    return f";{needle};" in ";" + text.replace("; ", ";") + ";"
                if node.name == "contains":
                    return needle in text
                return (
                    text.startswith(needle)
                    if node.name == "starts_with"
                    else (text.endswith(needle))
                )
        raise AssertionError(f"the naive baseline cannot call {node.name}()")

    # --- metrics -------------------------------------------------------------------------

    def _in_window(
        self, window: WindowSpec | None, moment: Any, scope: Scope, *, stamp: bool
    ) -> bool | None:
        """Whether a row's date or timestamp falls in `window` (None: before the day)."""
        end: Any = self.end if stamp else self.day
        if window is None:
            return True if moment is None else moment < end
        if moment is None:
            return None
        day = moment.astimezone(dt.UTC).date() if stamp else moment
        if window.first:
            account = scope.account()
            start = account["start_date"] if account is not None else None
            if start is None:
                return None
            stop = start + dt.timedelta(days=window.length)
            return start <= day < stop and moment < end
        low = self.day - dt.timedelta(days=window.before + window.length)
        high = self.day - dt.timedelta(days=window.before)
        return low <= day < high

    def _usage(self, node: TUsage, entity: Entity) -> Any:
        scope = Scope(entity.level, entity.row, entity, entity.account)
        features = set(node.features) if node.features is not None else None
        picked = [
            r
            for r in entity.usage()
            if (features is None or r["feature"] in features)
            and self._in_window(node.window, r["day"], scope, stamp=False) is True
        ]
        match node.measure:
            case "days":
                return len({r["day"] for r in picked})
            case "users":
                return len({r["user_key"] for r in picked if r["user_key"] not in ("", None)})
        # Summed per day, then over the days, as a daily rollup would add them up.
        per_day: dict[dt.date, Any] = {}
        for r in picked:
            if r[node.measure] is not None:
                per_day[r["day"]] = per_day.get(r["day"], 0) + r[node.measure]
        return sum(per_day[d] for d in sorted(per_day))

    def _row_scopes(self, node: TAggregate, entity: Entity) -> Iterator[Scope]:
        rows = entity.related(node.table)
        if node.table == "contact":
            for row in rows:
                contact = Entity(self.store, "contact", row, self.day)
                yield Scope("contact", row, contact, lambda: entity.row)
            return
        by_contact = RELATED[node.table].group_by.get("contact", "contact_id")
        for row in rows:
            yield Scope(
                node.table,
                row,
                None,
                _once(partial(self.store.row, "account", row["account_id"])),
                contact=_once(partial(self.store.row, "contact", row[by_contact])),
            )

    def _aggregate(self, node: TAggregate, scope: Scope) -> Any:
        """The aggregate before its test: a row count for any/no/count, the count of rows
        failing the condition for all, else the value; None when the entity has no metrics."""
        entity = scope.entity
        if entity is None:
            return None
        related = RELATED[node.table]
        stamp = related.time is not None and _is_timestamp(table_of(related.model).c[related.time])
        matching: list[tuple[Scope, Row]] = []
        failing = 0
        for row_scope in self._row_scopes(node, entity):
            row = row_scope.row
            assert row is not None
            window: bool | None = True
            if related.time is not None:
                window = self._in_window(node.window, row[related.time], row_scope, stamp=stamp)
            condition = (
                self.value(node.condition, row_scope) if node.condition is not None else True
            )
            if node.op == "all":
                # Rows in the window whose condition is not true (no condition: none fail).
                if _and(window, node.condition is not None and condition is not True) is True:
                    failing += 1
                continue
            if _and(window, condition) is True:
                matching.append((row_scope, row))
        if node.op == "all":
            return failing
        if node.op in ("any", "no", "count"):
            return len(matching)
        assert node.value is not None
        if node.op == "latest":
            if not matching:
                return None
            assert related.time is not None
            moment = related.time
            # Newest first, rows without a time last, then the highest id.
            timed = [m for m in matching if m[1][moment] is not None]
            if timed:
                best = max(timed, key=lambda m: (m[1][moment], m[1]["id"]))
            else:
                best = max(matching, key=lambda m: m[1]["id"])
            return self.value(node.value, best[0])
        values = [self.value(node.value, s) for s, _ in matching]
        present = [v for v in values if v is not None]
        if not present:
            return None
        if node.op == "sum":
            return sum(present)
        if node.op == "avg":
            return sum(present) / len(present)
        return max(present) if node.op == "max" else min(present)


def _is_timestamp(column: sa.Column[Any]) -> bool:
    kind = column.type
    if isinstance(kind, sa.TypeDecorator):
        kind = kind.impl_instance
    return isinstance(kind, sa.DateTime)


def _field(row: Row | None, node: TField) -> Any:
    if row is None:
        return None
    value = row[node.column]
    if node.type is Type.DATE and isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).date()
    return value


def _finish(node: TAggregate, value: Any) -> Any:
    if node.op == "any":
        return (value or 0) > 0
    if node.op in ("no", "all"):
        return (value or 0) == 0
    if node.op in ("count", "sum"):
        return 0 if value is None else value
    return value


def _common(*nodes: TExpr) -> Type:
    for node in nodes:
        if node.type not in (Type.ANY, Type.NULL):
            return node.type
    return Type.TEXT


# --- running it ------------------------------------------------------------------------------


@dataclass(slots=True)
class NaiveResult:
    """Members per evaluated rule, the rules left out (with why), and what it cost."""

    members: dict[str, set[int]]
    skipped: dict[str, str]
    seconds: float
    queries: int
    checks: int  # (rule, entity) pairs tested
    levels: dict[str, int] = field(default_factory=dict)  # evaluated rules per level


def run_naive(engine: Engine, rules: RuleSet, as_of: dt.datetime) -> NaiveResult:
    """Every rule the interpreter supports, for every live entity of its level, as of `as_of`."""
    day = as_of.astimezone(dt.UTC).date()
    members: dict[str, set[int]] = {}
    skipped: dict[str, str] = {}
    levels: dict[str, int] = {}
    checks = 0
    started = time.perf_counter()
    if engine.dialect.name != "sqlite":
        raise ValueError(f"the naive baseline reads SQLite, not {engine.dialect.name}")
    with engine.connect() as connection:
        db = connection.connection.driver_connection
        assert isinstance(db, sqlite3.Connection)
        store = Store(db)
        interpreter = Interpreter(store, day, members)
        for rule in rules.segments:
            reason = unsupported(rule)
            missing = [k for k in (rule.checked.depends_on if rule.checked else ()) if k in skipped]
            if reason is None and missing:
                reason = f"refers to {', '.join(sorted(missing))}, which is left out"
            if reason is not None:
                skipped[rule.key] = reason
                continue
            assert rule.checked is not None
            found: set[int] = set()
            for entity_id in store.live_ids(rule.level):
                row = store.row(rule.level, entity_id)
                assert row is not None
                checks += 1
                if interpreter.holds(rule.checked.tree, Entity(store, rule.level, row, day)):
                    found.add(entity_id)
            members[rule.key] = found
            levels[rule.level] = levels.get(rule.level, 0) + 1
    return NaiveResult(
        members, skipped, time.perf_counter() - started, store.queries, checks, levels
    )


def open_memberships(engine: Engine) -> dict[str, set[int]]:
    """What smartseg's last evaluation recorded: the open membership episodes per segment."""
    m = _MEMBERSHIP
    out: dict[str, set[int]] = {}
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(m.c.segment_key, m.c.entity_id).where(m.c.exited_at.is_(None))
        )
        for key, entity_id in rows:
            out.setdefault(str(key), set()).add(int(entity_id))
    return out
