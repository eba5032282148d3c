"""Print checked rules as SQLAlchemy Core: predicates over an entity plus its metric table.

Every metric a rule uses (usage over a window, an aggregate over activities, tickets, NPS,
contacts...) is registered once per level and computed by `metric_select`: one grouped scan
per source table with one conditional aggregate per metric, however many rules use it.
Constants are bound parameters; identifiers come only from the catalogue; the evaluation
day is a parameter, never the database's clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from smartseg.segmenter.catalogue import RELATED, Related
from smartseg.segmenter.sqlfuncs import (
    add_days,
    day_of,
    days_between,
    greatest,
    json_key,
    json_text,
    least,
    settled,
    to_date,
    to_number,
)
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

__all__ = ["MEMBERS_TABLE", "Compiler", "EvalTime", "MetricTable", "members_table"]

MEMBERS_TABLE = "smartseg_members"
_ACCOUNT = table_of(models.Account)
_CONTACT = table_of(models.Contact)
_USAGE = table_of(models.UsageDaily)


def members_table() -> sa.TableClause:
    """The per-evaluation temporary table of (segment_key, entity_id) results."""
    return sa.table(
        MEMBERS_TABLE, sa.column("segment_key", sa.String()), sa.column("entity_id", sa.Integer())
    )


@dataclass(frozen=True, slots=True)
class EvalTime:
    """The evaluation day (windows end the day before it) and the zone days are counted in."""

    day: dt.date
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))

    def start_of(self, day: dt.date) -> dt.datetime:
        """Midnight of `day` in the configured zone, as aware UTC."""
        return dt.datetime.combine(day, dt.time(0), self.tz).astimezone(dt.UTC)

    def bounds(self, window: WindowSpec) -> tuple[dt.date, dt.date]:
        end = self.day - dt.timedelta(days=window.before)
        return end - dt.timedelta(days=window.length), end


@dataclass(slots=True)
class MetricTable:
    """A level's temporary metric table: one column per registered metric."""

    name: str
    level: str
    table: sa.TableClause
    specs: dict[TExpr, str] = field(default_factory=dict)

    @classmethod
    def create(cls, level: str) -> MetricTable:
        name = f"smartseg_m_{level}"
        return cls(name, level, sa.table(name, sa.column("entity_id", sa.Integer())))

    def register(self, spec: TExpr) -> sa.ColumnClause[Any]:
        column = self.specs.get(spec)
        if column is None:
            column = f"m{len(self.specs) + 1}"
            self.specs[spec] = column
            kind: Any = sa.Date() if spec.type is Type.DATE else sa.Float()
            self.table.append_column(sa.column(column, kind))
        return self.table.c[column]


@dataclass(slots=True)
class _Scope:
    """What names mean while printing: the row table and the tables joined to it."""

    level: str
    row: Any  # the entity or fact table (or alias) the row comes from
    metrics: MetricTable | None = None
    account: Any = None  # the account of the row (contact and fact scopes)
    account_metrics: MetricTable | None = None
    contact: Any = None  # the contact of the row (fact scopes)
    entity_id: Any = None
    account_id: Any = None
    joins: set[str] = field(default_factory=set)


