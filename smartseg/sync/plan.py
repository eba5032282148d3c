"""What a sync should change, computed from the store alone (no API call).

Per CRM record: the segment tags it should carry and the computed field values, diffed against
`pushed` (what smartseg last wrote and the API confirmed), so only changes are sent and failed
writes come back until they land. Per playbook: the tasks to create for entry (or exit)
episodes without one yet, and the tasks to close for episodes that ended.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from smartseg.config import Config
from smartseg.segmenter.rules import RuleSet
from smartseg.segmenter.values import Expression, check_expression, entity_values, why_values
from smartseg.store.models import (
    Account,
    Contact,
    CrmUser,
    Membership,
    Pushed,
    Segment,
    SourceLink,
    TaskLedger,
    table_of,
)
from smartseg.sync.playbooks import Playbook, render
from smartseg.sync.targets import FieldSpec, TaskWrite, join_tags

__all__ = [
    "OPTIONS_FIELD",
    "ObjectTarget",
    "RecordPlan",
    "SyncPlan",
    "TaskPlan",
    "format_value",
    "object_targets",
    "plan_sync",
]

OPTIONS_FIELD = "__tag_options__"  # pushed row remembering which tag values the field accepts
_ACCOUNT = table_of(Account)
_CONTACT = table_of(Contact)
_LINK = table_of(SourceLink)
_MEMBERSHIP = table_of(Membership)
_PUSHED = table_of(Pushed)
_SEGMENT = table_of(Segment)
_LEDGER = table_of(TaskLedger)
_USER = table_of(CrmUser)
_LINK_OBJECT = {
    ("hubspot", "account"): "company",
    ("hubspot", "contact"): "contact",
    ("salesforce", "account"): "Account",
    ("salesforce", "contact"): "Contact",
}


@dataclass(frozen=True, slots=True)
class ObjectTarget:
    """One CRM object smartseg writes: its tags field and computed fields."""

    target: str
    level: str
    object: str  # the CRM's name: Account, Contact, companies, contacts
    tags_field: str | None
    fields: Mapping[str, Expression]

    def field_specs(self) -> list[FieldSpec]:
        specs = [FieldSpec(self.tags_field, "tags", "smartseg segments")] if self.tags_field else []
        kinds = {"number": "number", "date": "date"}
        for name, expression in self.fields.items():
            kind = kinds.get(expression.type.value, "text")
            specs.append(FieldSpec(name, kind, f"smartseg {expression.text}"[:40]))  # type: ignore[arg-type]
        return specs


@dataclass(slots=True)
class RecordPlan:
    """One CRM record's changes: field -> value to write (tags: smartseg's own values)."""

    target: str
    level: str
    object: str
    record_id: str
    entity_id: int
    changes: dict[str, str | None]
    previous: dict[str, str | None]


@dataclass(frozen=True, slots=True)
class TaskPlan:
    """A task to create or close, with the ledger episode it belongs to."""

    playbook: str
    segment: str
    target: str
    action: str  # "create" | "close"
    membership_id: int
    entity_type: str
    entity_id: int
    task: TaskWrite


@dataclass(slots=True)
class SyncPlan:
    objects: list[ObjectTarget]
    records: list[RecordPlan] = field(default_factory=list)
    new_tag_values: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    owned_tags: frozenset[str] = frozenset()
    tasks: list[TaskPlan] = field(default_factory=list)
    not_in_crm: dict[str, int] = field(default_factory=dict)
    suppressed: list[TaskPlan] = field(default_factory=list)

    def records_for(self, target: str, level: str) -> list[RecordPlan]:
        return [r for r in self.records if r.target == target and r.level == level]


def object_targets(config: Config, rules: RuleSet) -> list[ObjectTarget]:
    """The objects the config writes to, with computed fields checked as expressions."""
    out: list[ObjectTarget] = []
    sf = config.targets.salesforce
    if sf is not None and sf.enabled:
        for level, spec in sf.objects.items():
            out.append(
                ObjectTarget(
                    "salesforce",
                    level,
                    spec.object,
                    spec.tags_field,
                    _expressions(spec.fields, level, rules, "salesforce", level),
                )
            )
    hs = config.targets.hubspot
    if hs is not None and hs.enabled:
        for name, hspec in hs.objects.items():
            level = "account" if name == "company" else "contact"
            out.append(
                ObjectTarget(
                    "hubspot",
                    level,
                    hspec.object,
                    hspec.tags_property,
                    _expressions(hspec.properties, level, rules, "hubspot", name),
                )
            )
    return out


def _expressions(
    mapping: Mapping[str, str], level: str, rules: RuleSet, target: str, obj: str
) -> dict[str, Expression]:
    return {
        name: check_expression(text, level, rules, where=f"targets.{target}.objects.{obj}.{name}")
        for name, text in mapping.items()
    }


def format_value(value: Any) -> str | None:
    """A computed value as the text both CRMs accept and `pushed` compares."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        number = round(float(value), 2)
        return str(int(number)) if number.is_integer() else f"{number:.2f}".rstrip("0")
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _crm_ids(connection: Connection, target: str, level: str) -> dict[int, str]:
    """Entity id -> the CRM record id in `target`."""
    table = _ACCOUNT if level == "account" else _CONTACT
    link_id = _LINK.c.account_id if level == "account" else _LINK.c.contact_id
    prefix = f"{target}:"
    out: dict[int, str] = {}
    for entity, key in connection.execute(
        sa.select(table.c.id, table.c.external_key).where(
            table.c.external_key.startswith(prefix), table.c.deleted_at.is_(None)
        )
    ):
        out[int(entity)] = str(key)[len(prefix) :]
    for entity, source_id in connection.execute(
        sa.select(link_id, _LINK.c.source_id).where(
            _LINK.c.source == target,
            _LINK.c.object == _LINK_OBJECT[(target, level)],
            link_id.is_not(None),
        )
    ):
        out.setdefault(int(entity), str(source_id))
    return out


