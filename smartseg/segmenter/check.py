"""Check a parsed rule against the catalogue: resolve names, expand named metrics, type it.

The result is a typed tree (`typed.py`) that the compiler prints without looking anything up.
Every problem raises `RuleError`, which names the file, the rule, the line and column, and
shows the rule with a caret under the spot.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from smartseg.errors import ConfigError
from smartseg.segmenter import syntax as s
from smartseg.segmenter.catalogue import LEVELS, RELATED, Catalogue
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

__all__ = ["Checked", "Checker", "NamedMetric", "RuleError", "Source", "shift_windows"]

_USAGE = {"events": "events", "minutes": "minutes", "active_days": "days", "active_users": "users"}
_FEATURE_USAGE = {
    "feature_events": "events",
    "feature_minutes": "minutes",
    "feature_days": "days",
    "feature_users": "users",
}
_SCALAR: dict[str, tuple[tuple[Type, ...], Type]] = {
    "days_since": ((Type.DATE,), Type.NUMBER),
    "days_until": ((Type.DATE,), Type.NUMBER),
    "lower": ((Type.TEXT,), Type.TEXT),
    "upper": ((Type.TEXT,), Type.TEXT),
    "length": ((Type.TEXT,), Type.NUMBER),
    "contains": ((Type.TEXT, Type.TEXT), Type.BOOL),
    "starts_with": ((Type.TEXT, Type.TEXT), Type.BOOL),
    "ends_with": ((Type.TEXT, Type.TEXT), Type.BOOL),
    "has_tag": ((Type.TEXT, Type.TEXT), Type.BOOL),
    "abs": ((Type.NUMBER,), Type.NUMBER),
    "round": ((Type.NUMBER,), Type.NUMBER),
    "number": ((Type.ANY,), Type.NUMBER),
}
_VARIADIC = ("coalesce", "least", "greatest")
_SPECIAL = ("date", "in_segment", "change", "previous")
FUNCTIONS = sorted([*_USAGE, *_FEATURE_USAGE, *_SCALAR, *_VARIADIC, *_SPECIAL])
_COUNTING = ("any", "no", "all", "count")
_COMPARE = ("=", "!=", "<", "<=", ">", ">=")


@dataclass(frozen=True, slots=True)
class Source:
    """Where a piece of rule text lives, so errors can point into the file."""

    file: Path | None
    key: str
    text: str
    line: int | None = None  # 1-based position of the text's first character in the file
    column: int | None = None
    lines: tuple[tuple[int, int], ...] = ()  # per text offset: (line, column), when mapped

    def position(self, offset: int) -> tuple[int | None, int | None]:
        """File line and column of a text offset (best effort when the text was folded)."""
        if self.lines and 0 <= offset < len(self.lines):
            return self.lines[offset]
        if self.line is None:
            return None, None
        before = self.text[:offset]
        if "\n" in before:
            return self.line + before.count("\n"), len(before.rsplit("\n", 1)[1]) + 1
        return self.line, (self.column or 1) + offset


class RuleError(ConfigError):
    """A rule or metric that cannot be used, with the spot underlined."""

    def __init__(self, message: str, source: Source, start: int, end: int | None = None) -> None:
        self.source = source
        self.start = start
        self.end = max(end if end is not None else start + 1, start + 1)
        line, column = source.position(start)
        super().__init__(message, file=source.file, line=line, column=column, key=source.key)

    def location(self) -> str:
        parts = [str(self.file)] if self.file is not None else []
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.column is not None:
            parts.append(f"column {self.column}")
        parts.append(self.source.key)
        return ", ".join(parts)

    def excerpt(self) -> str:
        """The rule's line with a caret under the problem."""
        text = self.source.text
        line_start = text.rfind("\n", 0, self.start) + 1
        line_end = text.find("\n", self.start)
        line_end = len(text) if line_end < 0 else line_end
        shown = text[line_start:line_end]
        width = max(1, min(self.end, line_end) - self.start)
        return f"    {shown}\n    {' ' * (self.start - line_start)}{'^' * width}"

    def __str__(self) -> str:
        return f"{super().__str__()}\n{self.excerpt()}"


@dataclass(frozen=True, slots=True)
class NamedMetric:
    """A metric defined once in config (`metrics:`), used by name in rules."""

    name: str
    params: tuple[str, ...]
    expr: s.Expr
    source: Source
    description: str = ""


