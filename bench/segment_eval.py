"""Segment evaluation at scale against one grouped scan of usage on the same database.

    python bench/segment_eval.py --db sqlite|postgresql [--accounts 100000]
        [--contacts-per-account 10] [--usage-rows 30000000] [--postgres-url URL]
        [--reuse] [--rules DIR] [--explain SECONDS]

What is measured, and why. Evaluation builds one metric table per level (one grouped scan per
source table, usage being by far the largest), then runs one INSERT ... SELECT per segment and
applies membership changes set-based. Its floor is therefore about one scan of `usage_daily`:
the issue's target is that evaluating every shipped rule costs at most twice

    SELECT account_id, SUM(events), COUNT(DISTINCT day) FROM usage_daily
    WHERE day >= :start GROUP BY account_id

on the same database, with every row fetched. `:start` is the earliest day any usage window of
the rules reaches (reported as `baseline.window`). Windows anchored on start dates (`first
Nd`) do not move it: evaluation reads those per account, each account's first days only.

The store is filled by the synthetic loader (`synthetic.py` and `synthetic_facts.py` draw
the data with numpy, `loading.py` writes it with executemany on SQLite and COPY on PostgreSQL):
accounts with realistic field distributions, contacts (Primary Contact, Decision Maker,
Executive Sponsor, Champion, then Users), usage rows over the 90 days before the evaluation
day (and on it, which the second evaluation reads), a year of activities, tickets, NPS
answers, subscriptions, opportunities and invoices. The loaded database is cached under
`--cache-dir` (SQLite) or in a database per scale (PostgreSQL) and reused with `--reuse`
(`databases.py`). `python -m bench` runs these measurements at fixed scales, beside the
bench's other figures; this command is for one scale at a time, with phases and plans.

Per database the bench reports: load seconds; the baseline (a warm-up, then the best of three
fetched runs); a first evaluation (empty membership ledger: everyone enters) and a second one
a day later (windows move one day: few changes), each with the SQL time split into phases
(metric tables, per-segment inserts, per-segment result fetches, membership writes) from
statement timings, plus the slowest statements; and the ratio evaluation / baseline. With
`--explain S`, a third evaluation prints the plan (PostgreSQL: EXPLAIN ANALYZE, rolled back)
of every statement slower than S seconds to stderr.

Progress goes to stderr; stdout gets one JSON line of figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `python bench/segment_eval.py` from anywhere

from bench.databases import prepare_database, reset_ledgers, server_version  # noqa: E402
from bench.logs import log  # noqa: E402
from bench.naive import walk  # noqa: E402
from bench.synthetic import AS_OF, Scale  # noqa: E402
from smartseg.segmenter.catalogue import Catalogue  # noqa: E402
from smartseg.segmenter.evaluate import evaluate  # noqa: E402
from smartseg.segmenter.rules import RuleSet, load_rules  # noqa: E402
from smartseg.segmenter.typed import TUsage  # noqa: E402

ADMIN_URL = "postgresql://postgres@127.0.0.1:54329/postgres"

# --- rules -----------------------------------------------------------------------------------


def catalogue_from_config(path: Path) -> Catalogue:
    """The catalogue with the custom fields the config's source field maps keep (read as plain
    YAML: loading the config proper needs its secrets)."""
    import yaml

    levels = {"account": "account", "company": "account", "companies": "account"}
    levels |= {"contact": "contact", "contacts": "contact"}
    custom: dict[str, set[str]] = {"account": set(), "contact": set()}
    base = Catalogue()
    try:
        sources = (yaml.safe_load(path.read_text()) or {}).get("sources", {})
    except (OSError, yaml.YAMLError):
        return base
    for name in ("salesforce", "hubspot"):
        section = sources.get(name) or {}
        if not section.get("enabled", True):
            continue
        for obj, mapping in (section.get("field_map") or {}).items():
            level = levels.get(str(obj).lower())
            if level:
                custom[level].update(n for n in mapping or {} if n not in base.levels[level])
        for obj, names in (section.get("custom_fields") or {}).items():
            level = levels.get(str(obj).lower())
            if level:
                custom[level].update(names or ())
    return Catalogue.with_custom(custom)


def load_rule_set(directory: Path) -> RuleSet:
    """The rules in `directory`, checked as the worker checks them."""
    if not any(directory.glob("*.y*ml")):
        raise SystemExit(f"no segment rules in {directory}; pass --rules DIR")
    return load_rules(directory, catalogue_from_config(REPO / "config" / "smartseg.yaml"))


def usage_window(rules: RuleSet, day: dt.date) -> tuple[dt.date | None, str]:
    """The earliest day the rules' usage windows reach, or None when they use none (read from
    the checked rules, not from the compiler). `first` windows are left out: evaluation reads
    them through each account's start date, not as a range of all accounts' days."""
    windows = [
        node.window
        for rule in rules.segments
        if rule.checked is not None
        for node in walk(rule.checked.tree)
        if isinstance(node, TUsage) and not node.window.first
    ]
    if not windows:
        return None, "full table (no usage windows in the rules)"
    start = min(day - dt.timedelta(days=w.before + w.length) for w in windows)
    return start, f"day >= {start} ({(day - start).days} days before as-of)"


# --- measurements ----------------------------------------------------------------------------


def baseline(engine: Engine, start: dt.date | None, repeat: int = 3) -> dict[str, Any]:
    """The scan to beat: the faster of the bounded scan (rows since `start`) and the whole
    table, since a bound that keeps nearly every row can cost more than it saves (SQLite then
    skips through the index by account), and the baseline must be the cheapest single scan."""
    bounded = _scan(engine, start, repeat)
    if start is None:
        return bounded
    whole = _scan(engine, None, repeat)
    return whole if whole["seconds"] < bounded["seconds"] else bounded


def _scan(engine: Engine, start: dt.date | None, repeat: int) -> dict[str, Any]:
    sql = "SELECT account_id, SUM(events), COUNT(DISTINCT day) FROM usage_daily"
    params: dict[str, Any] = {}
    if start is not None:
        sql += " WHERE day >= :start"
        params["start"] = start
    sql += " GROUP BY account_id"
    statement = sa.text(sql).bindparams(*(sa.bindparam("start", type_=sa.Date()) for _ in params))
    times: list[float] = []
    rows = 0
    for attempt in range(repeat + 1):  # the first run warms the cache and is not counted
        started = time.perf_counter()
        with engine.connect() as connection:
            rows = len(connection.execute(statement, params).fetchall())
        seconds = time.perf_counter() - started
        log(f"baseline {'warm-up' if attempt == 0 else attempt}: {seconds:.2f}s ({rows:,} groups)")
        if attempt:
            times.append(seconds)
    return {
        "sql": sql,
        "groups": rows,
        "seconds": round(min(times), 3),
        "runs": [round(t, 3) for t in times],
        "median": round(statistics.median(times), 3),
    }


def phase_of(statement: str) -> str:
    s = " ".join(statement.split()).lower()
    if "smartseg_m_" in s and (
        s.startswith(("create temporary table", "create unique index", "analyze", "drop table"))
    ):
        return "metric_tables"
    if s.startswith("insert into smartseg_members"):
        return "segment_inserts"
    if "from smartseg_members" in s and s.startswith("select"):
        return "segment_result_fetches"
    if s.startswith(("update membership", "insert into membership")) or (
        s.startswith("select") and "from membership" in s
    ):
        return "membership_writes"
    if "smartseg_members" in s:
        return "setup"
    return "other"


@dataclass(slots=True)
class StatementClock:
    """Times every statement an engine runs, optionally printing plans of slow ones."""

    engine: Engine
    explain_over: float | None = None
    records: list[tuple[str, float, str]] = field(default_factory=list)
    _started: list[float] = field(default_factory=list)

    def __enter__(self) -> StatementClock:
        sa.event.listen(self.engine, "before_cursor_execute", self._before)
        sa.event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._before)
        sa.event.remove(self.engine, "after_cursor_execute", self._after)

    def _before(self, *args: Any) -> None:
        self._started.append(time.perf_counter())

    def _after(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        seconds = time.perf_counter() - self._started.pop()
        self.records.append((phase_of(statement), seconds, statement))
        if self.explain_over is not None and seconds >= self.explain_over and not many:
            self._explain(cursor.connection, statement, parameters, seconds)

    def _explain(self, dbapi: Any, statement: str, parameters: Any, seconds: float) -> None:
        query = statement
        if query.lstrip().upper().startswith("CREATE TEMPORARY TABLE"):
            query = query.split(" AS ", 1)[1]
        postgres = self.engine.dialect.name == "postgresql"
        prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
        cursor = dbapi.cursor()
        try:
            if postgres:
                cursor.execute("SAVEPOINT bench_explain")
            cursor.execute(prefix + query, parameters)
            plan = "\n".join(" | ".join(str(v) for v in row) for row in cursor.fetchall())
            if postgres:
                cursor.execute("ROLLBACK TO SAVEPOINT bench_explain")
        finally:
            cursor.close()
        print(
            f"\n=== {seconds:.2f}s {' '.join(statement.split())[:400]}\n{plan}\n",
            file=sys.stderr,
            flush=True,
        )

    def summary(self, wall: float) -> dict[str, Any]:
        phases: dict[str, float] = {}
        counts: dict[str, int] = {}
        for phase, seconds, _ in self.records:
            phases[phase] = phases.get(phase, 0.0) + seconds
            counts[phase] = counts.get(phase, 0) + 1
        sql = sum(phases.values())
        slowest = sorted(self.records, key=lambda r: -r[1])[:8]
        return {
            "phases": {k: round(v, 3) for k, v in sorted(phases.items(), key=lambda kv: -kv[1])},
            "statements": counts,
            "sql_seconds": round(sql, 3),
            "outside_sql_seconds": round(wall - sql, 3),
            "slowest": [
                {"phase": p, "seconds": round(s, 3), "sql": " ".join(t.split())[:240]}
                for p, s, t in slowest
            ],
        }


def run_evaluation(
    engine: Engine, rules: RuleSet, as_of: dt.datetime, explain_over: float | None = None
) -> dict[str, Any]:
    with StatementClock(engine, explain_over) as clock:
        started = time.perf_counter()
        result = evaluate(engine, rules, as_of=as_of)
        wall = time.perf_counter() - started
    segments = result.segments.values()
    out = {
        "as_of": as_of.isoformat(),
        "seconds": round(wall, 3),
        "reported_seconds": round(result.seconds, 3),
        "members": sum(s.members for s in segments),
        "entered": sum(s.entered for s in segments),
        "exited": sum(s.exited for s in segments),
        "empty_segments": sum(1 for s in segments if s.members == 0),
        **clock.summary(wall),
        "segment_members": {k: s.members for k, s in result.segments.items()},
    }
    log(
        f"evaluation as of {as_of:%Y-%m-%d}: {wall:.2f}s, {out['members']:,} members, "
        f"{out['entered']:,} entered, {out['exited']:,} exited; phases {out['phases']}"
    )
    return out


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--contacts-per-account", type=int, default=10)
    parser.add_argument("--usage-rows", type=int, default=30_000_000)
    parser.add_argument("--usage-days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--postgres-url",
        default=ADMIN_URL,
        help="an admin URL; the bench creates its own database per scale",
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "smartseg-bench"
    )
    parser.add_argument("--reuse", action="store_true", help="reuse a complete cached database")
    parser.add_argument("--rules", type=Path, default=REPO / "config" / "segments")
    parser.add_argument(
        "--explain",
        type=float,
        metavar="SECONDS",
        help="a third evaluation printing plans of statements slower than this",
    )
    args = parser.parse_args()
    if args.contacts_per_account < 1 or args.accounts < 1:
        parser.error("--accounts and --contacts-per-account must be positive")
    scale = Scale(
        args.accounts, args.contacts_per_account, args.usage_rows, args.usage_days, args.seed
    )
    rules = load_rule_set(args.rules)
    database = prepare_database(
        args.db, scale, cache_dir=args.cache_dir, admin_url=args.postgres_url, reuse=args.reuse
    )
    engine = database.engine
    start, window = usage_window(rules, AS_OF.date())
    log(f"{len(rules.segments)} segments from {args.rules}; baseline window: {window}")
    base = baseline(engine, start)
    reset_ledgers(engine)
    first = run_evaluation(engine, rules, AS_OF)
    second = run_evaluation(engine, rules, AS_OF + dt.timedelta(days=1))
    if args.explain is not None:
        log(f"explain run: plans of statements over {args.explain}s follow")
        run_evaluation(engine, rules, AS_OF + dt.timedelta(days=1), args.explain)
    engine.dispose()
    report = {
        "benchmark": "segment_eval",
        "database": args.db,
        "server_version": server_version(database),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "scale": scale.as_json(),
        "load": database.load,
        "rules": {"directory": str(args.rules), "segments": len(rules.segments)},
        "baseline": {**base, "window": window},
        "first_evaluation": first,
        "second_evaluation": second,
        "ratio_first": round(first["seconds"] / base["seconds"], 2),
        "ratio_second": round(second["seconds"] / base["seconds"], 2),
        "target_ratio": 2.0,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