def _tags(connection: Connection, level: str, keys: Sequence[str]) -> dict[int, list[str]]:
    m = _MEMBERSHIP
    out: dict[int, list[str]] = defaultdict(list)
    for entity, key in connection.execute(
        sa.select(m.c.entity_id, m.c.segment_key)
        .where(m.c.entity_type == level, m.c.exited_at.is_(None), m.c.segment_key.in_(keys))
        .order_by(m.c.entity_id, m.c.segment_key)
    ):
        out[int(entity)].append(str(key))
    return out


def _pushed(connection: Connection, target: str, obj: str) -> dict[tuple[str, str], Any]:
    p = _PUSHED
    rows = connection.execute(
        sa.select(p.c.record_id, p.c.field, p.c.value, p.c.last_error).where(
            p.c.target == target, p.c.object == obj
        )
    )
    return {(r.record_id, r.field): r for r in rows}


def plan_sync(
    engine: Engine,
    config: Config,
    rules: RuleSet,
    playbooks: Sequence[Playbook],
    *,
    now: dt.datetime,
) -> SyncPlan:
    """Everything the next sync would change, as of `now`."""
    objects = object_targets(config, rules)
    day = now.astimezone(config.tz).date()
    keys = [r.key for r in rules.segments]
    with engine.connect() as connection:
        known = {str(k) for (k,) in connection.execute(sa.select(_SEGMENT.c.key))}
    plan = SyncPlan(objects, owned_tags=frozenset(known | set(keys)))
    for obj in objects:
        _plan_object(engine, plan, obj, rules, keys, day, config)
    _plan_tasks(engine, plan, config, rules, playbooks, now, day)
    return plan


def _plan_object(
    engine: Engine,
    plan: SyncPlan,
    obj: ObjectTarget,
    rules: RuleSet,
    keys: Sequence[str],
    day: dt.date,
    config: Config,
) -> None:
    level_keys = [r.key for r in rules.segments if r.level == obj.level]
    with engine.connect() as connection:
        ids = _crm_ids(connection, obj.target, obj.level)
        tags = _tags(connection, obj.level, level_keys) if obj.tags_field else {}
        pushed = _pushed(connection, obj.target, obj.object)
    values = entity_values(engine, rules, obj.level, obj.fields, day=day, tz=config.tz)
    members_without_record = {e for e in tags if e not in ids}
    plan.not_in_crm[f"{obj.target}.{obj.level}"] = len(members_without_record)
    options = pushed.get((obj.tags_field or "", OPTIONS_FIELD))
    confirmed = set((options.value or "").split(";")) if options is not None else set()
    wanted: set[str] = set()
    for entity, record_id in sorted(ids.items()):
        desired: dict[str, str | None] = {}
        if obj.tags_field:
            own = tags.get(entity, [])
            wanted.update(own)
            desired[obj.tags_field] = join_tags(own)
        for name in obj.fields:
            desired[name] = format_value(values.get(entity, {}).get(name))
        changes: dict[str, str | None] = {}
        previous: dict[str, str | None] = {}
        for name, value in desired.items():
            last = pushed.get((record_id, name))
            if last is None:
                if value in (None, ""):
                    continue  # never written, nothing to write: leave the CRM as it is
            elif last.value == value and last.last_error is None:
                continue
            changes[name] = value
            previous[name] = last.value if last is not None else None
        if changes:
            plan.records.append(
                RecordPlan(obj.target, obj.level, obj.object, record_id, entity, changes, previous)
            )
    if obj.tags_field:
        missing = wanted - confirmed
        if missing:
            plan.new_tag_values[(obj.target, obj.level)] = missing


