"""`smartseg sync` and `smartseg crm setup`: build the CRM targets from config and run them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import typer

from smartseg.config import Config
from smartseg.connectors.http import CallCounter
from smartseg.errors import ConfigError
from smartseg.segmenter.rules import RuleSet
from smartseg.sync.plan import object_targets, plan_sync
from smartseg.sync.playbooks import load_playbooks
from smartseg.sync.run import SyncResult, execute
from smartseg.sync.targets import CrmTarget
from smartseg.worker.context import AppContext
from smartseg.worker.one_shot import holding_step
from smartseg.worker.segments import rules_for

__all__ = ["build_targets", "crm_setup", "crm_setup_targets", "print_sync", "run_sync"]


def build_targets(
    config: Config,
    calls: CallCounter | None = None,
    *,
    sleep: Callable[[float], None] | None = None,
) -> dict[str, CrmTarget]:
    """The enabled write targets, each over its source's connection."""
    from smartseg.sync.hubspot_target import HubSpotTarget
    from smartseg.sync.salesforce_target import SalesforceTarget

    calls = calls or CallCounter()
    out: dict[str, CrmTarget] = {}
    sf, hs = config.targets.salesforce, config.targets.hubspot
    if sf is not None and sf.enabled:
        if config.sources.salesforce is None:
            raise ConfigError("targets.salesforce needs sources.salesforce for its connection")
        out["salesforce"] = SalesforceTarget(config.sources.salesforce, sf, calls, sleep=sleep)
    if hs is not None and hs.enabled:
        if config.sources.hubspot is None:
            raise ConfigError("targets.hubspot needs sources.hubspot for its connection")
        out["hubspot"] = HubSpotTarget(config.sources.hubspot, hs, calls, sleep=sleep)
    return out


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def run_sync(context: AppContext, *, dry_run: bool = False) -> SyncResult:
    config = context.config()
    rules = rules_for(config)
    playbooks = load_playbooks(config.playbooks_dir, rules)
    now = _now()
    engine = context.migrated_engine()
    with holding_step(engine, config, "sync"):
        plan = plan_sync(engine, config, rules, playbooks, now=now)
        targets = build_targets(config)
        return execute(engine, plan, targets, now=now, dry_run=dry_run)


def crm_setup(context: AppContext) -> dict[str, list[str]]:
    """Create the fields, properties and tag values smartseg writes; say what was done."""
    config = context.config()
    return crm_setup_targets(config, rules_for(config), build_targets(config))


def crm_setup_targets(
    config: Config, rules: RuleSet, targets: Mapping[str, CrmTarget]
) -> dict[str, list[str]]:
    """`crm setup` on given targets: fields, the task key, every segment's tag value, and the
    field-level security that lets smartseg (and who config names) use the fields."""
    done: dict[str, list[str]] = {name: [] for name in targets}
    for obj in object_targets(config, rules):
        target = targets[obj.target]
        level: Any = obj.level
        done[obj.target] += target.ensure_fields(level, obj.field_specs(), create=True)
        if obj.tags_field:
            keys = [r.key for r in rules.segments if r.level == obj.level]
            added = target.ensure_tag_values(level, obj.tags_field, keys)
            if added:
                done[obj.target].append(
                    f"added {len(added)} segment values to {obj.object}.{obj.tags_field}"
                )
    for name, target in targets.items():
        done[name] += target.ensure_task_key(create=True)
        done[name] += target.ensure_access()
    return done


def print_sync(result: SyncResult) -> None:
    plan = result.plan
    if result.dry_run and plan is not None:
        for record in plan.records:
            changes = ", ".join(f"{k} = {v!r}" for k, v in record.changes.items())
            typer.echo(f"update {record.target} {record.object} {record.record_id}: {changes}")
        for task in plan.tasks:
            typer.echo(
                f"{task.action} task in {task.target} ({task.playbook}, {task.entity_type} "
                f"{task.entity_id}): {task.task.subject!r} due {task.task.due}"
            )
        for (target, level), values in sorted(plan.new_tag_values.items()):
            typer.echo(f"add tag values to {target} {level}: {', '.join(sorted(values))}")
        calls = ", ".join(f"{k} {v}" for k, v in result.api_calls.items()) or "none"
        typer.echo(
            f"Dry run: {result.records_updated} record updates, {result.tasks_created} tasks to "
            f"create, {result.tasks_closed} to close; API calls: {calls}. Nothing was written."
        )
        return
    calls = ", ".join(f"{k} {v}" for k, v in result.api_calls.items()) or "none"
    typer.echo(
        f"Sync run {result.run_id}: {result.records_updated} records updated, "
        f"{result.tasks_created} tasks created, {result.tasks_closed} closed, "
        f"{result.failed} failed; API calls: {calls}."
    )
    for line in result.schema:
        typer.echo(f"schema: {line}")
    for failure in result.failures[:20]:
        what = failure.get("record") or failure.get("task")
        typer.echo(f"failed: {failure['target']} {what}: {failure['error']}", err=True)
    if len(result.failures) > 20:
        typer.echo(f"... and {len(result.failures) - 20} more failures (see `smartseg status`)")
