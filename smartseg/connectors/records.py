"""How each Salesforce object becomes store rows.

A spec names the fields to select and maps one record to one row of one table. Standard fields
need no configuration; `field_map` adds the org's custom fields under smartseg's names (a name that
is a column of the table fills it, any other name goes to the `custom` JSON column), and
`custom_fields` keeps extra fields in `custom` under their API names. `updated_at` is the
source's own SystemModstamp, never the clock, so re-reading an unchanged record writes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from smartseg.config import SalesforceSource
from smartseg.connectors.mapping import Coercer, normalize_domain, parse_datetime
from smartseg.connectors.stream import RecordIssue, WriteResult
from smartseg.store import upsert
from smartseg.store.models import (
    Account,
    Activity,
    Contact,
    CrmUser,
    Opportunity,
    Ticket,
    table_of,
)

__all__ = ["SALESFORCE_ORDER", "ObjectSpec", "parse_datetime", "salesforce_spec"]

SALESFORCE_ORDER = ("User", "Account", "Contact", "Opportunity", "Case", "Task", "Event")

Row = dict[str, Any]
Record = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ObjectSpec:
    """What to select from one sObject and how a record becomes a row of `table`."""

    sobject: str
    table: sa.Table
    key: tuple[str, ...]
    standard: tuple[str, ...]
    build: Callable[[Record], Row]
    field_map: Mapping[str, str] = field(default_factory=dict)
    custom_fields: tuple[str, ...] = ()
    delete_by: str = "source_id"  # the column holding the Salesforce Id
    lowercase: tuple[str, ...] = ("status",)  # picklist values stored as smartseg's vocabulary

    @property
    def fields(self) -> tuple[str, ...]:
        extra = [
            f for f in (*self.field_map.values(), *self.custom_fields) if f not in self.standard
        ]
        return tuple(dict.fromkeys((*self.standard, *extra)))

    def write(
        self,
        connection: Connection,
        records: Sequence[Record],
        deleted: Sequence[str],
        now: dt.datetime,
    ) -> WriteResult:
        result = WriteResult()
        coercer = Coercer(self.table)
        columns = coercer.columns()
        rows: list[Row] = []
        for record in records:
            if not record.get("Id"):
                result.issues.append(
                    RecordIssue("?", f"{self.sobject} record without an Id was skipped")
                )
                continue
            raw = self.build(record)
            custom = dict(raw.pop("custom", {}) or {})
            for name, api_name in self.field_map.items():
                target = raw if name in columns and name != "custom" else custom
                target[name] = record.get(api_name)
            for api_name in self.custom_fields:
                custom[api_name] = record.get(api_name)
            for name in self.lowercase:
                if isinstance(raw.get(name), str):
                    raw[name] = raw[name].strip().lower()
            row, problems = coercer.coerce(raw)
            if problems:
                custom["_invalid"] = {c: str(raw.get(c))[:200] for c in problems}
                result.issues.append(RecordIssue(str(record["Id"]), "; ".join(problems.values())))
            if "custom" in columns:
                row["custom"] = _jsonable(custom)
            rows.append(row)
        result.upserted = upsert(connection, self.table, rows, key=list(self.key))
        if deleted and "deleted_at" in columns:
            column = self.table.c[self.delete_by]
            keys = [_delete_key(self, d) for d in deleted]
            result.deleted = connection.execute(
                sa.update(self.table)
                .where(column.in_(keys), self.table.c.deleted_at.is_(None))
                .values(deleted_at=now)
            ).rowcount
        return result


def _delete_key(spec: ObjectSpec, source_id: str) -> str:
    return f"salesforce:{source_id}" if spec.delete_by == "external_key" else source_id


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, str | int | float | bool | dict | list) or v is None else str(v)
            for k, v in values.items()}  # fmt: skip


def _ref(prefix: str, value: Any, key_prefix: str | None = None) -> str | None:
    """'salesforce:<id>' for an id of the expected object (by its 3-character key prefix)."""
    if not value or not isinstance(value, str):
        return None
    if key_prefix and not value.startswith(key_prefix):
        return None
    return f"{prefix}:{value}"


def _account(r: Record) -> Row:
    return {
        "external_key": f"salesforce:{r['Id']}",
        "name": r.get("Name") or f"(unnamed account {r['Id']})",
        "domain": normalize_domain(r.get("Website")),
        "industry": r.get("Industry"),
        "employees": r.get("NumberOfEmployees"),
        "country": r.get("BillingCountry"),
        "owner_id": r.get("OwnerId"),
        "created_at": r.get("CreatedDate"),
        "updated_at": r.get("SystemModstamp"),
        "deleted_at": None,
    }


def _contact(r: Record) -> Row:
    email = r.get("Email")
    return {
        "external_key": f"salesforce:{r['Id']}",
        "account_ref": _ref("salesforce", r.get("AccountId")),
        "email": email.strip().lower() if isinstance(email, str) else None,
        "first_name": r.get("FirstName"),
        "last_name": r.get("LastName"),
        "title": r.get("Title"),
        "owner_id": r.get("OwnerId"),
        "email_opt_out": r.get("HasOptedOutOfEmail"),
        "created_at": r.get("CreatedDate"),
        "updated_at": r.get("SystemModstamp"),
        "deleted_at": None,
    }


def _opportunity(r: Record) -> Row:
    return {
        "source": "salesforce",
        "source_id": r["Id"],
        "account_ref": _ref("salesforce", r.get("AccountId")),
        "name": r.get("Name"),
        "type": r.get("Type"),
        "stage": r.get("StageName"),
        "amount": r.get("Amount"),
        "close_date": r.get("CloseDate"),
        "is_closed": r.get("IsClosed"),
        "is_won": r.get("IsWon"),
        "owner_id": r.get("OwnerId"),
        "updated_at": r.get("SystemModstamp"),
        "deleted_at": None,
    }


def _case(r: Record) -> Row:
    return {
        "source": "salesforce",
        "source_id": r["Id"],
        "account_ref": _ref("salesforce", r.get("AccountId")),
        "contact_ref": _ref("salesforce", r.get("ContactId")),
        "type": r.get("Type"),
        "severity": r.get("Priority"),
        "status": r.get("Status"),
        "is_closed": r.get("IsClosed"),
        "subject": r.get("Subject"),
        "opened_at": r.get("CreatedDate"),
        "closed_at": r.get("ClosedDate"),
        "updated_at": r.get("SystemModstamp"),
        "deleted_at": None,
    }


_TASK_KIND = {"Email": "email", "Call": "call"}
_TASK_STATUS = {"Completed": "completed", "Deferred": "cancelled"}


def _task(r: Record) -> Row:
    when = r.get("CompletedDateTime") or r.get("ActivityDate") or r.get("CreatedDate")
    return {
        "source": "salesforce",
        "source_id": r["Id"],
        "account_ref": _ref("salesforce", r.get("AccountId") or r.get("WhatId"), "001"),
        "contact_ref": _ref("salesforce", r.get("WhoId"), "003"),
        "kind": _TASK_KIND.get(str(r.get("TaskSubtype")), "task"),
        "status": _TASK_STATUS.get(str(r.get("Status")), "open"),
        "occurred_at": when,
        "owner_id": r.get("OwnerId"),
        "subject": r.get("Subject"),
        "updated_at": r.get("SystemModstamp"),
        "deleted_at": None,
    }


def _event(r: Record) -> Row:
    kind = {"QBR": "qbr", "Call": "call"}.get(str(r.get("Type")), "meeting")
    return {
        "source": "salesforce",
        "source_id": r["Id"],
        "account_ref": _ref("salesforce", r.get("AccountId") or r.get("WhatId"), "001"),
        "contact_ref": _ref("salesforce", r.get("WhoId"), "003"),
        "kind": kind,
        "status": "completed",
        "occurred_at": r.get("StartDateTime"),
        "duration_minutes": r.get("DurationInMinutes"),
        "owner_id": r.get("OwnerId"),
        "subject": r.get("Subject"),
        "updated_at": r.get("SystemModstamp"),
        "deleted_at": None,
    }


def _user(r: Record) -> Row:
    return {
        "source": "salesforce",
        "source_id": r["Id"],
        "name": r.get("Name"),
        "email": r.get("Email"),
        "title": r.get("Title"),
        "active": r.get("IsActive"),
        "updated_at": r.get("SystemModstamp"),
    }


_COMMON = ("Id", "SystemModstamp", "IsDeleted")
_Spec = tuple[str, Any, tuple[str, ...], Callable[[Record], Row], tuple[str, ...], str]
_SPECS: dict[str, _Spec] = {
    # sobject: (field_map key, model, upsert key, build, standard fields, delete column)
    "Account": ("account", Account, ("external_key",), _account,
                ("Name", "Website", "Industry", "NumberOfEmployees", "BillingCountry", "OwnerId",
                 "CreatedDate"), "external_key"),
    "Contact": ("contact", Contact, ("external_key",), _contact,
                ("AccountId", "Email", "FirstName", "LastName", "Title", "OwnerId",
                 "HasOptedOutOfEmail", "CreatedDate"), "external_key"),
    "Opportunity": ("opportunity", Opportunity, ("source", "source_id"), _opportunity,
                    ("AccountId", "Name", "Type", "StageName", "Amount", "CloseDate", "IsClosed",
                     "IsWon", "OwnerId"), "source_id"),
    "Case": ("ticket", Ticket, ("source", "source_id"), _case,
             ("AccountId", "ContactId", "Type", "Priority", "Status", "IsClosed", "Subject",
              "CreatedDate", "ClosedDate"), "source_id"),
    "Task": ("task", Activity, ("source", "source_id"), _task,
             ("WhatId", "WhoId", "AccountId", "OwnerId", "Subject", "Status", "TaskSubtype",
              "ActivityDate", "CompletedDateTime", "CreatedDate"), "source_id"),
    "Event": ("event", Activity, ("source", "source_id"), _event,
              ("WhatId", "WhoId", "AccountId", "OwnerId", "Subject", "Type", "StartDateTime",
               "DurationInMinutes"), "source_id"),
    "User": ("user", CrmUser, ("source", "source_id"), _user,
             ("Name", "Email", "Title", "IsActive"), "source_id"),
}  # fmt: skip


def salesforce_spec(sobject: str, config: SalesforceSource) -> ObjectSpec:
    """The spec of `sobject` with the org's field map and custom fields applied."""
    map_key, model, key, build, standard, delete_by = _SPECS[sobject]
    return ObjectSpec(
        sobject=sobject,
        table=table_of(model),
        key=key,
        standard=(*_COMMON, *standard),
        build=build,
        field_map=dict(config.field_map.get(map_key, {})),
        custom_fields=tuple(config.custom_fields.get(map_key, ())),
        delete_by=delete_by,
    )
