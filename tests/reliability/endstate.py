"""The comparable end state of a run: what smartseg left in its store and in both CRMs.

Two runs on the same data and the same evaluation instant must leave the same business state,
whatever faults, retries and crashes happened on the way. What legitimately differs between two
such runs is left out or replaced by a natural key, each for a reason given where it is done:

* bookkeeping of how the work went, not what it produced: run ids, the `run` and `lease` tables,
  retry counts (`attempts`) and the last error of an attempt that later succeeded;
* surrogate keys the store or a CRM hands out in the order things happened: store ids (a
  PostgreSQL sequence also advances on rolled-back inserts and on upserts that update), the ids
  of tasks smartseg creates, and the task marker, a digest of the membership id. Each is
  replaced by what it stands for (an account's external key, an entry episode);
* clocks other than smartseg's: a CRM stamps every write with its own wall clock, so the
  modification stamps of records smartseg wrote, and the pull cursors and `updated_at` columns
  that mirror them, depend on when a retry happened.

The task rule is checked here too, not only compared: each (record, playbook, entry episode)
has exactly one task in its CRM, and every task smartseg made has its episode in the ledger.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from smartseg.sandbox.app import Sandbox
from smartseg.store.models import Membership, table_of

__all__ = ["EndState", "Episode", "capture", "crm_task_keys", "task_problems"]

Row = tuple[tuple[str, Any], ...]

# Tables that record how runs went rather than what they produced.
_BOOKKEEPING = {
    "run": "one row per attempt: a faulted history has more of them",
    "lease": "who ran the job last and until when",
    # Cursors are the CRMs' modification stamps (see the module docstring) or file positions,
    # a pull's own progress marker; the rows they stand for are compared instead.
    "stream_state": "pull cursors",
}
# Columns left out of every table that has them.
_RUN_COLUMNS = {"run_id", "entered_run_id", "exited_run_id", "last_run_id", "attempts"}
# Columns left out of one table, and why.
_SKIPPED = {
    # The CRM's modification stamp of a record smartseg itself wrote to: the CRM's wall clock
    # at the moment of that write, later after a retry.
    "account": {"updated_at"},
    "contact": {"updated_at"},
    "activity": {"updated_at"},
    "source_link": {"updated_at"},
    # The path of the rules file, which lives in each test's own temporary folder.
    "segment": {"source_file"},
    # The id the CRM gave a task smartseg created: it follows the order of creation.
    "task_ledger": {"crm_task_id"},
}
# The CRMs' own write stamps and the ids they give to records smartseg creates.
_SF_SYSTEM = {"Id", "CreatedDate", "LastModifiedDate", "SystemModstamp"}
_HS_SYSTEM = {"hs_object_id", "hs_createdate", "createdate", "hs_lastmodifieddate",
              "lastmodifieddate"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Episode:
    """One entry of one entity into one segment, by natural keys (stable across stores)."""

    segment: str
    entity: str  # the account's or contact's external key
    entered_at: str


@dataclass(slots=True)
class EndState:
    """Store tables and CRM records as multisets of normalised rows, plus task problems."""

    tables: dict[str, Counter[Row]] = field(default_factory=dict)
    crm: dict[str, Counter[Row]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def diff(self, other: EndState, *, limit: int = 6) -> list[str]:
        """Human-readable differences from `other` (the reference), at most `limit` per part."""
        out: list[str] = []
        for part, mine, theirs in (("store", self.tables, other.tables),
                                   ("crm", self.crm, other.crm)):  # fmt: skip
            for name in sorted(set(mine) | set(theirs)):
                extra = mine.get(name, Counter()) - theirs.get(name, Counter())
                missing = theirs.get(name, Counter()) - mine.get(name, Counter())
                for label, rows in (("unexpected", extra), ("missing", missing)):
                    listed = sorted(rows.elements(), key=repr)
                    for row in listed[:limit]:
                        out.append(f"{part} {name}: {label} {dict(row)}")
                    if len(listed) > limit:
                        out.append(f"{part} {name}: ... {len(listed) - limit} more {label}")
        return out

    def count(self, part: str, name: str) -> int:
        source = self.tables if part == "store" else self.crm
        return sum(source.get(name, Counter()).values())


def capture(engine: Engine, box: Sandbox, *, store: bool = True) -> EndState:
    """Read the end state of the sandbox's CRMs and (unless `store` is false) of the store."""
    state = EndState()
    with engine.connect() as connection:
        keys = _NaturalKeys.read(connection)
        task_ids = _sf_task_ids(box)
        for table in SQLModel.metadata.sorted_tables if store else []:
            if table.name in _BOOKKEEPING:
                continue
            rows = connection.execute(sa.select(table)).mappings()
            state.tables[table.name] = _table_rows(table, rows, keys, task_ids)
    state.crm = _crm(box, keys.markers)
    state.problems = task_problems(engine, box)
    return state


