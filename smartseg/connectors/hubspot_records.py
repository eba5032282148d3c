"""How each HubSpot object becomes store rows.

Owners become `crm_user` rows; deals, tickets and engagements become fact rows naming their
company and contact as 'hubspot:<id>'. Companies and contacts become `source_link` rows whose
hints let the link step find the Salesforce account or contact they stand for; when HubSpot is
the only CRM they are also the `account` and `contact` rows themselves. Values are mapped to the
vocabulary the Salesforce connector stores (ticket type 'Bug', severity 'High', activity status
'completed'), so rules read the same words whatever the source. `updated_at` is HubSpot's own
last-modified time, so re-reading an unchanged record writes nothing. Archived records come in
as records with `archived_at` set and mark their rows deleted at that moment.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from smartseg.config import HubSpotSource
from smartseg.connectors.mapping import Coercer, email_domain, normalize_domain, parse_datetime
from smartseg.connectors.stream import RecordIssue, WriteResult
from smartseg.store import upsert
from smartseg.store.models import (
    Account,
    Activity,
    Contact,
    CrmUser,
    Opportunity,
    SourceLink,
    Ticket,
    table_of,
)

__all__ = ["HUBSPOT_ORDER", "PRIMARY_V3_TYPES", "SOURCE", "HubSpotSpec", "hubspot_spec"]

SOURCE = "hubspot"
HUBSPOT_ORDER = ("owners", "companies", "contacts", "deals", "tickets", "calls", "meetings",
                 "emails")  # fmt: skip
# v3 list reads name a primary association by the bare type; the unlabeled one ends "_unlabeled".
PRIMARY_V3_TYPES = frozenset(("contact_to_company", "deal_to_company", "ticket_to_company"))
SALESFORCE_CONTACT_PROPERTY = "salesforce_contact_id"

Record = Mapping[str, Any]
Row = dict[str, Any]
Writer = Callable[[Connection, Sequence[Record], dt.datetime], WriteResult]

_LINK = table_of(SourceLink)
_CLOSED_DEALSTAGES = {"closedwon": True, "closedlost": False}
_TICKET_TYPE = {"PRODUCT_ISSUE": "Bug", "GENERAL_INQUIRY": "Question",
                "FEATURE_REQUEST": "Feature Request", "BILLING_ISSUE": "Billing"}  # fmt: skip
_TICKET_SEVERITY = {"URGENT": "Critical", "HIGH": "High", "MEDIUM": "Medium", "LOW": "Low"}
# The default support pipeline ("0"); other pipelines' stages are portal-specific ids.
_TICKET_STATUS = {"1": "new", "2": "waiting on contact", "3": "working", "4": "closed"}
_STATUS = {"COMPLETED": "completed", "SENT": "completed", "CANCELED": "cancelled",
           "FAILED": "cancelled", "BOUNCED": "cancelled", "SCHEDULED": "scheduled",
           "RESCHEDULED": "scheduled", "QUEUED": "scheduled", "SENDING": "scheduled"}  # fmt: skip
_QBR = re.compile(r"\bqbr\b|quarterly business review", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class HubSpotSpec:
    """What to read for one object type and how a page of its records is written."""

    object_type: str
    properties: tuple[str, ...]
    associations: tuple[str, ...]
    modified_property: str | None  # None: no search (owners are always listed)
    write: Writer


@dataclass(frozen=True, slots=True)
class _Mapper:
    """Records of one object type to rows of one table, with the portal's field map applied."""

    table: sa.Table
    build: Callable[[Record], Row]
    field_map: Mapping[str, str] = field(default_factory=dict)
    custom_fields: tuple[str, ...] = ()

    def rows(self, records: Sequence[Record], result: WriteResult) -> list[Row]:
        coercer = Coercer(self.table)
        columns = coercer.columns()
        rows = []
        for record in records:
            raw = self.build(record)
            props = record["properties"]
            custom: dict[str, Any] = {}
            for name, prop in self.field_map.items():
                (raw if name in columns and name != "custom" else custom)[name] = props.get(prop)
            for prop in self.custom_fields:
                custom[prop] = props.get(prop)
            row, problems = coercer.coerce(raw)
            if problems:
                custom["_invalid"] = {c: str(raw.get(c))[:200] for c in problems}
                result.issues.append(RecordIssue(str(record["id"]), "; ".join(problems.values())))
            if "custom" in columns:
                row["custom"] = custom
            rows.append(row)
        return rows