def marker(playbook: str, membership_id: int, target: str, action: str = "create") -> str:
    """The idempotency key of one task: stable across reruns, unique per episode and CRM."""
    digest = hashlib.sha256(f"{playbook}|{membership_id}|{target}|{action}".encode()).hexdigest()
    return f"smartseg-{digest[:24]}"


def _owner_ids(connection: Connection) -> dict[str, str]:
    """HubSpot owner id by lower-case email."""
    rows = connection.execute(
        sa.select(_USER.c.email, _USER.c.source_id).where(_USER.c.source == "hubspot")
    )
    return {str(e).lower(): str(i) for e, i in rows if e}


def _plan_tasks(
    engine: Engine,
    plan: SyncPlan,
    config: Config,
    rules: RuleSet,
    playbooks: Sequence[Playbook],
    now: dt.datetime,
    day: dt.date,
) -> None:
    enabled = {o.target for o in plan.objects}
    for playbook in playbooks:
        rule = rules.get(playbook.segment)
        targets = [t for t in playbook.targets if t in enabled]
        if not targets:
            continue
        with engine.connect() as connection:
            episodes = _episodes(connection, playbook, rule.level, now)
            done = _ledger(connection, playbook.key)
            recent = _recent_tasks(connection, playbook, now)
            owners = _owner_ids(connection)
            crm = {t: _crm_ids(connection, t, rule.level) for t in targets}
            accounts_crm = (
                {t: _crm_ids(connection, t, "account") for t in targets}
                if rule.level == "contact"
                else crm
            )
            details = _details(connection, rule.level, [e[1] for e in episodes])
        pending = [
            e
            for e in episodes
            if any(
                (e[0], t, "create") not in done or done[(e[0], t, "create")] in ("intent", "failed")
                for t in targets
            )
        ]
        why = (
            why_values(
                engine, rules, rule.key, sorted({e[1] for e in pending}), day=day, tz=config.tz
            )
            if pending
            else {}
        )
        for membership_id, entity_id, _ in pending:
            info = details.get(entity_id)
            if info is None:
                continue
            for target in targets:
                state = done.get((membership_id, target, "create"))
                if state not in (None, "intent", "failed"):
                    continue
                record = crm[target].get(entity_id)
                if record is None:
                    continue
                task = _task_write(
                    playbook,
                    rule.key,
                    rules,
                    target,
                    membership_id,
                    entity_id,
                    info,
                    why.get(entity_id, []),
                    record,
                    accounts_crm[target],
                    owners,
                    day,
                    rule.level,
                )
                if state is not None:  # an intent or a failure: the task may exist unlinked
                    task = replace(task, retry=True)
                item = TaskPlan(
                    playbook.key,
                    rule.key,
                    target,
                    "create",
                    membership_id,
                    rule.level,
                    entity_id,
                    task,
                )
                limit = playbook.reentry
                if state is None and limit is not None:
                    count = recent.get((entity_id, target), 0)
                    if count >= limit.max:
                        plan.suppressed.append(item)
                        continue
                    recent[(entity_id, target)] = count + 1
                plan.tasks.append(item)
        if playbook.close_on_exit and playbook.trigger == "enter":
            _plan_closes(engine, plan, playbook, targets, day)


def _episodes(
    connection: Connection, playbook: Playbook, level: str, now: dt.datetime
) -> list[tuple[int, int, dt.datetime]]:
    m = _MEMBERSHIP
    query = sa.select(m.c.id, m.c.entity_id, m.c.entered_at).where(
        m.c.segment_key == playbook.segment, m.c.entity_type == level
    )
    if playbook.trigger == "enter":
        query = query.where(m.c.exited_at.is_(None))
    else:
        query = query.where(m.c.exited_at >= now - playbook.exit_window)
    return [(int(a), int(b), c) for a, b, c in connection.execute(query.order_by(m.c.id))]


def _ledger(connection: Connection, playbook: str) -> dict[tuple[int, str, str], str]:
    rows = connection.execute(
        sa.select(
            _LEDGER.c.membership_id, _LEDGER.c.target, _LEDGER.c.action, _LEDGER.c.state
        ).where(_LEDGER.c.playbook_key == playbook)
    )
    return {(int(m), str(t), str(a)): str(s) for m, t, a, s in rows}


def _recent_tasks(
    connection: Connection, playbook: Playbook, now: dt.datetime
) -> dict[tuple[int, str], int]:
    if playbook.reentry is None:
        return {}
    rows = connection.execute(
        sa.select(_LEDGER.c.entity_id, _LEDGER.c.target, sa.func.count())
        .where(
            _LEDGER.c.playbook_key == playbook.key,
            _LEDGER.c.action == "create",
            _LEDGER.c.state.in_(["created", "closed", "intent"]),
            _LEDGER.c.created_at >= now - playbook.reentry.per,
        )
        .group_by(_LEDGER.c.entity_id, _LEDGER.c.target)
    )
    return {(int(e), str(t)): int(n) for e, t, n in rows}