def task_problems(engine: Engine, box: Sandbox) -> list[str]:
    """Breaches of "one task per (record, playbook, entry episode)", as sentences."""
    with engine.connect() as connection:
        keys = _NaturalKeys.read(connection)
        ledger = connection.execute(
            sa.text("SELECT target, playbook_key, marker, state FROM task_ledger")
        ).all()
    made = crm_task_keys(box)
    problems: list[str] = []
    wanted: dict[str, set[str]] = {"salesforce": set(), "hubspot": set()}
    for target, playbook, marker, state in ledger:
        episode = keys.markers.get(marker)
        where = f"{target} task of playbook {playbook} for {episode}"
        if state in ("created", "closed"):
            wanted[target].add(marker)
            if made[target][marker] != 1:
                problems.append(f"{where}: {made[target][marker]} tasks in the CRM, expected 1")
        elif state != "suppressed":
            problems.append(f"{where}: left in ledger state {state!r}")
    for target, counts in made.items():
        for marker, n in counts.items():
            if marker not in wanted[target]:
                problems.append(f"{target}: {n} task(s) with key {marker} that no ledger row made")
    return problems


# -- the store ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _NaturalKeys:
    """Surrogate ids -> what they stand for, read from the store itself."""

    account: dict[int, str]
    contact: dict[int, str]
    membership: dict[int, Episode]
    markers: dict[str, Episode | str]  # task marker -> episode (with target and playbook)

    @classmethod
    def read(cls, connection: Connection) -> _NaturalKeys:
        account = dict(connection.execute(sa.text("SELECT id, external_key FROM account")).all())
        contact = dict(connection.execute(sa.text("SELECT id, external_key FROM contact")).all())
        membership: dict[int, Episode] = {}
        m = table_of(Membership)  # typed, so entered_at is a datetime on both databases
        for mid, segment, kind, entity, entered in connection.execute(
            sa.select(m.c.id, m.c.segment_key, m.c.entity_type, m.c.entity_id, m.c.entered_at)
        ):
            name = (account if kind == "account" else contact).get(entity, f"{kind}#{entity}")
            membership[mid] = Episode(segment, name, _value(_aware(entered)))
        markers: dict[str, Episode | str] = {}
        for marker, target, playbook, mid in connection.execute(
            sa.text("SELECT marker, target, playbook_key, membership_id FROM task_ledger")
        ):
            episode = membership.get(mid)
            markers[marker] = f"{target}/{playbook}/{episode}" if episode else f"orphan {marker}"
        return cls(account, contact, membership, markers)


def _table_rows(
    table: sa.Table, rows: Iterable[Mapping[str, Any]], keys: _NaturalKeys, task_ids: dict[str, str]
) -> Counter[Row]:
    """The rows of `table`, each as sorted (column, comparable value) pairs."""
    skipped = _RUN_COLUMNS | _SKIPPED.get(table.name, set())
    plan: list[tuple[str, Callable[[Mapping[str, Any]], Any]]] = []
    for column in sorted(table.columns, key=lambda c: c.name):
        name = column.name
        if name in skipped or (column.primary_key and name == "id"):
            continue  # a surrogate key: rows are matched by what they hold instead
        targets = {fk.column.table.name for fk in column.foreign_keys}
        lookup: Mapping[Any, Any] | None = None
        if targets & {"account", "contact", "membership"}:
            lookup = getattr(keys, targets.pop())
        elif name == "marker":
            lookup = keys.markers
        elif table.name == "activity" and name == "source_id":
            # A Salesforce task smartseg created, pulled back: its id depends on creation order.
            lookup = {i: f"task {keys.markers.get(m, m)}" for i, m in task_ids.items()}
        plan.append((name, _mapper(name, lookup, keys)))
    return Counter(tuple((name, get(row)) for name, get in plan) for row in rows)


def _mapper(
    name: str, lookup: Mapping[Any, Any] | None, keys: _NaturalKeys
) -> Callable[[Mapping[str, Any]], Any]:
    if name == "entity_id":

        def entity(row: Mapping[str, Any]) -> Any:
            kind, value = row["entity_type"], row[name]
            found = (keys.account if kind == "account" else keys.contact).get(value)
            return found or f"{kind}#{value}"

        return entity
    if lookup is None:
        return lambda row: _value(row[name])
    return lambda row: _value(lookup.get(row[name], row[name]))


_PLAIN = (str, int, bool)