class Compiler:
    """Prints checked rules for one evaluation time and dialect, collecting their metrics."""

    def __init__(self, when: EvalTime, dialect: str) -> None:
        self.when = when
        self.dialect = dialect
        self.account_metrics = MetricTable.create("account")
        self.contact_metrics = MetricTable.create("contact")
        self.members = members_table()

    def metrics_for(self, level: str) -> MetricTable:
        return self.account_metrics if level == "account" else self.contact_metrics

    # --- the entity queries ------------------------------------------------------------------

    def entity_scope(self, level: str) -> tuple[_Scope, Any]:
        """The scope a `level` rule is printed in, and the FROM clause that provides it."""
        if level == "account":
            row = _ACCOUNT.alias("e")
            m = self.account_metrics.table
            scope = _Scope("account", row, self.account_metrics, entity_id=row.c.id)
            scope.account = row
            scope.account_id = row.c.id
            scope.account_metrics = self.account_metrics
            return scope, row.outerjoin(m, m.c.entity_id == row.c.id)
        row = _CONTACT.alias("e")
        account = _ACCOUNT.alias("pa")
        m = self.contact_metrics.table
        am = self.account_metrics.table
        scope = _Scope(
            "contact",
            row,
            self.contact_metrics,
            account=account,
            account_metrics=self.account_metrics,
            entity_id=row.c.id,
            account_id=row.c.account_id,
        )
        joined = (
            row.outerjoin(m, m.c.entity_id == row.c.id)
            .outerjoin(account, account.c.id == row.c.account_id)
            .outerjoin(am, am.c.entity_id == row.c.account_id)
        )
        return scope, joined

    def predicate(self, tree: TExpr, level: str) -> tuple[ColumnElement[Any], Any, Any]:
        """(condition, FROM clause, id column) for a rule at `level`."""
        scope, joined = self.entity_scope(level)
        return self.expr(tree, scope), joined, scope.entity_id

    def live(self, level: str, row: Any) -> ColumnElement[bool]:
        return row.c.deleted_at.is_(None)

    # --- expressions -------------------------------------------------------------------------

    def expr(self, node: TExpr, scope: _Scope) -> Any:
        match node:
            case TConst():
                return self._const(node)
            case TField():
                column = scope.row.c[node.column]
                if node.type is Type.DATE and _is_timestamp(column):
                    return day_of(column)
                return column
            case TCustom():
                return json_text(scope.row.c.custom, json_key(self.dialect, node.key))
            case TDerived(name="today"):
                return sa.literal(self.when.day, sa.Date())
            case TDerived(name="tenure"):
                account = scope.account if scope.account is not None else scope.row
                scope.joins.add("account")
                return days_between(sa.literal(self.when.day, sa.Date()), account.c.start_date)
            case TAccount():
                return self._account(node, scope)
            case TContactOf():
                if scope.contact is None:
                    raise AssertionError("contact.<field> outside a fact scope")
                scope.joins.add("contact")
                return scope.contact.c[node.inner.column]  # type: ignore[attr-defined]
            case TUsage():
                assert scope.metrics is not None
                return sa.func.coalesce(scope.metrics.register(node), 0)
            case TAggregate():
                return self._aggregate(node, scope)
            case TSegment():
                entity = scope.account_id if node.of_account else scope.entity_id
                m = self.members
                return sa.exists(
                    sa.select(sa.literal(1))
                    .select_from(m)
                    .where(m.c.segment_key == sa.literal(node.key), m.c.entity_id == entity)
                )
            case TCall():
                return self._call(node, scope)
            case TUnary(op="not"):
                return sa.not_(self.expr(node.operand, scope))
            case TUnary():
                return -self._number(node.operand, scope)
            case TBinary():
                return self._binary(node, scope)
            case TIn():
                return self._in(node, scope)
            case TBetween():
                kind = _common(node.operand, node.low)
                value = self._as(node.operand, kind, scope)
                low, high = self._as(node.low, kind, scope), self._as(node.high, kind, scope)
                test = value.between(low, high)
                return sa.not_(test) if node.negated else test
            case TIsNull():
                value = self.expr(node.operand, scope)
                return value.is_not(None) if node.negated else value.is_(None)
        raise AssertionError(f"cannot print {node!r}")

    def _const(self, node: TConst) -> Any:
        match node.type:
            case Type.NUMBER:
                kind: Any = sa.Integer() if isinstance(node.value, int) else sa.Float()
                return sa.literal(node.value, kind)
            case Type.DURATION:
                return sa.literal(int(node.value), sa.Integer())
            case Type.TEXT:
                return sa.literal(node.value, sa.String())
            case Type.BOOL:
                return sa.literal(bool(node.value), sa.Boolean())
            case Type.DATE:
                return sa.literal(node.value, sa.Date())
            case Type.NULL:
                return sa.null()
        raise AssertionError(f"constant of type {node.type} cannot be printed")

    def _account(self, node: TAccount, scope: _Scope) -> Any:
        if scope.level == "account":
            return self.expr(node.inner, scope)
        scope.joins.add("account")
        inner = _Scope(
            "account",
            scope.account,
            scope.account_metrics,
            account=scope.account,
            entity_id=scope.account_id,
            account_id=scope.account_id,
        )
        return self.expr(node.inner, inner)

    def _number(self, node: TExpr, scope: _Scope) -> Any:
        value = self.expr(node, scope)
        if node.type is Type.ANY:
            return to_number(value)
        return value

    def _as(self, node: TExpr, kind: Type, scope: _Scope) -> Any:
        """`node` printed for a comparison in `kind` (custom values are cast to it)."""
        value = self.expr(node, scope)
        if node.type is Type.ANY:
            if kind is Type.NUMBER:
                return to_number(value)
            if kind is Type.DATE:
                return to_date(value)
            if kind is Type.BOOL:
                return sa.func.lower(value).in_(["true", "1"])
        if kind in (Type.TEXT, Type.ANY):
            if isinstance(node, TConst) and isinstance(node.value, str):
                return sa.literal(node.value.lower(), sa.String())
            return sa.func.lower(value)
        return value

    def _binary(self, node: TBinary, scope: _Scope) -> Any:
        op = node.op
        if op == "and":
            return sa.and_(self.expr(node.left, scope), self.expr(node.right, scope))
        if op == "or":
            return sa.or_(self.expr(node.left, scope), self.expr(node.right, scope))
        if op in ("=", "!=", "<", "<=", ">", ">="):
            kind = _common(node.left, node.right)
            left, right = self._as(node.left, kind, scope), self._as(node.right, kind, scope)
            return {
                "=": left == right,
                "!=": left != right,
                "<": left < right,
                "<=": left <= right,
                ">": left > right,
                ">=": left >= right,
            }[op]
        lt, rt = node.left.type, node.right.type
        left, right = self._number(node.left, scope), self._number(node.right, scope)
        if Type.DATE in (lt, rt):
            if lt is Type.DATE and rt is Type.DATE:
                return days_between(left, right)
            day, days = (left, right) if lt is Type.DATE else (right, left)
            return add_days(day, -days if op == "-" else days)
        if op == "/":
            # Both sides as floats: PostgreSQL would otherwise divide as NUMERIC, rounding to
            # 15 digits, and 3/5 - 1 < -40% would differ between the two databases.
            return sa.cast(left, sa.Float()) / sa.cast(sa.func.nullif(right, 0), sa.Float())
        if op == "*":
            return left * right
        return left + right if op == "+" else left - right

    def _in(self, node: TIn, scope: _Scope) -> Any:
        kind = _common(node.operand, *node.items)
        value = self._as(node.operand, kind, scope)
        items = [self._as(i, kind, scope) for i in node.items]
        test = value.in_(items)
        return sa.not_(test) if node.negated else test

    def _call(self, node: TCall, scope: _Scope) -> Any:
        name = node.name
        args = node.args
        day = sa.literal(self.when.day, sa.Date())
        match name:
            case "days_since":
                return days_between(day, self.expr(args[0], scope))
            case "days_until":
                return days_between(self.expr(args[0], scope), day)
            case "lower" | "upper" | "length":
                return getattr(sa.func, name)(self.expr(args[0], scope))
            case "abs":
                return sa.func.abs(self._number(args[0], scope))
            case "round":
                digits = self.expr(args[1], scope) if len(args) > 1 else sa.literal(0)
                return sa.func.round(sa.cast(self._number(args[0], scope), sa.Numeric()), digits)
            case "number":
                return to_number(self.expr(args[0], scope))
            case "coalesce":
                return sa.func.coalesce(*(self.expr(a, scope) for a in args))
            case "greatest":
                return greatest(*(self.expr(a, scope) for a in args))
            case "least":
                return least(*(self.expr(a, scope) for a in args))
            case "contains" | "starts_with" | "ends_with" | "has_tag":
                return self._text_test(name, args, scope)
        raise AssertionError(f"unknown function {name}")

    def _text_test(self, name: str, args: tuple[TExpr, ...], scope: _Scope) -> Any:
        text = sa.func.lower(self.expr(args[0], scope))
        needle = args[1]
        if name == "has_tag":
            # Multi-select values are stored "a;b;c"; match one whole value, ignoring case.
            padded = sa.literal(";") + sa.func.replace(text, "; ", ";") + sa.literal(";")
            if isinstance(needle, TConst):
                pattern = "%;" + _like_escape(str(needle.value).lower()) + ";%"
                return padded.like(sa.literal(pattern), escape="\\")
            return padded.contains(sa.literal(";") + sa.func.lower(self.expr(needle, scope)))
        method = {"contains": "contains", "starts_with": "startswith", "ends_with": "endswith"}
        if isinstance(needle, TConst):
            return getattr(text, method[name])(str(needle.value).lower(), autoescape=True)
        return getattr(text, method[name])(sa.func.lower(self.expr(needle, scope)))

    # --- aggregates --------------------------------------------------------------------------

    def _aggregate(self, node: TAggregate, scope: _Scope) -> Any:
        return _finish(node, self.aggregate_value(node, scope))

    def aggregate_value(self, node: TAggregate, scope: _Scope) -> Any:
        """The aggregate before its test: the matching-row count for any/no, the count of
        rows failing the condition for all, else the value."""
        if node.table == "contact" and node.uses_segments:
            return self._correlated_contacts(node, scope)
        assert scope.metrics is not None
        return scope.metrics.register(node)

    def _correlated_contacts(self, node: TAggregate, scope: _Scope) -> Any:
        """A contact aggregate whose condition reads segment results: one subquery per rule
        (segment results do not exist yet when the metric tables are built)."""
        contact = _CONTACT.alias("qc")
        m = self.contact_metrics.table
        inner = _Scope(
            "contact",
            contact,
            self.contact_metrics,
            account=scope.row,
            account_metrics=scope.metrics,
            entity_id=contact.c.id,
            account_id=contact.c.account_id,
        )
        aggregate = self._aggregate_column(node, inner, None)
        return (
            sa.select(aggregate)
            .select_from(contact.outerjoin(m, m.c.entity_id == contact.c.id))
            .where(contact.c.account_id == scope.entity_id, contact.c.deleted_at.is_(None))
            .scalar_subquery()
        )

    def _window_test(self, window: WindowSpec | None, time: Any, scope: _Scope) -> Any:
        """The window as a condition on `time` (a date or a timestamp column)."""
        stamp = _is_timestamp(time)
        end_value: Any = self.when.start_of(self.when.day) if stamp else self.when.day
        if window is None:
            return sa.or_(time.is_(None), time < sa.literal(end_value, time.type))
        if window.first:
            scope.joins.add("account")
            start = scope.account.c.start_date
            day = day_of(time) if stamp else time
            return sa.and_(
                day >= start,
                day < add_days(start, sa.literal(window.length)),
                time < sa.literal(end_value, time.type),
            )
        low, high = self.when.bounds(window)
        if stamp:
            return sa.and_(
                time >= sa.literal(self.when.start_of(low), time.type),
                time < sa.literal(self.when.start_of(high), time.type),
            )
        return sa.and_(time >= sa.literal(low, sa.Date()), time < sa.literal(high, sa.Date()))

    def _aggregate_column(self, node: TAggregate, scope: _Scope, related: Related | None) -> Any:
        tests = []
        if node.window is not None or (related is not None and related.time is not None):
            assert related is not None and related.time is not None
            tests.append(self._window_test(node.window, scope.row.c[related.time], scope))
        if node.condition is not None:
            condition = self.expr(node.condition, scope)
            if node.op == "all":
                condition = sa.not_(sa.func.coalesce(condition, sa.false()))
            tests.append(condition)
        elif node.op == "all":
            tests.append(sa.false())
        test = sa.and_(*tests) if tests else None
        if node.op in ("any", "no", "all", "count"):
            return _where(sa.func.count(), test)
        assert node.value is not None
        aggregate: Any = getattr(sa.func, node.op)
        return _where(aggregate(self.expr(node.value, scope)), test)

    # --- metric tables -----------------------------------------------------------------------

    def metric_select(self, level: str) -> sa.Select[Any]:
        """One row per live entity of `level` with every registered metric as a column."""
        table = self.metrics_for(level)
        entity = (_ACCOUNT if level == "account" else _CONTACT).alias("me")
        columns: list[Any] = [entity.c.id.label("entity_id")]
        joined: Any = entity
        specs = list(table.specs.items())
        for subquery, names in self._scans(level, specs):
            joined = joined.outerjoin(subquery, subquery.c.entity_id == entity.c.id)
            columns.extend(subquery.c[n] for n in names)
        return sa.select(*columns).select_from(joined).where(entity.c.deleted_at.is_(None))

    def _scans(self, level: str, specs: list[tuple[TExpr, str]]) -> Iterable[tuple[Any, list[str]]]:
        usage = [(s, n) for s, n in specs if isinstance(s, TUsage)]
        # Windows anchored on each account's start date (`first 30d`) get their own scan, which
        # reads only those days of each account; the other windows then bound their scan by
        # the earliest day they reach. Together they make an evaluation's cost follow the
        # windows, not the years of history the store holds.
        relative = [(s, n) for s, n in usage if not s.window.first]
        first = [(s, n) for s, n in usage if s.window.first]
        for windows, part in ((relative, ""), (first, "_first")):
            if windows:
                yield from self._usage_scans(level, windows, part)
        by_table: dict[str, list[tuple[TAggregate, str]]] = {}
        for spec, name in specs:
            if isinstance(spec, TAggregate):
                by_table.setdefault(spec.table, []).append((spec, name))
        for table_name, aggregates in by_table.items():
            plain = [(s, n) for s, n in aggregates if s.op != "latest"]
            if plain:
                yield self._fact_scan(level, RELATED[table_name], plain)
            latest: dict[tuple[TExpr | None, WindowSpec | None], list[tuple[TAggregate, str]]]
            latest = {}
            for spec, name in aggregates:
                if spec.op == "latest":
                    latest.setdefault((spec.condition, spec.window), []).append((spec, name))
            for group in latest.values():
                yield self._latest_scan(level, RELATED[table_name], group)

    def _usage_scans(
        self, level: str, specs: list[tuple[TUsage, str]], part: str
    ) -> Iterable[tuple[Any, list[str]]]:
        if self.dialect == "sqlite" and level == "account":
            # Measured on 3M usage rows (bench/segment_eval.py): on SQLite, whose VM evaluates
            # every aggregate's filter per row, folding account rows into days first halves
            # the account scan (23 s to 12 s); the fold streams in the order of
            # ix_usage_account_day. For contacts (no such index: the fold sorts) and on
            # PostgreSQL the single pass is faster: the fold alone measured a third faster
            # there, but inside the metric table's statement the whole took 45% longer.
            by_day = [(s, n) for s, n in specs if s.measure != "users"]
            if by_day:
                yield self._account_usage_day_scan(by_day, part)
            users = [(s, n) for s, n in specs if s.measure == "users"]
            if users:
                yield self._account_usage_user_scan(users, part)
        else:
            yield self._usage_scan(level, specs, part)

    def _usage_scan(
        self, level: str, specs: list[tuple[TUsage, str]], part: str
    ) -> tuple[Any, list[str]]:
        """Every usage metric of a level in one grouped pass over the raw rows."""
        u = _USAGE.alias("u")
        account = _ACCOUNT.alias("ua")
        key = u.c.account_id if level == "account" else u.c.contact_id
        scope = _Scope(level, u, account=account)
        columns = []
        for spec, name in specs:
            test = self._window_test(spec.window, u.c.day, scope)
            if spec.features is not None:
                test = sa.and_(test, u.c.feature.in_([sa.literal(f) for f in spec.features]))
            if spec.measure in ("events", "minutes"):
                measure = u.c.events if spec.measure == "events" else u.c.minutes
                column: Any = _sum_where(measure, test)
                if spec.measure == "minutes":
                    column = settled(column)
            else:
                counted = u.c.day if spec.measure == "days" else u.c.user_key
                if spec.measure == "users":
                    # Rows without a user (account-level events) carry user_key '': no user.
                    test = sa.and_(test, u.c.user_key != sa.literal(""))
                column = sa.func.count(sa.distinct(counted)).filter(test)
            columns.append(column.label(name))
        source, where = self._usage_rows(u, key, specs, account)
        query = sa.select(key.label("entity_id"), *columns).select_from(source).where(*where)
        return query.group_by(key).subquery(f"usage_{level}{part}"), [n for _, n in specs]

    def _usage_rows(
        self, u: Any, key: Any, specs: list[tuple[TUsage, str]], account: Any
    ) -> tuple[Any, list[Any]]:
        """FROM and WHERE of a usage scan: linked rows before the evaluation day, in reach of
        the specs' windows.

        Relative windows share a lower bound, the earliest day any of them reaches. Windows
        anchored on the start date (the caller keeps them apart) join the row's account and
        read its first days only: SQLite reads them as a range of ix_usage_account_day per
        account; PostgreSQL picks that or one hashed pass by its statistics (on the bench's
        90-day stores, where most rows are in some account's first year, the hashed pass).
        """
        where = [key.is_not(None), u.c.day < sa.literal(self.when.day, sa.Date())]
        if not any(s.window.first for s, _ in specs):
            earliest = min(self.when.bounds(s.window)[0] for s, _ in specs)
            where.append(u.c.day >= sa.literal(earliest, sa.Date()))
            return u, where
        assert all(s.window.first for s, _ in specs), "first windows are scanned on their own"
        longest = max(s.window.length for s, _ in specs)
        start = account.c.start_date
        where += [u.c.day >= start, u.c.day < add_days(start, sa.literal(longest))]
        return u.join(account, account.c.id == u.c.account_id), where

    def _account_usage_day_scan(
        self, specs: list[tuple[TUsage, str]], part: str
    ) -> tuple[Any, list[str]]:
        """Accounts' events, minutes and active days per window, in two grouped steps.

        Usage has several rows per entity and day (one per feature and user), and a rule set
        asks for dozens of windows over them. Testing every window on every raw row made this
        scan the bulk of an evaluation (about 30 conditional aggregates, half of them
        COUNT(DISTINCT day)). So the first step folds the raw rows into one row per entity and
        day, with one sum per feature filter the specs use (not per window); the second tests
        the windows on those day rows, where "active days" is a plain count of days whose row
        count under the filter is positive: no DISTINCT left.
        """
        u = _USAGE.alias("u")
        key = u.c.account_id
        rows, where = self._usage_rows(u, key, specs, _ACCOUNT.alias("ur"))
        slots: dict[tuple[tuple[str, ...] | None, str], str] = {}
        folded: list[Any] = []
        for spec, _ in specs:
            measure = "rows" if spec.measure == "days" else spec.measure
            if (spec.features, measure) in slots:
                continue
            name = slots[(spec.features, measure)] = f"{measure[0]}{len(slots)}"
            in_filter = None
            if spec.features is not None:
                in_filter = u.c.feature.in_([sa.literal(f) for f in spec.features])
            if measure == "rows":
                value: Any = _where(sa.func.count(), in_filter)
            else:
                value = sa.func.sum(u.c[measure])
                if in_filter is not None:
                    value = sa.func.coalesce(value.filter(in_filter), 0)
            folded.append(value.label(name))
        days = (
            sa.select(key.label("entity_id"), u.c.day, *folded)
            .select_from(rows)
            .where(*where)
            .group_by(key, u.c.day)
            .subquery(f"usage_days_account{part}")
        )
        account = _ACCOUNT.alias("ua")
        scope = _Scope("account", days, account=account)
        columns = []
        for spec, name in specs:
            test = self._window_test(spec.window, days.c.day, scope)
            if spec.measure == "days":
                active = days.c[slots[(spec.features, "rows")]] > 0
                column: Any = sa.func.count().filter(sa.and_(test, active))
            else:
                column = _sum_where(days.c[slots[(spec.features, spec.measure)]], test)
                if spec.measure == "minutes":
                    column = settled(column)
            columns.append(column.label(name))
        source: Any = days
        if "account" in scope.joins:  # `first` windows anchor on the start date
            source = days.join(account, account.c.id == days.c.entity_id)
        query = sa.select(days.c.entity_id, *columns).select_from(source).group_by(days.c.entity_id)
        return query.subquery(f"usage_account{part}"), [n for _, n in specs]

    def _account_usage_user_scan(
        self, specs: list[tuple[TUsage, str]], part: str
    ) -> tuple[Any, list[str]]:
        """Accounts' active users per window: a flag per account, user and window, then a sum.

        Distinct users over a window cannot come from day rows, so this folds the raw rows per
        user instead. Rows without a user (account-level events) carry user_key '': no user.
        """
        u = _USAGE.alias("u")
        account = _ACCOUNT.alias("ua")
        key = u.c.account_id
        scope = _Scope("account", u, account=account)
        flags = []
        for spec, name in specs:
            test = self._window_test(spec.window, u.c.day, scope)
            if spec.features is not None:
                test = sa.and_(test, u.c.feature.in_([sa.literal(f) for f in spec.features]))
            flags.append(sa.func.max(sa.literal(1)).filter(test).label(name))
        source, where = self._usage_rows(u, key, specs, account)
        per_user = (
            sa.select(key.label("entity_id"), *flags)
            .select_from(source)
            .where(*where, u.c.user_key != sa.literal(""))
            .group_by(key, u.c.user_key)
            .subquery(f"usage_users_account{part}")
        )
        names = [n for _, n in specs]
        query = sa.select(
            per_user.c.entity_id,
            *(sa.func.coalesce(sa.func.sum(per_user.c[n]), 0).label(n) for n in names),
        ).group_by(per_user.c.entity_id)
        return query.subquery(f"usage_user_account{part}"), names

    def _fact_rows(self, related: Related, since: Any = None) -> Any:
        """The live rows of a related table, with copies held in both CRMs counted once;
        `since` (from `_reach`) leaves out rows older than every window of a scan.

        The copies of one record share its time (it is part of `mirror`), so they are all in
        reach or all out of it: dropping old rows before ranking copies changes no rank.
        """
        table = table_of(related.model)
        if not related.mirror and not related.live_only and since is None:
            return table
        query = sa.select(table)
        if since is not None:
            query = query.where(since)
        if related.live_only:
            query = query.where(table.c.deleted_at.is_(None))
        if related.mirror:
            preferred = sa.case((table.c.source == sa.literal(related.prefer), 0), else_=1)
            rank = sa.func.row_number().over(
                partition_by=[table.c[c] for c in related.mirror],
                order_by=(preferred, table.c.source, table.c.id),
            )
            ranked = query.add_columns(rank.label("mirror_rank")).subquery()
            return (
                sa.select(*(ranked.c[c.name] for c in table.columns))
                .where(ranked.c.mirror_rank == 1)
                .subquery(f"{related.name}_rows")
            )
        return query.subquery(f"{related.name}_rows")

    def _reach(self, related: Related, specs: list[tuple[TAggregate, str]]) -> Any:
        """The condition that a row of `related` is in reach of some window of `specs` (None
        when one of them reads all time or starts at a start date): the same principle as
        usage scans, so years of activities and tickets are not read for 90-day windows."""
        if related.time is None:
            return None
        windows = [spec.window for spec, _ in specs]
        relative = [w for w in windows if w is not None and not w.first]
        if len(relative) < len(windows):
            return None
        earliest = min(self.when.bounds(w)[0] for w in relative)
        column = table_of(related.model).c[related.time]
        value = self.when.start_of(earliest) if _is_timestamp(column) else earliest
        return column >= sa.literal(value, column.type)

    def _fact_scope(self, level: str, related: Related, since: Any = None) -> tuple[_Scope, Any]:
        if related.name == "contact":
            rows = _CONTACT.alias("qc")
            account = _ACCOUNT.alias("qa")
            scope = _Scope(
                "contact",
                rows,
                self.contact_metrics,
                account=account,
                entity_id=rows.c.id,
                account_id=rows.c.account_id,
            )
            return scope, rows
        rows = self._fact_rows(related, since)
        account = _ACCOUNT.alias("fa")
        contact = _CONTACT.alias("fc")
        scope = _Scope(related.name, rows, account=account, contact=contact)
        return scope, rows

    def _fact_from(self, related: Related, scope: _Scope, rows: Any) -> Any:
        source: Any = rows
        if related.name == "contact":
            m = self.contact_metrics.table
            source = source.outerjoin(m, m.c.entity_id == rows.c.id)
        if "account" in scope.joins:
            source = source.outerjoin(scope.account, scope.account.c.id == rows.c.account_id)
        if "contact" in scope.joins and scope.contact is not None:
            source = source.outerjoin(scope.contact, scope.contact.c.id == rows.c.contact_id)
        return source

    def _fact_scan(
        self, level: str, related: Related, specs: list[tuple[TAggregate, str]]
    ) -> tuple[Any, list[str]]:
        scope, rows = self._fact_scope(level, related, self._reach(related, specs))
        key = rows.c[related.group_by[level]]
        columns = [self._aggregate_column(s, scope, related).label(n) for s, n in specs]
        where = [key.is_not(None)]
        if related.name == "contact":
            where.append(rows.c.deleted_at.is_(None))
        query = (
            sa.select(key.label("entity_id"), *columns)
            .select_from(self._fact_from(related, scope, rows))
            .where(*where)
            .group_by(key)
        )
        return query.subquery(f"{related.name}_{level}"), [n for _, n in specs]

    def _latest_scan(
        self, level: str, related: Related, specs: list[tuple[TAggregate, str]]
    ) -> tuple[Any, list[str]]:
        scope, rows = self._fact_scope(level, related)
        assert related.time is not None
        key = rows.c[related.group_by[level]]
        first = specs[0][0]
        tests = [key.is_not(None), self._window_test(first.window, rows.c[related.time], scope)]
        if first.condition is not None:
            tests.append(self.expr(first.condition, scope))
        values = []
        for spec, name in specs:
            assert spec.value is not None
            values.append(self.expr(spec.value, scope).label(name))
        rank = sa.func.row_number().over(
            partition_by=key, order_by=(rows.c[related.time].desc().nulls_last(), rows.c.id.desc())
        )
        ranked = (
            sa.select(key.label("entity_id"), *values, rank.label("latest_rank"))
            .select_from(self._fact_from(related, scope, rows))
            .where(*tests)
            .subquery()
        )
        names = [n for _, n in specs]
        query = sa.select(ranked.c.entity_id, *(ranked.c[n] for n in names)).where(
            ranked.c.latest_rank == 1
        )
        return query.subquery(f"latest_{related.name}_{level}_{names[0]}"), names