def _pick(record: Record, target: str) -> str | None:
    """The associated `target` id: the primary one, else the lowest id (stable across reads)."""
    found = record["associations"].get(target) or []
    if not found:
        return None
    primary = [i for i, is_primary in found if is_primary]
    return primary[0] if primary else min((i for i, _ in found), key=int)


def _ref(value: Any) -> str | None:
    return f"{SOURCE}:{value}" if value else None


def _archived(records: Sequence[Record]) -> tuple[list[Record], list[Record]]:
    live = [r for r in records if r.get("archived_at") is None]
    gone = [r for r in records if r.get("archived_at") is not None]
    return live, gone


def _mark_deleted(
    connection: Connection, table: sa.Table, where: Callable[[Record], Any], gone: Sequence[Record]
) -> int:
    deleted = 0
    for record in gone:
        deleted += connection.execute(
            sa.update(table)
            .where(where(record), table.c.deleted_at.is_(None))
            .values(deleted_at=record["archived_at"])
        ).rowcount
    return deleted


def _fact_writer(mapper: _Mapper) -> Writer:
    table = mapper.table

    def write(connection: Connection, records: Sequence[Record], now: dt.datetime) -> WriteResult:
        result = WriteResult()
        live, gone = _archived(records)
        rows = mapper.rows(live, result)
        result.upserted = upsert(connection, table, rows, key=["source", "source_id"])
        result.deleted = _mark_deleted(
            connection,
            table,
            lambda r: sa.and_(table.c.source == SOURCE, table.c.source_id == r["id"]),
            gone,
        )
        return result

    return write


def _owner_writer(
    connection: Connection, records: Sequence[Record], now: dt.datetime
) -> WriteResult:
    # Archived owners are former users who may still own records: kept, marked inactive.
    result = WriteResult()
    rows = [
        {
            "source": SOURCE,
            "source_id": r["id"],
            "name": " ".join(
                p for p in (r["properties"].get("firstname"), r["properties"].get("lastname")) if p
            )
            or None,
            "email": r["properties"].get("email"),
            "active": not r.get("archived"),
            "updated_at": r["updated_at"],
        }
        for r in records
    ]
    result.upserted = upsert(connection, table_of(CrmUser), rows, key=["source", "source_id"])
    return result


def _link_writer(
    object_name: str, hint: Callable[[Record], dict[str, Any]], entity: _Mapper | None
) -> Writer:
    """source_link rows for companies or contacts, plus account/contact rows when primary."""

    def write(connection: Connection, records: Sequence[Record], now: dt.datetime) -> WriteResult:
        result = WriteResult()
        live, gone = _archived(records)
        links = [
            {"source": SOURCE, "object": object_name, "source_id": r["id"],
             "hint": {k: v for k, v in hint(r).items() if v}, "updated_at": r["updated_at"]}
            for r in live
        ]  # fmt: skip
        result.upserted = upsert(
            connection, _LINK, links, key=["source", "object", "source_id"],
            update=["hint", "updated_at"],
        )  # fmt: skip
        if entity is not None:
            rows = entity.rows(live, result)
            result.upserted = result.upserted + upsert(
                connection, entity.table, rows, key=["external_key"]
            )
            column = entity.table.c.external_key
            result.deleted = _mark_deleted(
                connection, entity.table, lambda r: column == _ref(r["id"]), gone
            )
        else:
            result.deleted = _archive_links(connection, object_name, gone)
        return result

    return write


def _archive_links(connection: Connection, object_name: str, gone: Sequence[Record]) -> int:
    # A link is kept (old tickets of an archived company still belong to its account); the hint
    # says since when the record is archived, and a restore rewrites the hint without it.
    marked = 0
    for record in gone:
        row = connection.execute(
            sa.select(_LINK.c.id, _LINK.c.hint).where(
                _LINK.c.source == SOURCE,
                _LINK.c.object == object_name,
                _LINK.c.source_id == record["id"],
            )
        ).first()
        if row is None or (row.hint or {}).get("archived_at"):
            continue
        hint = {**(row.hint or {}), "archived_at": record["archived_at"].isoformat()}
        connection.execute(sa.update(_LINK).where(_LINK.c.id == row.id).values(hint=hint))
        marked += 1
    return marked


# Companies and contacts ----------------------------------------------------------------------


def _company_row(r: Record) -> Row:
    p = r["properties"]
    return {
        "external_key": _ref(r["id"]),
        "name": p.get("name") or f"(unnamed company {r['id']})",
        "domain": normalize_domain(p.get("domain") or p.get("website")),
        "industry": p.get("industry"),
        "employees": p.get("numberofemployees"),
        "country": p.get("country"),
        "owner_id": p.get("hubspot_owner_id"),
        "lifecycle_stage": p.get("lifecyclestage"),
        "created_at": p.get("createdate"),
        "updated_at": r["updated_at"],
        "deleted_at": None,
    }


