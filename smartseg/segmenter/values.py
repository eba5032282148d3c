"""Values of rule-language expressions per entity: computed CRM fields and a task's "why".

Sync writes computed values (MRR, license utilization, health...) into CRM fields and explains
each task with the values its segment's rule read. Both are expressions in the rule language,
evaluated by the same compiler and metric tables as segments, for many entities in one query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smartseg.segmenter import syntax
from smartseg.segmenter.catalogue import Catalogue
from smartseg.segmenter.check import Checker, RuleError, Source
from smartseg.segmenter.compile import EvalTime
from smartseg.segmenter.evaluate import prepared
from smartseg.segmenter.explain import value_nodes
from smartseg.segmenter.rules import RuleSet
from smartseg.segmenter.typed import TExpr, Type

__all__ = ["Expression", "check_expression", "entity_values", "why_values"]

_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class Expression:
    """A checked expression: its text, typed tree and the segments it names."""

    text: str
    tree: TExpr
    depends_on: frozenset[str] = frozenset()

    @property
    def type(self) -> Type:
        return self.tree.type


def check_expression(
    text: str, level: str, rules: RuleSet, *, catalogue: Catalogue | None = None, where: str = ""
) -> Expression:
    """Parse and check one expression at `level` (fields, metrics and segments of `rules`)."""
    source = Source(None, where or f"expression {text!r}", text)
    try:
        parsed = syntax.parse(text)
    except syntax.RuleSyntaxError as exc:
        raise RuleError(exc.message, source, exc.start, exc.end) from None
    segments = {r.key: r.level for r in rules.segments}
    checker = Checker(catalogue or Catalogue(), rules.metrics, segments)
    checked = checker.expression(parsed, level, source)
    return Expression(text, checked.tree, checked.depends_on)


def entity_values(
    engine: Engine,
    rules: RuleSet,
    level: str,
    expressions: Mapping[str, Expression],
    *,
    day: dt.date,
    tz: Any = None,
    ids: Sequence[int] | None = None,
) -> dict[int, dict[str, Any]]:
    """{entity id: {name: value}} for every live entity of `level` (or only `ids`)."""
    if not expressions:
        return {}
    when = EvalTime(day, tz) if tz is not None else EvalTime(day)
    needed = set().union(*(e.depends_on for e in expressions.values()))
    trees = {name: e.tree for name, e in expressions.items()}
    out: dict[int, dict[str, Any]] = {}
    with engine.connect() as connection, connection.begin() as transaction:
        with prepared(
            connection, rules, when, only=needed, values=trees, values_level=level
        ) as prep:
            names = list(trees)
            row = prep.values_scope.row
            base = (
                sa.select(row.c.id, *(prep.value_columns[n] for n in names))
                .select_from(prep.values_from)
                .where(row.c.deleted_at.is_(None))
            )
            chunks = [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)] if ids else []
            for query in [base.where(row.c.id.in_(list(c))) for c in chunks] or [base]:
                for found in connection.execute(query):
                    out[int(found[0])] = dict(zip(names, found[1:], strict=True))
        transaction.rollback()
    return out


def why_values(
    engine: Engine,
    rules: RuleSet,
    key: str,
    ids: Sequence[int],
    *,
    day: dt.date,
    tz: Any = None,
) -> dict[int, list[tuple[str, Any]]]:
    """For members of segment `key`: the values its rule reads, labelled by their rule text."""
    rule = rules.get(key)
    if rule.checked is None or not ids:
        return {i: [] for i in ids}
    nodes = value_nodes(rule.checked.tree)
    deps = rule.checked.depends_on
    expressions = {f"v{i}": Expression(n.label, n, deps) for i, n in enumerate(nodes)}
    found = entity_values(engine, rules, rule.level, expressions, day=day, tz=tz, ids=ids)
    return {
        entity: [(expressions[name].text, value) for name, value in values.items()]
        for entity, values in found.items()
    }
