"""The evaluation section: all shipped rules against one grouped scan, and the naive baseline.

Per store size and database: the scan of `usage_daily` (best of three after a warm-up), a first
evaluation (empty ledger: everyone enters) and a second one a day later (windows move a day,
few changes), through the public `evaluate()`; on SQLite at the small scale, the naive
per-entity script of `naive.py` over the first evaluation's day, whose members must equal the
memberships smartseg recorded, rule by rule. The first evaluation's memberships are also
compared between SQLite and PostgreSQL, which hold the same data and must agree.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench.databases import Database, prepare_database, reset_ledgers, server_version
from bench.logs import log
from bench.naive import NaiveResult, open_memberships, run_naive
from bench.segment_eval import baseline, run_evaluation, usage_window
from bench.synthetic import Scale
from smartseg.segmenter.rules import RuleSet
from smartseg.store.models import Membership, table_of

__all__ = ["EvaluationRun", "NaiveCheck", "disagreements", "measure_evaluation"]

Digest = dict[str, tuple[int, str]]  # per segment: members and a hash of their ids


@dataclass(slots=True)
class NaiveCheck:
    """The naive baseline's run and how its members compare with smartseg's."""

    result: NaiveResult
    mismatches: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        r = self.result
        return {
            "seconds": round(r.seconds, 3),
            "queries": r.queries,
            "checks": r.checks,
            "rules_evaluated": len(r.members),
            "rules_by_level": r.levels,
            "skipped": r.skipped,
            "mismatches": self.mismatches,
        }


@dataclass(slots=True)
class EvaluationRun:
    """One store size on one database."""

    scale: Scale
    database: str
    version: str
    load: dict[str, Any]
    window: str
    scan: dict[str, Any]
    first: dict[str, Any]
    second: dict[str, Any]
    members: Digest  # who the first evaluation recorded, to compare databases
    naive: NaiveCheck | None = None

    def as_json(self) -> dict[str, Any]:
        drop = ("segment_members", "slowest")
        return {
            "scale": self.scale.as_json(),
            "database": self.database,
            "server_version": self.version,
            "load": self.load,
            "scan": {**self.scan, "window": self.window},
            "first_evaluation": {k: v for k, v in self.first.items() if k not in drop},
            "second_evaluation": {k: v for k, v in self.second.items() if k not in drop},
            "naive": self.naive.as_json() if self.naive else None,
        }


def measure_evaluation(
    rules: RuleSet,
    scale: Scale,
    kind: str,
    *,
    cache_dir: Path,
    admin_url: str | None = None,
    naive: bool = False,
) -> EvaluationRun:
    """Load (or reuse) the store for `scale` on `kind`, then scan, evaluate twice, and on
    request run the naive baseline after the first evaluation."""
    database = prepare_database(kind, scale, cache_dir=cache_dir, admin_url=admin_url)
    try:
        return _measure(rules, scale, database, naive=naive)
    finally:
        database.engine.dispose()


def _measure(rules: RuleSet, scale: Scale, database: Database, *, naive: bool) -> EvaluationRun:
    engine = database.engine
    start, window = usage_window(rules, scale.as_of.date())
    log(f"evaluation on {database.kind}: {len(rules.segments)} rules; scan window {window}")
    scan = baseline(engine, start)
    reset_ledgers(engine)
    first = run_evaluation(engine, rules, scale.as_of)
    members = membership_digest(engine)
    check = None
    if naive:
        recorded = open_memberships(engine)
        log("naive baseline: every rule, entity by entity")
        result = run_naive(engine, rules, scale.as_of)
        log(f"naive baseline: {result.seconds:.1f}s, {result.queries:,} queries")
        check = NaiveCheck(result, _mismatches(result, recorded))
    second = run_evaluation(engine, rules, scale.as_of + dt.timedelta(days=1))
    return EvaluationRun(
        scale,
        database.kind,
        server_version(database),
        database.load,
        window,
        scan,
        first,
        second,
        members,
        check,
    )


def membership_digest(engine: Engine) -> Digest:
    """The open memberships per segment, as a count and a hash of the sorted ids."""
    m = table_of(Membership)
    query = (
        sa.select(m.c.segment_key, m.c.entity_id)
        .where(m.c.exited_at.is_(None))
        .order_by(m.c.segment_key, m.c.entity_id)
    )
    counts: dict[str, int] = {}
    hashes: dict[str, Any] = {}
    with engine.connect() as connection:
        for key, entity_id in connection.execution_options(yield_per=50_000).execute(query):
            counts[key] = counts.get(key, 0) + 1
            hashes.setdefault(key, hashlib.sha256()).update(b"%d," % entity_id)
    return {k: (counts[k], hashes[k].hexdigest()) for k in counts}


def disagreements(runs: list[EvaluationRun]) -> dict[str, dict[str, int]]:
    """Segments whose members differ between databases on one store: members per database."""
    keys = sorted({k for run in runs for k in run.members})
    return {
        key: {run.database: run.members.get(key, (0, ""))[0] for run in runs}
        for key in keys
        if len({run.members.get(key, (0, "")) for run in runs}) > 1
    }


def _mismatches(result: NaiveResult, recorded: dict[str, set[int]]) -> dict[str, dict[str, Any]]:
    """Rules whose naive members differ from smartseg's, with a few ids each way."""
    out: dict[str, dict[str, Any]] = {}
    for key, members in result.members.items():
        theirs = recorded.get(key, set())
        if members != theirs:
            out[key] = {
                "naive": len(members),
                "smartseg": len(theirs),
                "only_naive": sorted(members - theirs)[:10],
                "only_smartseg": sorted(theirs - members)[:10],
            }
    return out