def _aware(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _value(value: Any) -> Any:
    """One value in a form equal across SQLite and PostgreSQL and hashable."""
    if value is None or type(value) in _PLAIN:
        return value  # most values: the fast way out (a capture reads tens of thousands of rows)
    value = _aware(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value else "NaN"
    if isinstance(value, float):
        return repr(round(value, 9))
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, Episode):
        return str(value)
    return value


# -- the CRMs ----------------------------------------------------------------------------------


def _sf_task_ids(box: Sandbox) -> dict[str, str]:
    """Salesforce Task id -> smartseg key, for the tasks smartseg created."""
    assert box.salesforce is not None
    key_field = "Smartseg_Key__c"
    with box.salesforce.store.lock:
        tasks = box.salesforce.store.tables.get("Task", {})
        return {str(i): str(r[key_field]) for i, r in tasks.items() if r.get(key_field)}


def crm_task_keys(box: Sandbox) -> dict[str, Counter[str]]:
    """smartseg key -> how many live tasks carry it, per CRM."""
    assert box.salesforce is not None and box.hubspot is not None
    with box.salesforce.store.lock:
        sf = Counter(
            str(r["Smartseg_Key__c"])
            for r in box.salesforce.store.tables.get("Task", {}).values()
            if r.get("Smartseg_Key__c") and not r.get("IsDeleted")
        )
    with box.hubspot.state.lock:
        table = box.hubspot.state.tables["tasks"]
        hs = Counter(
            str(r.props["smartseg_key"])
            for r in table.records.values()
            if r.archived_at is None and r.props.get("smartseg_key")
        )
    return {"salesforce": sf, "hubspot": hs}


def _crm(box: Sandbox, markers: Mapping[str, Episode | str]) -> dict[str, Counter[Row]]:
    """Every record smartseg may write, whole (so a field it must not touch is compared too)."""
    assert box.salesforce is not None and box.hubspot is not None
    out: dict[str, Counter[Row]] = {}
    sf = box.salesforce
    with sf.store.lock:
        for sobject in ("Account", "Contact", "Task"):
            out[f"salesforce {sobject}"] = Counter(
                _crm_row(record, _SF_SYSTEM, markers, record_id=str(record["Id"]))
                for record in sf.store.tables.get(sobject, {}).values()
            )
        out["salesforce picklists"] = Counter(_sf_picklists(box))
    hs = box.hubspot.state
    with hs.lock:
        for object_type in ("companies", "contacts", "tasks"):
            records = hs.tables[object_type].records
            rows = []
            for record_id, record in records.items():
                archived = record.archived_at is not None
                row = dict(record.props, archived=str(archived))
                if object_type == "tasks":
                    row["associations"] = _task_links(box, record_id)
                rows.append(_crm_row(row, _HS_SYSTEM, markers, record_id=str(record_id)))
            out[f"hubspot {object_type}"] = Counter(rows)
        out["hubspot options"] = Counter(
            (("object", obj), ("property", name), ("options", tuple(o.value for o in d.options)))
            for obj, props in hs.schema.items()
            for name, d in props.items()
            if name.startswith("smartseg")
        )
    return out


def _crm_row(
    record: Mapping[str, Any],
    system: Iterable[str],
    markers: Mapping[str, Episode | str],
    *,
    record_id: str,
) -> Row:
    key = record.get("Smartseg_Key__c") or record.get("smartseg_key")
    out: dict[str, Any] = {}
    for name, value in record.items():
        if name in system and key:
            continue  # a record smartseg created: the CRM's id and stamps, see the docstring
        if name in ("LastModifiedDate", "SystemModstamp", "hs_lastmodifieddate",
                    "lastmodifieddate"):  # fmt: skip
            continue  # the CRM's clock at smartseg's write
        if key and isinstance(value, str) and key in value:
            # The marker (in the key field and the task's notes) stands for its episode.
            out[name] = value.replace(key, f"<key of {markers.get(key, key)}>")
        else:
            out[name] = _value(value)
    if not key:
        out["Id"] = record_id  # loaded records keep the ids the world gave them
    return tuple(sorted(out.items()))


def _sf_picklists(box: Sandbox) -> list[Row]:
    assert box.salesforce is not None
    rows: list[Row] = []
    for sobject in ("Account", "Contact"):
        obj = box.salesforce.schema.get(sobject)
        if obj is None:
            continue
        for name, definition in obj.fields.items():
            if name.lower().startswith("smartseg"):
                values = tuple(p.value for p in definition.picklist)
                rows.append((("object", sobject), ("field", definition.name), ("values", values)))
    return rows


def _task_links(box: Sandbox, task_id: int) -> str:
    assert box.hubspot is not None
    links = []
    for target in ("companies", "contacts"):
        for other, types in sorted(box.hubspot.state.assocs.of("tasks", task_id, target).items()):
            links.append(f"{target}:{other}:{sorted(types)}")
    return ",".join(links)
