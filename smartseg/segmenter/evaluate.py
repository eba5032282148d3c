"""Evaluate every segment in one transaction and record who entered and who left.

The metric tables are built once per evaluation (one grouped scan per source table), each
segment is then one INSERT ... SELECT into a temporary result table in dependency order, and
membership changes are applied set-based: close the episodes of entities that left, open one
for entities that entered. A failure rolls everything back, so memberships never show half an
evaluation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from smartseg.segmenter.compile import MEMBERS_TABLE, Compiler, EvalTime
from smartseg.segmenter.rules import RuleSet, SegmentRule
from smartseg.segmenter.sqlfuncs import CreateTempAs
from smartseg.segmenter.typed import TExpr
from smartseg.store.models import Account, Contact, Membership, Run, Segment, SourceLink, table_of
from smartseg.store.runs import finish_run, start_run

__all__ = ["EvaluationResult", "SegmentResult", "evaluate", "last_evaluation", "prepared"]

_ACCOUNT = table_of(Account)
_CONTACT = table_of(Contact)
_LINK = table_of(SourceLink)
_MEMBERSHIP = table_of(Membership)
_SEGMENT = table_of(Segment)
_RUN = table_of(Run)


@dataclass(frozen=True, slots=True)
class SegmentResult:
    key: str
    level: str
    members: int
    entered: int
    exited: int


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """What one evaluation found; `recorded` is False for a look at the past (`--as-of`)."""

    run_id: int
    as_of: dt.datetime
    recorded: bool
    segments: dict[str, SegmentResult]
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "recorded": self.recorded,
            "segments": {
                key: {"members": r.members, "entered": r.entered, "exited": r.exited}
                for key, r in self.segments.items()
            },
            "warnings": list(self.warnings),
        }


@dataclass(slots=True)
class _Temp:
    """The temporary tables of one evaluation on one connection."""

    connection: Connection
    names: list[str] = field(default_factory=list)

    def drop_all(self) -> None:
        for name in reversed(self.names):
            self.connection.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
        self.names.clear()


def last_evaluation(engine: Engine) -> tuple[int, dt.datetime] | None:
    """The latest recorded evaluation: (run id, as of)."""
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(_RUN.c.id, _RUN.c.as_of)
            .where(_RUN.c.kind == "evaluate", _RUN.c.status == "ok")
            .order_by(_RUN.c.as_of.desc(), _RUN.c.id.desc())
            .limit(1)
        ).first()
    return (int(row[0]), row[1]) if row is not None and row[1] is not None else None


class prepared:
    """Metric tables and segment results for `rules` on `connection`, dropped on exit.

    `only` limits the work to those segments and what they depend on (preview, explain).
    """

    def __init__(
        self,
        connection: Connection,
        rules: RuleSet,
        when: EvalTime,
        *,
        only: Iterable[str] | None = None,
        values: Mapping[str, TExpr] | None = None,
        values_level: str = "account",
    ) -> None:
        self.connection = connection
        self.rules = rules
        self.compiler = Compiler(when, connection.dialect.name)
        self.when = when
        wanted = _closure(rules, only) if only is not None else None
        self.segments = [r for r in rules.segments if wanted is None or r.key in wanted]
        self.temp = _Temp(connection)
        self.warnings: list[str] = []
        self.counts: dict[str, int] = {}
        self._values = dict(values or {})
        self.values_scope, self.values_from = self.compiler.entity_scope(values_level)
        self.value_columns: dict[str, Any] = {}

    def __enter__(self) -> prepared:
        if self.connection.dialect.name == "postgresql":
            # The de-duplication sorts and DISTINCT aggregates spill to disk at the default
            # 4 MB; this transaction's statements may use more.
            self._execute(sa.text("SET LOCAL work_mem = '64MB'"))
        compiled: list[tuple[SegmentRule, tuple[Any, Any, Any] | None]] = []
        for rule in self.segments:
            if rule.checked is not None:
                compiled.append((rule, self.compiler.predicate(rule.checked.tree, rule.level)))
            else:
                compiled.append((rule, None))
        # Extra value expressions register their metrics before the metric tables are built.
        self.value_columns = {
            name: self.compiler.expr(tree, self.values_scope) for name, tree in self._values.items()
        }
        account_select = self.compiler.metric_select("account")
        contact_select = self.compiler.metric_select("contact")
        self._create_members()
        self._create_metrics(self.compiler.contact_metrics.name, contact_select)
        self._create_metrics(self.compiler.account_metrics.name, account_select)
        for rule, predicate in compiled:
            self._fill(rule, predicate)
        return self

    def __exit__(self, *exc: object) -> None:
        self.temp.drop_all()

    def _execute(self, statement: Any, params: Any = None) -> Any:
        return self.connection.execute(statement, params or {})

    def _create_members(self) -> None:
        self.temp.drop_all()
        for name in (MEMBERS_TABLE, *self._metric_names()):
            self._execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
        self._execute(
            sa.text(
                f"CREATE TEMPORARY TABLE {MEMBERS_TABLE} "
                "(segment_key VARCHAR(80) NOT NULL, entity_id INTEGER NOT NULL)"
            )
        )
        self.temp.names.append(MEMBERS_TABLE)
        self._execute(
            sa.text(f"CREATE INDEX ix_{MEMBERS_TABLE} ON {MEMBERS_TABLE} (segment_key, entity_id)")
        )

    def _metric_names(self) -> list[str]:
        return [self.compiler.contact_metrics.name, self.compiler.account_metrics.name]

    def _create_metrics(self, name: str, select: sa.Select[Any]) -> None:
        self._execute(CreateTempAs(name, select))
        self.temp.names.append(name)
        self._execute(sa.text(f"CREATE UNIQUE INDEX ix_{name} ON {name} (entity_id)"))
        if self.connection.dialect.name == "postgresql":
            # Autovacuum never analyzes temporary tables; without statistics the planner
            # guesses row counts and picks nested loops over 100k-row joins.
            self._execute(sa.text(f"ANALYZE {name}"))

    def _fill(self, rule: SegmentRule, predicate: tuple[Any, Any, Any] | None) -> None:
        members = self.compiler.members
        key = sa.literal(rule.key, sa.String())
        if predicate is not None:
            condition, joined, entity_id = predicate
            table = joined.left if hasattr(joined, "left") else joined
            root = _root(table)
            select = (
                sa.select(key, entity_id)
                .select_from(joined)
                .where(root.c.deleted_at.is_(None), condition)
            )
            self._execute(sa.insert(members).from_select(["segment_key", "entity_id"], select))
        ids, missing = resolve_refs(self.connection, rule.level, rule.spec.include)
        self.warnings.extend(
            f"segment {rule.key}: include {ref!r} matches no {rule.level}" for ref in missing
        )
        exclude, missing = resolve_refs(self.connection, rule.level, rule.spec.exclude)
        self.warnings.extend(
            f"segment {rule.key}: exclude {ref!r} matches no {rule.level}" for ref in missing
        )
        current = self._ids(rule.key) if ids or rule.spec.static else set()
        add = set(ids) - current
        if rule.spec.static:
            add |= self._open_ids(rule) - current
        if add:
            self._execute(
                sa.insert(members), [{"segment_key": rule.key, "entity_id": i} for i in sorted(add)]
            )
        if exclude:
            self._execute(
                sa.delete(members).where(
                    members.c.segment_key == key, members.c.entity_id.in_(sorted(exclude))
                )
            )
        self.counts[rule.key] = self._count(rule.key)

    def _ids(self, key: str) -> set[int]:
        members = self.compiler.members
        rows = self._execute(
            sa.select(members.c.entity_id).where(members.c.segment_key == sa.literal(key))
        )
        return {int(r[0]) for r in rows}

    def _count(self, key: str) -> int:
        members = self.compiler.members
        query = sa.select(sa.func.count()).where(members.c.segment_key == sa.literal(key))
        return int(self._execute(query).scalar_one())

    def _open_ids(self, rule: SegmentRule) -> set[int]:
        rows = self._execute(
            sa.select(_MEMBERSHIP.c.entity_id).where(
                _MEMBERSHIP.c.segment_key == rule.key,
                _MEMBERSHIP.c.entity_type == rule.level,
                _MEMBERSHIP.c.exited_at.is_(None),
            )
        )
        return {int(r[0]) for r in rows}

    def member_ids(self, key: str) -> set[int]:
        return self._ids(key)


def _root(table: Any) -> Any:
    while hasattr(table, "left"):
        table = table.left
    return table


def _closure(rules: RuleSet, keys: Iterable[str]) -> set[str]:
    wanted: set[str] = set()
    todo = list(keys)
    by_key = {r.key: r for r in rules.segments}
    while todo:
        key = todo.pop()
        if key in wanted:
            continue
        wanted.add(key)
        rule = by_key[key]
        if rule.checked is not None:
            todo.extend(rule.checked.depends_on)
    return wanted


def resolve_refs(
    connection: Connection, level: str, refs: Sequence[str]
) -> tuple[list[int], list[str]]:
    """Ids for hand-listed entities: an id, an external key, a source id (`salesforce:001...`),
    a domain (accounts) or an email (contacts). Returns (ids, refs that matched nothing)."""
    if not refs:
        return [], []
    table = _ACCOUNT if level == "account" else _CONTACT
    link_column = _LINK.c.account_id if level == "account" else _LINK.c.contact_id
    lowered = [r.strip().lower() for r in refs]
    found: dict[str, int] = {}
    text_match = table.c.domain if level == "account" else table.c.email
    rows = connection.execute(
        sa.select(table.c.id, table.c.external_key, sa.func.lower(text_match)).where(
            sa.or_(table.c.external_key.in_(list(refs)), sa.func.lower(text_match).in_(lowered))
        )
    )
    for entity_id, external_key, text in rows:
        for ref in refs:
            if ref == external_key or ref.strip().lower() == text:
                found[ref] = int(entity_id)
    links = connection.execute(
        sa.select(link_column, _LINK.c.ref).where(
            _LINK.c.ref.in_(list(refs)), link_column.is_not(None)
        )
    )
    for entity_id, ref in links:
        found.setdefault(ref, int(entity_id))
    digits = [r for r in refs if r.isdigit() and r not in found]
    if digits:
        for (entity_id,) in connection.execute(
            sa.select(table.c.id).where(table.c.id.in_([int(d) for d in digits]))
        ):
            found[str(entity_id)] = int(entity_id)
    return sorted(set(found.values())), [r for r in refs if r not in found]


def evaluate(
    engine: Engine,
    rules: RuleSet,
    *,
    as_of: dt.datetime,
    tz: ZoneInfo | None = None,
    clock: Callable[[], dt.datetime] | None = None,
    job: str | None = None,
) -> EvaluationResult:
    """Evaluate all segments as of `as_of` and record membership changes.

    An `as_of` earlier than the last recorded evaluation is a look at the past: sizes and
    changes are computed against the memberships open at that time, nothing is written.
    """
    tz = tz or ZoneInfo("UTC")
    clock = clock or (lambda: dt.datetime.now(dt.UTC))
    started = clock()
    last = last_evaluation(engine)
    recorded = last is None or as_of >= last[1]
    kind = "evaluate" if recorded else "evaluate-past"
    run_id = start_run(engine, kind, started=started, job=job, as_of=as_of)
    when = EvalTime(as_of.astimezone(tz).date(), tz)
    try:
        with engine.begin() as connection, prepared(connection, rules, when) as prep:
            if connection.dialect.name == "postgresql":
                # Without statistics on the filled result table the planner guesses its size
                # and probes memberships row by row for the largest segments.
                connection.execute(sa.text(f"ANALYZE {MEMBERS_TABLE}"))
            results = _changes(connection, prep, rules, as_of, run_id, recorded)
            warnings = tuple(prep.warnings)
    except BaseException as exc:
        finish_run(
            engine, run_id, finished=clock(), status="failed", counts={"recorded": False},
            api_calls={}, error=f"{type(exc).__name__}: {exc}",
        )  # fmt: skip
        raise
    seconds = (clock() - started).total_seconds()
    counts = {
        "recorded": recorded,
        "segments": {k: [r.members, r.entered, r.exited] for k, r in results.items()},
        "warnings": list(warnings),
    }
    finish_run(engine, run_id, finished=clock(), status="ok", counts=counts, api_calls={})
    return EvaluationResult(run_id, as_of, recorded, results, warnings, seconds)


def _changes(
    connection: Connection,
    prep: prepared,
    rules: RuleSet,
    as_of: dt.datetime,
    run_id: int,
    recorded: bool,
) -> dict[str, SegmentResult]:
    members = prep.compiler.members
    results: dict[str, SegmentResult] = {}
    if recorded:
        _save_segments(connection, rules, run_id, prep.counts, as_of)
    for rule in prep.segments:
        key = sa.literal(rule.key, sa.String())
        m = _MEMBERSHIP
        # Anti-joins as NOT EXISTS: PostgreSQL plans NOT IN (subquery) as a hashed subplan only
        # while it fits work_mem, and falls off a cliff (minutes) for large segments.
        in_result = sa.exists(
            sa.select(sa.literal(1))
            .select_from(members)
            .where(members.c.segment_key == key, members.c.entity_id == m.c.entity_id)
        )
        if recorded:
            open_now = sa.and_(
                m.c.segment_key == rule.key, m.c.entity_type == rule.level, m.c.exited_at.is_(None)
            )
            exited = connection.execute(
                sa.update(m)
                .where(open_now, ~in_result)
                .values(exited_at=as_of, exited_run_id=run_id)
            ).rowcount
            other = _MEMBERSHIP.alias("open_episode")
            still_open = sa.exists(
                sa.select(sa.literal(1))
                .select_from(other)
                .where(other.c.segment_key == rule.key, other.c.entity_type == rule.level)
                .where(other.c.exited_at.is_(None), other.c.entity_id == members.c.entity_id)
            )
            select = sa.select(
                key,
                sa.literal(rule.level, sa.String()),
                members.c.entity_id,
                sa.literal(as_of, m.c.entered_at.type),
                sa.literal(run_id, sa.Integer()),
                sa.literal({}, m.c["values"].type),
            ).where(members.c.segment_key == key, ~still_open)
            connection.execute(
                sa.insert(m).from_select(
                    [
                        "segment_key",
                        "entity_type",
                        "entity_id",
                        "entered_at",
                        "entered_run_id",
                        "values",
                    ],
                    select,
                )
            )
            # rowcount of INSERT ... SELECT is not reliable across drivers; count what landed.
            entered = connection.execute(
                sa.select(sa.func.count()).where(
                    open_now, m.c.entered_run_id == run_id, m.c.segment_key == rule.key
                )
            ).scalar_one()
        else:
            # Open at `as_of`: entered by then and not yet exited by then.
            open_then = sa.and_(
                m.c.segment_key == rule.key,
                m.c.entity_type == rule.level,
                m.c.entered_at <= as_of,
                sa.or_(m.c.exited_at.is_(None), m.c.exited_at > as_of),
            )
            was = {int(r[0]) for r in connection.execute(sa.select(m.c.entity_id).where(open_then))}
            now = prep.member_ids(rule.key)
            entered, exited = len(now - was), len(was - now)
        results[rule.key] = SegmentResult(
            rule.key, rule.level, prep.counts.get(rule.key, 0), entered, exited
        )
    if recorded:
        _retire(connection, rules, as_of, run_id)
    return results


def _save_segments(
    connection: Connection,
    rules: RuleSet,
    run_id: int,
    counts: dict[str, int],
    as_of: dt.datetime,
) -> None:
    from smartseg.store.upsert import upsert

    rows = [
        {
            "key": r.key,
            "name": r.spec.name,
            "description": r.spec.description or None,
            "level": r.level,
            "rule": r.spec.when or "",
            "rule_hash": r.rule_hash,
            "catalogue": list(r.spec.catalogue),
            "static": r.spec.static,
            "source_file": str(r.file),
            "member_count": counts.get(r.key, 0),
            "last_run_id": run_id,
            "updated_at": as_of,
        }
        for r in rules.segments
    ]
    if rows:
        upsert(connection, Segment, rows, key=("key",))


def _retire(connection: Connection, rules: RuleSet, as_of: dt.datetime, run_id: int) -> None:
    """Segments removed from config: close their open episodes so their tags come off."""
    keys = [r.key for r in rules.segments]
    m = _MEMBERSHIP
    connection.execute(
        sa.update(m)
        .where(m.c.exited_at.is_(None), m.c.segment_key.not_in(keys))
        .values(exited_at=as_of, exited_run_id=run_id)
    )
    connection.execute(
        sa.update(_SEGMENT)
        .where(_SEGMENT.c.key.not_in(keys))
        .values(member_count=0, last_run_id=run_id)
    )