def _contact_row(r: Record) -> Row:
    p = r["properties"]
    email = p.get("email")
    return {
        "external_key": _ref(r["id"]),
        "account_ref": _ref(_pick(r, "companies") or p.get("associatedcompanyid")),
        "email": email.strip().lower() if isinstance(email, str) else None,
        "first_name": p.get("firstname"),
        "last_name": p.get("lastname"),
        "title": p.get("jobtitle"),
        "lifecycle_stage": p.get("lifecyclestage"),
        "email_opt_out": p.get("hs_email_optout"),
        "owner_id": p.get("hubspot_owner_id"),
        "created_at": p.get("createdate"),
        "updated_at": r["updated_at"],
        "deleted_at": None,
    }


def _company_hint(config: HubSpotSource, primary: bool) -> Callable[[Record], dict[str, Any]]:
    workspace = config.field_map.get("company", {}).get("workspace_id")

    def hint(r: Record) -> dict[str, Any]:
        p = r["properties"]
        salesforce = p.get(config.link_property)
        return {
            "account_ref": _ref(r["id"]) if primary else (
                f"salesforce:{salesforce}" if salesforce else None),
            "workspace_id": p.get(workspace) if workspace else None,
            "domain": normalize_domain(p.get("domain") or p.get("website")),
            "name": p.get("name"),
        }  # fmt: skip

    return hint


def _contact_hint(primary: bool) -> Callable[[Record], dict[str, Any]]:
    def hint(r: Record) -> dict[str, Any]:
        p = r["properties"]
        email = p.get("email").strip().lower() if isinstance(p.get("email"), str) else None
        salesforce = p.get(SALESFORCE_CONTACT_PROPERTY)
        return {
            "contact_ref": _ref(r["id"]) if primary else (
                f"salesforce:{salesforce}" if salesforce else None),
            "email": email,
            "email_domain": email_domain(email),
            "account_ref": _ref(_pick(r, "companies") or p.get("associatedcompanyid")),
            "name": " ".join(x for x in (p.get("firstname"), p.get("lastname")) if x) or None,
        }  # fmt: skip

    return hint


# Deals, tickets and engagements ----------------------------------------------------------------


def _deal(r: Record) -> Row:
    p = r["properties"]
    stage = p.get("dealstage")
    return {
        "source": SOURCE, "source_id": r["id"], "account_ref": _ref(_pick(r, "companies")),
        "name": p.get("dealname"), "type": p.get("dealtype"), "stage": stage,
        "amount": p.get("amount"), "close_date": p.get("closedate"),
        "is_closed": stage in _CLOSED_DEALSTAGES, "is_won": _CLOSED_DEALSTAGES.get(stage, False),
        "owner_id": p.get("hubspot_owner_id"), "updated_at": r["updated_at"], "deleted_at": None,
    }  # fmt: skip


def _ticket(r: Record) -> Row:
    p = r["properties"]
    category = (p.get("hs_ticket_category") or "").split(";")[0] or None
    stage = p.get("hs_pipeline_stage")
    default_pipeline = p.get("hs_pipeline") in (None, "0")
    closed = stage == "4" if default_pipeline else bool(p.get("closed_date"))
    return {
        "source": SOURCE, "source_id": r["id"], "account_ref": _ref(_pick(r, "companies")),
        "contact_ref": _ref(_pick(r, "contacts")),
        "type": _TICKET_TYPE.get(category or "", category),
        "severity": _TICKET_SEVERITY.get(p.get("hs_ticket_priority") or "",
                                         p.get("hs_ticket_priority")),
        "status": _TICKET_STATUS.get(stage or "", stage) if default_pipeline else stage,
        "is_closed": closed, "subject": p.get("subject"), "opened_at": p.get("createdate"),
        "closed_at": p.get("closed_date"), "updated_at": r["updated_at"], "deleted_at": None,
    }  # fmt: skip


def _status(value: Any) -> str | None:
    if not value:
        return None
    return _STATUS.get(str(value).upper(), str(value).lower())


def _minutes_between(start: Any, end: Any) -> float | None:
    try:
        return (parse_datetime(end) - parse_datetime(start)).total_seconds() / 60
    except (TypeError, ValueError):
        return None