def _where(aggregate: Any, test: Any) -> Any:
    """`aggregate` over the rows passing `test` (all rows when None).

    A FILTER clause rather than an aggregate over CASE: the database then skips the
    aggregate's step for rows that fail. On SQLite a fold of 12 feature sums over 3M usage
    rows took 26% less time; all metric scans of the shipped rules, 7% less (interleaved
    runs, bench/segment_eval.py's store at 10,000 accounts). The result is the same: the
    aggregate over no rows (NULL for sum, min, max and avg; 0 for count)."""
    return aggregate if test is None else aggregate.filter(test)


def _sum_where(value: Any, test: Any) -> Any:
    """The sum of `value` over rows passing `test`, 0 when a group has none (as SUM(CASE
    WHEN test THEN value ELSE 0 END) gave)."""
    return sa.func.coalesce(_where(sa.func.sum(value), test), 0)


def _finish(node: TAggregate, value: Any) -> Any:
    if node.op == "any":
        return sa.func.coalesce(value, 0) > 0
    if node.op in ("no", "all"):
        return sa.func.coalesce(value, 0) == 0
    if node.op in ("count", "sum"):
        return sa.func.coalesce(value, 0)
    return value


def _common(*nodes: TExpr) -> Type:
    for node in nodes:
        if node.type not in (Type.ANY, Type.NULL):
            return node.type
    return Type.TEXT


def _is_timestamp(column: Any) -> bool:
    kind = getattr(column, "type", None)
    if isinstance(kind, sa.TypeDecorator):
        kind = kind.impl_instance
    return isinstance(kind, sa.DateTime)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