def _details(connection: Connection, level: str, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Template values per entity: the account (and for contacts, the contact)."""
    out: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), 5000):
        chunk = list(ids[start : start + 5000])
        if level == "account":
            rows = connection.execute(sa.select(_ACCOUNT).where(_ACCOUNT.c.id.in_(chunk)))
            for row in rows:
                out[int(row.id)] = {"account": dict(row._mapping), "contact": {}}
        else:
            joined = _CONTACT.outerjoin(_ACCOUNT, _ACCOUNT.c.id == _CONTACT.c.account_id)
            rows = connection.execute(
                sa.select(_CONTACT, *(c.label(f"a_{c.name}") for c in _ACCOUNT.columns))
                .select_from(joined)
                .where(_CONTACT.c.id.in_(chunk))
            )
            for row in rows:
                data = dict(row._mapping)
                account = {k[2:]: v for k, v in data.items() if k.startswith("a_")}
                contact = {k: v for k, v in data.items() if not k.startswith("a_")}
                out[int(row.id)] = {"account": account, "contact": contact}
    return out


def _task_write(
    playbook: Playbook,
    segment: str,
    rules: RuleSet,
    target: str,
    membership_id: int,
    entity_id: int,
    info: Mapping[str, Any],
    why: Sequence[tuple[str, Any]],
    record: str,
    account_records: Mapping[int, str],
    owners: Mapping[str, str],
    day: dt.date,
    level: str,
) -> TaskWrite:
    rule = rules.get(segment)
    account = info["account"]
    why_text = "\n".join(f"- {label}: {format_value(value) or 'missing'}" for label, value in why)
    rule_text = " ".join((rule.spec.when or "").split())
    values: dict[str, Any] = {
        "account": {k: format_value(v) for k, v in account.items()},
        "contact": {k: format_value(v) for k, v in info["contact"].items()},
        "segment": {
            "key": rule.key,
            "name": rule.spec.name,
            "description": rule.spec.description,
            "rule": rule_text,
        },
        "playbook": {"key": playbook.key, "name": playbook.name},
        "why": why_text,
    }
    key = marker(playbook.key, membership_id, target)
    body = render(playbook.task.body, values) if playbook.task.body else ""
    body = (
        f"{body.rstrip()}\n\n"
        f"Segment: {rule.spec.name} ({rule.key})\nRule: {rule_text}\n"
        f"Why:\n{why_text or '- (hand-listed member)'}\n\nsmartseg key: {key}"
    ).strip()
    account_record = account_records.get(int(account["id"])) if account.get("id") else None
    return TaskWrite(
        key=key,
        subject=render(playbook.task.subject, values)[:255],
        body=body,
        due=day + dt.timedelta(days=max(0, playbook.task.due_in.days)),
        priority=playbook.task.priority,
        owner_id=_owner(playbook, target, account, owners),
        account_record_id=account_record if level == "contact" else record,
        contact_record_id=record if level == "contact" else None,
    )


def _owner(
    playbook: Playbook, target: str, account: Mapping[str, Any], owners: Mapping[str, str]
) -> str | None:
    for choice in playbook.owner:
        if target == "salesforce":
            value = account.get("csm_id" if choice == "csm" else "owner_id")
            if value and str(value).startswith("005"):
                return str(value)
        else:
            email = account.get("csm_email" if choice == "csm" else "owner_email")
            if email and str(email).lower() in owners:
                return owners[str(email).lower()]
    fallback = playbook.fallback_owner.get(target)  # type: ignore[call-overload]
    if fallback and "@" in fallback and target == "hubspot":
        return owners.get(fallback.lower())
    return fallback


def _plan_closes(
    engine: Engine, plan: SyncPlan, playbook: Playbook, targets: Sequence[str], day: dt.date
) -> None:
    m = _MEMBERSHIP
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(_LEDGER, m.c.exited_at)
            .join(m, m.c.id == _LEDGER.c.membership_id)
            .where(
                _LEDGER.c.playbook_key == playbook.key,
                _LEDGER.c.action == "create",
                _LEDGER.c.state == "created",
                _LEDGER.c.target.in_(list(targets)),
                m.c.exited_at.is_not(None),
            )
        ).all()
    for row in rows:
        task = TaskWrite(
            key=row.marker,
            subject=row.subject or playbook.task.subject,
            body="",
            due=row.due_date or day,
            priority=playbook.task.priority,
            owner_id=row.owner_id,
            account_record_id=None,
            contact_record_id=None,
            completed=True,
        )
        plan.tasks.append(
            TaskPlan(
                playbook.key,
                playbook.segment,
                row.target,
                "close",
                row.membership_id,
                row.entity_type,
                row.entity_id,
                task,
            )
        )