def _engagement(kind: str) -> Callable[[Record], Row]:
    def build(r: Record) -> Row:
        p = r["properties"]
        row: Row = {
            "source": SOURCE, "source_id": r["id"], "account_ref": _ref(_pick(r, "companies")),
            "contact_ref": _ref(_pick(r, "contacts")), "kind": kind,
            "occurred_at": p.get("hs_timestamp"), "owner_id": p.get("hubspot_owner_id"),
            "updated_at": r["updated_at"], "deleted_at": None,
        }  # fmt: skip
        if kind == "call":
            duration = p.get("hs_call_duration")
            row.update(subject=p.get("hs_call_title"), status=_status(p.get("hs_call_status")),
                       duration_minutes=float(duration) / 60_000 if duration else None)  # fmt: skip
        elif kind == "meeting":
            title = p.get("hs_meeting_title") or ""
            qbr = p.get("hs_activity_type") == "QBR" or bool(_QBR.search(title))
            row.update(kind="qbr" if qbr else "meeting", subject=p.get("hs_meeting_title"),
                       status=_status(p.get("hs_meeting_outcome")),
                       duration_minutes=_minutes_between(p.get("hs_meeting_start_time"),
                                                         p.get("hs_meeting_end_time")))  # fmt: skip
        else:
            row.update(subject=p.get("hs_email_subject"), status=_status(p.get("hs_email_status")))
        return row

    return build


# Specs -----------------------------------------------------------------------------------------

_OWNER_FIELDS = ("hubspot_owner_id",)
# object type: (field_map key, properties, associations, modified property)
_READS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], str | None]] = {
    "owners": ("owner", (), (), None),
    "companies": ("company", ("name", "domain", "website", "industry", "numberofemployees",
                              "country", "lifecyclestage", "createdate", *_OWNER_FIELDS),
                  (), "hs_lastmodifieddate"),
    "contacts": ("contact", ("email", "firstname", "lastname", "jobtitle", "lifecyclestage",
                             "hs_email_optout", "associatedcompanyid", "createdate",
                             SALESFORCE_CONTACT_PROPERTY, *_OWNER_FIELDS),
                 ("companies",), "lastmodifieddate"),
    "deals": ("deal", ("dealname", "dealtype", "dealstage", "amount", "closedate", "pipeline",
                       *_OWNER_FIELDS), ("companies",), "hs_lastmodifieddate"),
    "tickets": ("ticket", ("subject", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority",
                           "hs_ticket_category", "createdate", "closed_date"),
                ("companies", "contacts"), "hs_lastmodifieddate"),
    "calls": ("call", ("hs_timestamp", "hs_call_title", "hs_call_status", "hs_call_duration",
                       *_OWNER_FIELDS), ("companies", "contacts"), "hs_lastmodifieddate"),
    "meetings": ("meeting", ("hs_timestamp", "hs_meeting_title", "hs_meeting_outcome",
                             "hs_meeting_start_time", "hs_meeting_end_time", "hs_activity_type",
                             *_OWNER_FIELDS), ("companies", "contacts"), "hs_lastmodifieddate"),
    "emails": ("email", ("hs_timestamp", "hs_email_subject", "hs_email_status", *_OWNER_FIELDS),
               ("companies", "contacts"), "hs_lastmodifieddate"),
}  # fmt: skip


def hubspot_spec(object_type: str, config: HubSpotSource, *, primary: bool) -> HubSpotSpec:
    """The spec of `object_type`; `primary` when HubSpot is the CRM of record (no Salesforce)."""
    map_key, standard, associations, modified = _READS[object_type]
    field_map = dict(config.field_map.get(map_key, {}))
    custom = tuple(config.custom_fields.get(map_key, ()))
    extra = (config.link_property,) if object_type == "companies" else ()
    properties = tuple(dict.fromkeys((*standard, *extra, *field_map.values(), *custom)))

    def mapper(model: Any, build: Callable[[Record], Row]) -> _Mapper:
        return _Mapper(table_of(model), build, field_map, custom)

    writer: Writer
    if object_type == "owners":
        writer = _owner_writer
    elif object_type == "companies":
        entity = mapper(Account, _company_row) if primary else None
        writer = _link_writer("company", _company_hint(config, primary), entity)
    elif object_type == "contacts":
        entity = mapper(Contact, _contact_row) if primary else None
        writer = _link_writer("contact", _contact_hint(primary), entity)
    elif object_type == "deals":
        writer = _fact_writer(mapper(Opportunity, _deal))
    elif object_type == "tickets":
        writer = _fact_writer(mapper(Ticket, _ticket))
    else:
        writer = _fact_writer(mapper(Activity, _engagement(map_key)))
    return HubSpotSpec(object_type, properties, associations, modified, writer)
