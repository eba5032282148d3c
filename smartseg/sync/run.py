"""Carry out a sync plan: schema first, then record writes, then tasks, all recorded.

Tags: smartseg reads the current value of each changed record's tags field right before
writing, keeps every value it does not own (a CSM's hand-added tag survives) and replaces only
its own. Tasks: the intent is committed to `task_ledger` before the API call and reconciled
after; the call is an upsert on the task's key, so a rerun after a crash at any point finds or
repeats the same task, never a second one.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smartseg.store.models import Pushed, TaskLedger, table_of
from smartseg.store.runs import finish_run, start_run
from smartseg.store.upsert import upsert
from smartseg.sync.plan import OPTIONS_FIELD, RecordPlan, SyncPlan, TaskPlan
from smartseg.sync.targets import CrmTarget, RecordWrite, join_tags, split_tags

__all__ = ["SyncResult", "estimate_calls", "execute"]

_PUSHED = table_of(Pushed)
_LEDGER = table_of(TaskLedger)
_BATCH = {"salesforce": 200, "hubspot": 100}


@dataclass(slots=True)
class SyncResult:
    run_id: int
    dry_run: bool
    records_updated: int = 0
    tasks_created: int = 0
    tasks_closed: int = 0
    failed: int = 0
    api_calls: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    schema: list[str] = field(default_factory=list)
    plan: SyncPlan | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "records_updated": self.records_updated,
            "tasks_created": self.tasks_created,
            "tasks_closed": self.tasks_closed,
            "failed": self.failed,
            "api_calls": self.api_calls,
        }


def estimate_calls(plan: SyncPlan, targets: Sequence[str]) -> dict[str, int]:
    """The API calls the real run will cost (reads of current tags included)."""
    out: dict[str, int] = {}
    for target in targets:
        size = _BATCH[target]
        calls = 0
        for obj in plan.objects:
            if obj.target != target:
                continue
            records = plan.records_for(target, obj.level)
            calls += math.ceil(len(records) / size)
            tagged = [r for r in records if obj.tags_field and obj.tags_field in r.changes]
            calls += math.ceil(len(tagged) / size)
            if plan.new_tag_values.get((target, obj.level)):
                calls += 2
        tasks = [t for t in plan.tasks if t.target == target]
        calls += math.ceil(len(tasks) / size)
        out[target] = calls
    return out


def execute(
    engine: Engine,
    plan: SyncPlan,
    targets: Mapping[str, CrmTarget],
    *,
    now: dt.datetime,
    dry_run: bool = False,
    clock: Callable[[], dt.datetime] | None = None,
) -> SyncResult:
    """Apply `plan` through `targets` (or only count it, on a dry run) and record a run."""
    clock = clock or (lambda: dt.datetime.now(dt.UTC))
    run_id = start_run(engine, "sync-dry-run" if dry_run else "sync", started=clock(), as_of=now)
    result = SyncResult(run_id, dry_run, plan=plan)
    try:
        if dry_run:
            result.records_updated = len(plan.records)
            result.tasks_created = sum(1 for t in plan.tasks if t.action == "create")
            result.tasks_closed = sum(1 for t in plan.tasks if t.action == "close")
            result.api_calls = estimate_calls(plan, list(targets))
        else:
            for name, target in targets.items():
                _records(engine, plan, name, target, result, run_id, now)
                _tasks(engine, plan, name, target, result, run_id, now)
            result.api_calls = {name: target.calls() for name, target in targets.items()}
    except BaseException as exc:
        calls = {name: target.calls() for name, target in targets.items()}
        finish_run(
            engine,
            run_id,
            finished=clock(),
            status="failed",
            counts=result.as_json(),
            api_calls=calls,
            error=f"{type(exc).__name__}: {exc}",
        )
        raise
    counts = result.as_json()
    counts["failures"] = result.failures[:200]
    status = "ok" if result.failed == 0 else "partial"
    finish_run(
        engine, run_id, finished=clock(), status=status, counts=counts, api_calls=result.api_calls
    )
    return result


def _records(
    engine: Engine,
    plan: SyncPlan,
    name: str,
    target: CrmTarget,
    result: SyncResult,
    run_id: int,
    now: dt.datetime,
) -> None:
    for obj in plan.objects:
        if obj.target != name:
            continue
        records = plan.records_for(name, obj.level)
        if not records:
            continue
        level: Any = obj.level
        new_values = plan.new_tag_values.get((name, obj.level))
        if obj.tags_field and new_values:
            result.schema += target.ensure_tag_values(level, obj.tags_field, sorted(new_values))
            _remember_options(engine, name, obj.object, obj.tags_field, new_values, run_id, now)
        current: dict[str, str] = {}
        tagged = [r.record_id for r in records if obj.tags_field and obj.tags_field in r.changes]
        if obj.tags_field and tagged:
            current = target.read_tags(level, obj.tags_field, tagged)
        writes = [_merged(r, obj.tags_field, current, plan.owned_tags) for r in records]
        outcomes = {o.record_id: o for o in target.update(level, writes)}
        rows: list[dict[str, Any]] = []
        for record in records:
            outcome = outcomes.get(record.record_id)
            ok = outcome is not None and outcome.ok
            error = None if ok else (outcome.error if outcome else "no result from the API")
            for field_name, value in record.changes.items():
                rows.append(
                    {
                        "target": name,
                        "object": obj.object,
                        "record_id": record.record_id,
                        "field": field_name,
                        "value": value if ok else record.previous.get(field_name),
                        "pushed_at": now,
                        "run_id": run_id,
                        "last_error": error,
                    }
                )
            if ok:
                result.records_updated += 1
            else:
                result.failed += 1
                result.failures.append(
                    {"target": name, "record": record.record_id, "error": str(error)}
                )
        _save_pushed(engine, rows)


def _merged(
    record: RecordPlan, tags_field: str | None, current: Mapping[str, str], owned: frozenset[str]
) -> RecordWrite:
    values: dict[str, str | float | None] = dict(record.changes)
    if tags_field and tags_field in record.changes:
        keep = [v for v in split_tags(current.get(record.record_id)) if v not in owned]
        mine = split_tags(record.changes[tags_field])
        values[tags_field] = join_tags([*keep, *mine]) or None
    return RecordWrite(record.record_id, values)


def _save_pushed(engine: Engine, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    with engine.begin() as connection:
        upsert(connection, Pushed, rows, key=("target", "object", "record_id", "field"))
        failed = [(r["target"], r["object"], r["record_id"]) for r in rows if r["last_error"]]
        if failed:
            p = _PUSHED
            for target, obj, record in sorted(set(failed)):
                connection.execute(
                    sa.update(p)
                    .where(p.c.target == target, p.c.object == obj, p.c.record_id == record)
                    .values(attempts=p.c.attempts + 1)
                )


def _remember_options(
    engine: Engine,
    target: str,
    obj: str,
    field_name: str,
    added: set[str],
    run_id: int,
    now: dt.datetime,
) -> None:
    p = _PUSHED
    with engine.begin() as connection:
        row = connection.execute(
            sa.select(p.c.value).where(
                p.c.target == target,
                p.c.object == obj,
                p.c.record_id == field_name,
                p.c.field == OPTIONS_FIELD,
            )
        ).first()
        known = set(split_tags(row[0])) if row is not None else set()
        value = join_tags(sorted(known | added))
        upsert(
            connection,
            Pushed,
            [
                {
                    "target": target,
                    "object": obj,
                    "record_id": field_name,
                    "field": OPTIONS_FIELD,
                    "value": value,
                    "pushed_at": now,
                    "run_id": run_id,
                    "last_error": None,
                }
            ],
            key=("target", "object", "record_id", "field"),
        )


def _tasks(
    engine: Engine,
    plan: SyncPlan,
    name: str,
    target: CrmTarget,
    result: SyncResult,
    run_id: int,
    now: dt.datetime,
) -> None:
    _record_intents(
        engine, [t for t in plan.suppressed if t.target == name], run_id, now, "suppressed"
    )
    items = [t for t in plan.tasks if t.target == name]
    if not items:
        return
    _record_intents(engine, items, run_id, now)
    outcomes = {o.key: o for o in target.upsert_tasks([t.task for t in items])}
    with engine.begin() as connection:
        for item in items:
            outcome = outcomes.get(item.task.key)
            ok = outcome is not None and outcome.ok
            if ok:
                state = "closed" if item.action == "close" else "created"
                if item.action == "close":
                    result.tasks_closed += 1
                else:
                    result.tasks_created += 1
            else:
                state = "failed" if item.action == "create" else "created"
                result.failed += 1
                result.failures.append(
                    {
                        "target": name,
                        "task": item.task.key,
                        "error": str(outcome.error if outcome else "no result"),
                    }
                )
            values: dict[str, Any] = {
                "state": state,
                "updated_at": now,
                "run_id": run_id,
                "attempts": _LEDGER.c.attempts + 1,
                "error": None if ok else (outcome.error if outcome else "no result from the API"),
            }
            if ok and outcome is not None and outcome.task_id:
                values["crm_task_id"] = outcome.task_id
            connection.execute(
                sa.update(_LEDGER).where(_LEDGER.c.marker == item.task.key).values(**values)
            )


def _record_intents(
    engine: Engine,
    items: Sequence[TaskPlan],
    run_id: int,
    now: dt.datetime,
    state: str = "intent",
) -> None:
    """Commit one ledger row per new task before any API call (existing rows are kept).

    Suppressed tasks (over a playbook's re-entry limit) get a row too, so that episode never
    fires later."""
    rows = [
        {
            "playbook_key": t.playbook,
            "segment_key": t.segment,
            "target": t.target,
            "action": "create",
            "membership_id": t.membership_id,
            "entity_type": t.entity_type,
            "entity_id": t.entity_id,
            "marker": t.task.key,
            "state": state,
            "owner_id": t.task.owner_id,
            "due_date": t.task.due,
            "subject": t.task.subject,
            "attempts": 0,
            "run_id": run_id,
            "created_at": now,
            "updated_at": now,
        }
        for t in items
        if t.action == "create"
    ]
    if not rows:
        return
    with engine.begin() as connection:
        existing = {
            str(m)
            for (m,) in connection.execute(
                sa.select(_LEDGER.c.marker).where(_LEDGER.c.marker.in_([r["marker"] for r in rows]))
            )
        }
        fresh = [r for r in rows if r["marker"] not in existing]
        if fresh:
            connection.execute(sa.insert(_LEDGER), fresh)