@dataclass(frozen=True, slots=True)
class Checked:
    """A checked rule: the typed tree and the segments it depends on."""

    tree: TExpr
    depends_on: frozenset[str]


def did_you_mean(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word.lower(), [o.lower() for o in options], n=1, cutoff=0.6)
    if not close:
        return ""
    original = next(o for o in options if o.lower() == close[0])
    return f"; did you mean {original!r}?"


@dataclass(slots=True)
class _Scope:
    level: str  # "account", "contact", or a related table's name
    outer: str | None = None  # for related tables: the level that aggregates them
    in_contact_aggregate: bool = False
    env: Mapping[str, TExpr] = field(default_factory=dict)
    source: Source | None = None


class Checker:
    """Checks rules against one catalogue, one set of named metrics and the known segments."""

    def __init__(
        self,
        catalogue: Catalogue,
        metrics: Mapping[str, NamedMetric] | None = None,
        segment_levels: Mapping[str, str] | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.metrics = dict(metrics or {})
        self.segment_levels = dict(segment_levels or {})
        self._stack: list[str] = []
        self._deps: set[str] = set()
        self._segment_refs = 0

    def check(self, expr: s.Expr, level: str, source: Source) -> Checked:
        """Type `expr` at `level` ("account" or "contact"); it must be true/false."""
        self._deps = set()
        scope = _Scope(level, source=source)
        tree = self._expr(expr, scope)
        if tree.type is not Type.BOOL:
            raise RuleError(
                f"a rule must be a condition (true or false), but this is a {tree.type}; "
                "compare it with something, e.g. `... > 0`",
                source,
                expr.span.start,
                expr.span.end,
            )
        return Checked(tree, frozenset(self._deps))

    def expression(self, expr: s.Expr, level: str, source: Source) -> Checked:
        """Type any expression at `level` (a computed value rather than a condition)."""
        self._deps = set()
        tree = self._expr(expr, _Scope(level, source=source))
        if tree.type in (Type.WINDOW, Type.LIST, Type.NULL):
            raise RuleError(
                f"expected a value, got a {tree.type}", source, expr.span.start, expr.span.end
            )
        return Checked(tree, frozenset(self._deps))

    def check_metric(self, metric: NamedMetric, level: str) -> TExpr:
        """Check a named metric's body at `level`, with its parameters taken as windows."""
        self._deps = set()
        env = {p: TConst(Type.WINDOW, WindowSpec(30), label=p) for p in metric.params}
        with self._metric(metric.name, metric.source, metric.expr.span):
            return self._expr(metric.expr, _Scope(level, env=env, source=metric.source))

    # --- helpers ---------------------------------------------------------------------------

    def _fail(self, scope: _Scope, node: s.Expr | s.Span, message: str) -> RuleError:
        span = node if isinstance(node, s.Span) else node.span
        assert scope.source is not None
        return RuleError(message, scope.source, span.start, span.end)

    def _text(self, scope: _Scope, node: s.Expr) -> str:
        assert scope.source is not None
        return scope.source.text[node.span.start : node.span.end]

    @contextmanager
    def _metric(self, name: str, source: Source, span: s.Span) -> Iterator[None]:
        if name in self._stack:
            chain = " -> ".join([*self._stack[self._stack.index(name) :], name])
            raise RuleError(f"metric {name!r} refers to itself: {chain}", source, span.start)
        self._stack.append(name)
        try:
            yield
        finally:
            self._stack.pop()

    # --- expressions -------------------------------------------------------------------------

    def _expr(self, node: s.Expr, scope: _Scope) -> TExpr:
        typed = self._dispatch(node, scope)
        if not typed.label:
            typed = replace(typed, label=" ".join(self._text(scope, node).split()))
        return typed

    def _dispatch(self, node: s.Expr, scope: _Scope) -> TExpr:
        match node:
            case s.Literal(kind="number", value=v):
                return TConst(Type.NUMBER, v)
            case s.Literal(kind="text", value=v):
                return TConst(Type.TEXT, v)
            case s.Literal(kind="bool", value=v):
                return TConst(Type.BOOL, v)
            case s.Literal(kind="null"):
                return TConst(Type.NULL, None)
            case s.Literal(kind="duration", value=v):
                return TConst(Type.DURATION, v)
            case s.Window():
                return TConst(Type.WINDOW, WindowSpec(node.length, node.before, node.first))
            case s.ListOf():
                raise self._fail(scope, node, "a [list] is only allowed as a feature list")
            case s.Name():
                return self._name(node, scope)
            case s.Call():
                return self._call(node, scope)
            case s.Aggregate():
                return self._aggregate(node, scope)
            case s.Unary():
                return self._unary(node, scope)
            case s.Binary():
                return self._binary(node, scope)
            case s.In():
                return self._in(node, scope)
            case s.Between():
                operand = self._expr(node.operand, scope)
                low = self._expr(node.low, scope)
                high = self._expr(node.high, scope)
                self._comparable(scope, node, operand, low, "<=")
                self._comparable(scope, node, operand, high, "<=")
                return TBetween(Type.BOOL, operand, low, high, node.negated)
            case s.IsNull():
                return TIsNull(Type.BOOL, self._expr(node.operand, scope), node.negated)
        raise self._fail(scope, node, "this kind of expression is not supported here")

    def _name(self, node: s.Name, scope: _Scope) -> TExpr:
        head = node.parts[0]
        if len(node.parts) == 1 and head in scope.env:
            return scope.env[head]
        if len(node.parts) > 1:
            return self._dotted(node, scope)
        kind = self.catalogue.field_type(scope.level, head)
        if kind is None and head.lower() != head:
            kind = self.catalogue.field_type(scope.level, head.lower())
            head = head.lower() if kind is not None else head
        if kind is not None:
            if head in ("tenure", "today") and not self._is_column(scope.level, head):
                return TDerived(kind, head)
            if self.catalogue.is_custom(scope.level, head) and kind is Type.ANY:
                return TCustom(Type.ANY, head)
            return TField(kind, head)
        if head in self.metrics and scope.level in LEVELS:
            return self._named_metric(node, head, (), scope)
        if head == "tenure" and scope.level == "contact":
            return TAccount(Type.DURATION, TDerived(Type.DURATION, "tenure"))
        options = self.catalogue.names(scope.level)
        if scope.level in LEVELS:
            options = [*options, *self.metrics]
        where = f"{scope.level}s" if scope.level in LEVELS else f"{scope.level} rows"
        hint = did_you_mean(head, options)
        if not hint and head in self.catalogue.names("account") and scope.level != "account":
            hint = f"; it is an account field: write account.{head}"
        raise self._fail(scope, node, f"unknown field {head!r} for {where}{hint}")

    def _is_column(self, level: str, name: str) -> bool:
        return level in self.catalogue.levels and name in self.catalogue.levels[level]

    def _dotted(self, node: s.Name, scope: _Scope) -> TExpr:
        head, rest = node.parts[0], node.parts[1:]
        inner_span = s.Span(node.span.start + len(head) + 1, node.span.end)
        inner = s.Name(inner_span, rest)
        if head == "account" and scope.level != "account":
            if scope.level != "contact":
                field_type = self.catalogue.field_type("account", rest[0])
                if len(rest) != 1 or field_type is None:
                    raise self._fail(
                        scope, node, "inside an aggregate, account.<name> must be an account field"
                    )
                return TAccount(field_type, self._account_field(rest[0], field_type))
            if scope.in_contact_aggregate and len(rest) == 1 and rest[0] in self.metrics:
                raise self._fail(
                    scope,
                    node,
                    "use account metrics outside `contact(...)`: the contact "
                    "aggregate is itself part of the account's metrics",
                )
            outer = _Scope("account", source=scope.source, env=scope.env)
            typed = self._expr(inner, outer)
            return TAccount(typed.type, typed)
        if head == "contact" and scope.level in RELATED and scope.outer is not None:
            field_type = RELATED["contact"].fields.get(rest[0])
            if len(rest) != 1 or field_type is None:
                hint = did_you_mean(rest[0], list(RELATED["contact"].fields))
                raise self._fail(scope, node, f"unknown contact field {rest[0]!r}{hint}")
            return TContactOf(field_type, TField(field_type, rest[0]))
        if head == "account":
            raise self._fail(
                scope,
                node,
                "account.<field> is for contact rules; write the "
                "field name alone in an account rule",
            )
        raise self._fail(
            scope,
            node,
            f"unknown name {node.text!r}: only account.<field> (and, inside an "
            "aggregate, contact.<field>) can be dotted",
        )

    def _account_field(self, name: str, field_type: Type) -> TExpr:
        if name in ("tenure", "today") and not self._is_column("account", name):
            return TDerived(field_type, name)
        if self.catalogue.is_custom("account", name):
            return TCustom(Type.ANY, name)
        return TField(field_type, name)

    def _named_metric(
        self, node: s.Expr, name: str, args: tuple[s.Expr, ...], scope: _Scope
    ) -> TExpr:
        metric = self.metrics[name]
        if len(args) != len(metric.params):
            want = ", ".join(metric.params) or "no arguments"
            raise self._fail(
                scope,
                node,
                f"metric {name!r} takes {len(metric.params)} argument(s) ({want}), got {len(args)}",
            )
        env = {p: self._expr(a, scope) for p, a in zip(metric.params, args, strict=True)}
        inner = _Scope(scope.level, scope.outer, scope.in_contact_aggregate, env, metric.source)
        with self._metric(name, metric.source, metric.expr.span):
            try:
                return self._expr(metric.expr, inner)
            except RuleError as exc:
                if exc.source is metric.source and scope.source is not None:
                    exc.message += f" (in metric {name!r}, used by {scope.source.key})"
                raise

    # --- calls -------------------------------------------------------------------------------

    def _call(self, node: s.Call, scope: _Scope) -> TExpr:
        name = node.name
        if "." in name:
            return self._account_call(node, scope)
        if name in self.metrics and scope.level in LEVELS:
            return self._named_metric(node, name, node.args, scope)
        if name in _USAGE or name in _FEATURE_USAGE:
            return self._usage(node, scope)
        if name == "in_segment":
            return self._in_segment(node, scope)
        if name in ("change", "previous"):
            return self._change(node, scope)
        if name == "date":
            return self._date(node, scope)
        args = tuple(self._expr(a, scope) for a in node.args)
        if name in _VARIADIC:
            if len(args) < 2:
                raise self._fail(scope, node, f"{name}() needs at least two values")
            kind = next((a.type for a in args if a.type is not Type.NULL), Type.NULL)
            for arg, raw in zip(args, node.args, strict=True):
                if arg.type not in (kind, Type.NULL, Type.ANY) and kind is not Type.ANY:
                    raise self._fail(scope, raw, f"{name}() mixes {kind} and {arg.type}")
            return TCall(kind, name, args)
        if name in _SCALAR:
            want, result = _SCALAR[name]
            optional = 1 if name == "round" else 0
            if not len(want) <= len(args) <= len(want) + optional:
                raise self._fail(scope, node, f"{name}() takes {len(want)} argument(s)")
            for arg, raw, kind in zip(args, node.args, (*want, Type.NUMBER), strict=False):
                if kind is not Type.ANY and arg.type not in (kind, Type.ANY, Type.NULL):
                    raise self._fail(scope, raw, f"{name}() expects {kind} here, got {arg.type}")
            return TCall(result, name, args)
        hint = did_you_mean(name, [*FUNCTIONS, *self.metrics])
        raise self._fail(scope, node.name_span, f"unknown function {name!r}{hint}")

    def _account_call(self, node: s.Call, scope: _Scope) -> TExpr:
        """`account.license_utilization(30d)` in a contact rule: the call for the contact's
        account, as `account.<field>` is for a field."""
        head, _, rest = node.name.partition(".")
        if head != "account" or scope.level not in LEVELS:
            raise self._fail(
                scope,
                node.name_span,
                f"unknown function {node.name!r}: only account.<metric>(...) can be dotted, "
                "in contact rules",
            )
        if scope.level == "account":
            raise self._fail(
                scope,
                node.name_span,
                "account.<metric>(...) is for contact rules; write the "
                "metric alone in an account rule",
            )
        if scope.in_contact_aggregate:
            raise self._fail(
                scope,
                node.name_span,
                "use account metrics outside `contact(...)`: the contact "
                "aggregate is itself part of the account's metrics",
            )
        name_span = s.Span(node.name_span.start + len(head) + 1, node.name_span.end)
        inner = s.Call(node.span, rest, node.args, name_span)
        typed = self._expr(inner, _Scope("account", source=scope.source, env=scope.env))
        return TAccount(typed.type, typed)

    def _date(self, node: s.Call, scope: _Scope) -> TExpr:
        if len(node.args) != 1 or not isinstance(node.args[0], s.Literal):
            raise self._fail(scope, node, "date() takes one quoted date, e.g. date('2026-01-31')")
        try:
            return TConst(Type.DATE, dt.date.fromisoformat(str(node.args[0].value)))
        except ValueError:
            raise self._fail(scope, node.args[0], "not a date; write it as 'YYYY-MM-DD'") from None

    def _window(self, scope: _Scope, raw: s.Expr) -> WindowSpec:
        typed = self._expr(raw, scope)
        if isinstance(typed, TConst) and typed.type is Type.WINDOW:
            assert isinstance(typed.value, WindowSpec)
            return typed.value
        if isinstance(typed, TConst) and typed.type is Type.DURATION and typed.value > 0:
            return WindowSpec(int(typed.value))
        raise self._fail(
            scope,
            raw,
            "expected a time window such as 30d, previous 30d, 7d before 7d or first 90d",
        )

    def _features(self, scope: _Scope, raw: s.Expr) -> tuple[str, ...]:
        items = raw.items if isinstance(raw, s.ListOf) else (raw,)
        out: list[str] = []
        for item in items:
            typed = self._expr(item, scope) if not isinstance(item, s.ListOf) else None
            if not isinstance(typed, TConst) or typed.type is not Type.TEXT:
                raise self._fail(
                    scope,
                    item,
                    "expected a feature name in quotes, or a list "
                    "of them like ['sso', 'advanced_reports']",
                )
            out.append(str(typed.value))
        if not out:
            raise self._fail(scope, raw, "the feature list is empty")
        return tuple(out)

    def _usage(self, node: s.Call, scope: _Scope) -> TExpr:
        if scope.level not in LEVELS:
            raise self._fail(scope, node, f"usage metrics cannot be used inside {scope.level}(...)")
        if node.name in _USAGE:
            if not 1 <= len(node.args) <= 2:
                raise self._fail(
                    scope,
                    node,
                    f"{node.name}() takes a window and optionally "
                    f"features: {node.name}(30d) or {node.name}(30d, 'dashboards')",
                )
            window = self._window(scope, node.args[0])
            features = self._features(scope, node.args[1]) if len(node.args) == 2 else None
            measure = _USAGE[node.name]
        else:
            if len(node.args) != 2:
                raise self._fail(
                    scope,
                    node,
                    f"{node.name}() takes features and a window: {node.name}('dashboards', 30d)",
                )
            features = self._features(scope, node.args[0])
            window = self._window(scope, node.args[1])
            measure = _FEATURE_USAGE[node.name]
        return TUsage(Type.NUMBER, measure, window, features)

    def _in_segment(self, node: s.Call, scope: _Scope) -> TExpr:
        arg = node.args[0] if len(node.args) == 1 else None
        if not isinstance(arg, s.Literal) or arg.kind != "text":
            raise self._fail(scope, node, "in_segment() takes one segment key in quotes")
        key = str(arg.value)
        if key not in self.segment_levels:
            hint = did_you_mean(key, list(self.segment_levels))
            raise self._fail(scope, arg, f"unknown segment {key!r}{hint}")
        level = self.segment_levels[key]
        self._deps.add(key)
        self._segment_refs += 1
        if scope.level == level:
            return TSegment(Type.BOOL, key, level)
        if scope.level == "contact" and level == "account":
            return TSegment(Type.BOOL, key, level, of_account=True)
        if scope.level == "account":
            raise self._fail(
                scope,
                arg,
                f"{key!r} is a contact segment; in an account rule write "
                f"any contact(in_segment({key!r}))",
            )
        raise self._fail(scope, node, f"in_segment() cannot be used inside {scope.level}(...)")

    def _change(self, node: s.Call, scope: _Scope) -> TExpr:
        if len(node.args) != 1:
            raise self._fail(
                scope, node, f"{node.name}() takes one metric, e.g. {node.name}(events(30d))"
            )
        current = self._expr(node.args[0], scope)
        if current.type is not Type.NUMBER:
            raise self._fail(
                scope, node.args[0], f"{node.name}() needs a number, got {current.type}"
            )
        before = shift_windows(current)
        if before == current:
            raise self._fail(
                scope,
                node.args[0],
                f"{node.name}() needs a metric over a time "
                "window, such as events(30d) or active_users(30d)",
            )
        before = replace(before, label=f"previous({current.label})")
        if node.name == "previous":
            return before
        ratio = TBinary(
            Type.NUMBER, "/", current, before, label=f"{current.label} / {before.label}"
        )
        return TBinary(Type.NUMBER, "-", ratio, TConst(Type.NUMBER, 1, label="1"))

    # --- aggregates --------------------------------------------------------------------------

    def _aggregate(self, node: s.Aggregate, scope: _Scope) -> TExpr:
        table = node.table
        related = RELATED.get(table)
        if related is None:
            hint = did_you_mean(table, list(RELATED))
            raise self._fail(scope, node.table_span, f"unknown table {table!r} to aggregate{hint}")
        if scope.level not in LEVELS:
            raise self._fail(scope, node, f"aggregates cannot nest inside {scope.level}(...)")
        if scope.level not in related.group_by:
            raise self._fail(
                scope,
                node.table_span,
                f"{table} rows cannot be aggregated per {scope.level}"
                + (
                    "; contact rules reach the account with account.<name>"
                    if table == "contact"
                    else ""
                ),
            )
        args = list(node.args)
        window: WindowSpec | None = None
        if args and self._looks_like_window(args[-1], scope):
            if related.time is None:
                raise self._fail(scope, args[-1], f"{table} rows have no date to window on")
            window = self._window(scope, args.pop())
        if table == "contact":
            inner = _Scope("contact", None, True, scope.env, scope.source)
        else:
            inner = _Scope(table, scope.level, False, scope.env, scope.source)
        refs_before = self._segment_refs
        value: TExpr | None = None
        if node.op not in _COUNTING:
            if not args:
                raise self._fail(
                    scope,
                    node,
                    f"{node.op} {table}(...) needs a value, e.g. {node.op} {table}(score)",
                )
            raw_value = args.pop(0)
            value = self._expr(raw_value, inner)
            if node.op in ("sum", "avg") and value.type is not Type.NUMBER:
                raise self._fail(scope, raw_value, f"{node.op} needs a number, got {value.type}")
        condition: TExpr | None = None
        if args:
            raw_condition = args.pop(0)
            condition = self._expr(raw_condition, inner)
            if condition.type is not Type.BOOL:
                raise self._fail(
                    scope, raw_condition, "expected a condition (true or false) to filter the rows"
                )
        if args:
            raise self._fail(
                scope,
                args[0],
                "too many arguments: an aggregate takes [value,] [condition,] [window]",
            )
        kind = Type.BOOL if node.op in ("any", "no", "all") else Type.NUMBER
        if node.op in ("min", "max", "latest") and value is not None:
            kind = value.type
        return TAggregate(
            kind, node.op, table, condition, value, window, self._segment_refs > refs_before
        )

    def _looks_like_window(self, raw: s.Expr, scope: _Scope) -> bool:
        if isinstance(raw, s.Window) or (isinstance(raw, s.Literal) and raw.kind == "duration"):
            return True
        if isinstance(raw, s.Name) and len(raw.parts) == 1 and raw.parts[0] in scope.env:
            return scope.env[raw.parts[0]].type in (Type.WINDOW, Type.DURATION)
        return False

    # --- operators ---------------------------------------------------------------------------

    def _unary(self, node: s.Unary, scope: _Scope) -> TExpr:
        operand = self._expr(node.operand, scope)
        if node.op == "not":
            if operand.type is not Type.BOOL:
                raise self._fail(
                    scope, node.operand, f"`not` needs a condition, got {operand.type}"
                )
            return TUnary(Type.BOOL, "not", operand)
        if operand.type not in (Type.NUMBER, Type.DURATION, Type.ANY):
            raise self._fail(scope, node.operand, f"cannot negate a {operand.type}")
        if isinstance(operand, TConst):
            return TConst(operand.type, -operand.value)
        return TUnary(Type.NUMBER if operand.type is Type.ANY else operand.type, "-", operand)

    def _binary(self, node: s.Binary, scope: _Scope) -> TExpr:
        left = self._expr(node.left, scope)
        right = self._expr(node.right, scope)
        op = node.op
        if op in ("and", "or"):
            for side, raw in ((left, node.left), (right, node.right)):
                if side.type is not Type.BOOL:
                    raise self._fail(
                        scope,
                        raw,
                        f"`{op}` joins conditions, but this is a "
                        f"{side.type}; compare it with something",
                    )
            return TBinary(Type.BOOL, op, left, right)
        if op in _COMPARE:
            self._comparable(scope, node, left, right, op)
            return TBinary(Type.BOOL, op, left, right)
        return TBinary(self._arith_type(scope, node, left, right), op, left, right)

    def _comparable(self, scope: _Scope, node: s.Expr, left: TExpr, right: TExpr, op: str) -> None:
        if Type.NULL in (left.type, right.type):
            raise self._fail(scope, node, "compare with null using `is null` or `is not null`")
        if Type.ANY in (left.type, right.type) or left.type == right.type:
            if left.type is Type.BOOL and op not in ("=", "!="):
                raise self._fail(scope, node, "true/false values compare only with = or !=")
            if left.type in (Type.WINDOW, Type.LIST):
                raise self._fail(scope, node, f"a {left.type} cannot be compared")
            return
        hint = ""
        if {left.type, right.type} == {Type.DURATION, Type.NUMBER}:
            hint = "; write durations with a unit, e.g. 365d, or use days_since(...)"
        elif {left.type, right.type} == {Type.DATE, Type.TEXT}:
            hint = "; write dates as date('2026-01-31')"
        elif {left.type, right.type} == {Type.BOOL, Type.TEXT}:
            hint = "; write true or false without quotes"
        elif {left.type, right.type} == {Type.TEXT, Type.NUMBER}:
            hint = "; put text in quotes and numbers without"
        raise self._fail(scope, node, f"cannot compare {left.type} with {right.type}{hint}")

    def _arith_type(self, scope: _Scope, node: s.Binary, left: TExpr, right: TExpr) -> Type:
        pair = (left.type if left.type is not Type.ANY else Type.NUMBER,
                right.type if right.type is not Type.ANY else Type.NUMBER)  # fmt: skip
        table: dict[tuple[str, Type, Type], Type] = {
            ("+", Type.NUMBER, Type.NUMBER): Type.NUMBER,
            ("-", Type.NUMBER, Type.NUMBER): Type.NUMBER,
            ("*", Type.NUMBER, Type.NUMBER): Type.NUMBER,
            ("/", Type.NUMBER, Type.NUMBER): Type.NUMBER,
            ("+", Type.DATE, Type.DURATION): Type.DATE,
            ("+", Type.DURATION, Type.DATE): Type.DATE,
            ("-", Type.DATE, Type.DURATION): Type.DATE,
            ("-", Type.DATE, Type.DATE): Type.DURATION,
            ("+", Type.DURATION, Type.DURATION): Type.DURATION,
            ("-", Type.DURATION, Type.DURATION): Type.DURATION,
            ("*", Type.DURATION, Type.NUMBER): Type.DURATION,
            ("*", Type.NUMBER, Type.DURATION): Type.DURATION,
            ("/", Type.DURATION, Type.NUMBER): Type.DURATION,
            ("/", Type.DURATION, Type.DURATION): Type.NUMBER,
        }
        found = table.get((node.op, *pair))
        if found is None:
            raise self._fail(scope, node, f"cannot compute {left.type} {node.op} {right.type}")
        return found

    def _in(self, node: s.In, scope: _Scope) -> TExpr:
        operand = self._expr(node.operand, scope)
        items = tuple(self._expr(i, scope) for i in node.items.items)
        for item, raw in zip(items, node.items.items, strict=True):
            self._comparable(scope, raw, operand, item, "=")
        return TIn(Type.BOOL, operand, items, node.negated)


def shift_windows(expr: TExpr) -> TExpr:
    """The same expression one window earlier: every relative window moves back by its length."""
    match expr:
        case TUsage(window=w) if not w.first:
            return replace(expr, window=w.shifted())
        case TAggregate(window=w) if w is not None and not w.first:
            return replace(expr, window=w.shifted())
        case TBinary():
            return replace(expr, left=shift_windows(expr.left), right=shift_windows(expr.right))
        case TUnary():
            return replace(expr, operand=shift_windows(expr.operand))
        case TCall():
            return replace(expr, args=tuple(shift_windows(a) for a in expr.args))
        case TAccount():
            return replace(expr, inner=shift_windows(expr.inner))
    return expr
