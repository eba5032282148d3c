"""Record writes with Salesforce's validation: field names, field-level security, types,
read-only and required fields, restricted picklists, references, unique values, the rules of
the permission setup objects, and the fields Salesforce derives (Name, IsClosed, AccountId on
activities, SystemModstamp...)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from smartseg.sandbox.salesforce.errors import SfError
from smartseg.sandbox.salesforce.ids import is_valid_id, to_18
from smartseg.sandbox.salesforce.permissions import check_record
from smartseg.sandbox.salesforce.schema import FieldDef, ObjectDef
from smartseg.sandbox.salesforce.store import Record, Store
from smartseg.sandbox.salesforce.values import coerce_input

__all__ = ["create", "delete", "update", "upsert"]

_STAGE_PROBABILITY = {
    "Prospecting": 10.0,
    "Qualification": 20.0,
    "Negotiation": 90.0,
    "Closed Won": 100.0,
    "Closed Lost": 0.0,
}


def _readonly_error(names: list[str]) -> SfError:
    return SfError(
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        f"Unable to create/update fields: {', '.join(names)}. Please check the "
        "security settings of this field and verify that it is read/write for your "
        "profile or permission set.",
        names,
    )


def _reference(store: Store, definition: FieldDef, value: str) -> str:
    if not is_valid_id(value):
        raise SfError(
            "MALFORMED_ID",
            f"{definition.label}: id value of incorrect type: {value}",
            [definition.name],
        )
    target = store.object_of(value)
    if target is None or target.name not in definition.reference_to:
        raise SfError(
            "FIELD_INTEGRITY_EXCEPTION",
            f"{definition.label}: id value of incorrect type: {value}",
            [definition.name],
        )
    record = store.get(target, value)
    if record is None:
        raise SfError(
            "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [definition.name]
        )
    if record["IsDeleted"]:
        raise SfError("ENTITY_IS_DELETED", "entity is deleted", [definition.name])
    return str(record["Id"])


def _validate(store: Store, obj: ObjectDef, data: dict[str, Any], creating: bool) -> Record:
    """Check and convert a write's fields; returns {canonical name: stored value}."""
    changes: Record = {}
    readonly: list[str] = []
    for key, raw in data.items():
        if key == "attributes":
            continue
        definition = obj.get(key)
        access = "none" if definition is None else store.schema.access(obj, definition)
        if definition is None or access == "none":
            # A field the user has no field-level security on does not exist for it.
            raise SfError(
                "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}", [key]
            )
        if access == "read" or not (definition.createable if creating else definition.updateable):
            readonly.append(definition.name)
            continue
        value = coerce_input(definition.type, definition.name, raw, definition.length)
        if (
            value is not None
            and definition.type in ("picklist", "multipicklist")
            and definition.restricted
        ):
            allowed = definition.picklist_values()
            for part in value.split(";") if definition.type == "multipicklist" else [value]:
                if part not in allowed:
                    raise SfError(
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        f"{definition.label}: bad value for restricted picklist field: {part}",
                        [definition.name],
                    )
        if value is not None and definition.type == "reference":
            value = _reference(store, definition, value)
        if value is None and not definition.nillable and not creating:
            raise SfError(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{definition.name}]",
                [definition.name],
            )
        changes[definition.name] = value
    if readonly:
        raise _readonly_error(readonly)
    return changes


def _check_unique(store: Store, obj: ObjectDef, record: Record) -> None:
    for definition in obj.fields.values():
        value = record.get(definition.name)
        if not definition.unique or value is None:
            continue
        others = [i for i in store.find(obj, definition, str(value)) if i != record["Id"]]
        if others:
            raise SfError(
                "DUPLICATE_VALUE",
                f"duplicate value found: {definition.name} "
                f"duplicates value on record with id: {others[0]}",
                [definition.name],
            )


def _account_of(store: Store, reference: str | None) -> str | None:
    if reference is None:
        return None
    target = store.object_of(reference)
    if target is None:
        return None
    if target.name == "Account":
        return reference
    record = store.get(target, reference)
    return None if record is None else record.get("AccountId")


def _derive(
    store: Store, obj: ObjectDef, record: Record, before: Record | None, stamp: dt.datetime
) -> None:
    """The fields Salesforce computes itself after every write."""
    name = obj.name
    if name in ("Contact", "User"):
        record["Name"] = " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p)
    elif name == "Opportunity":
        stage = record.get("StageName") or ""
        record["IsClosed"] = stage.startswith("Closed")
        record["IsWon"] = stage == "Closed Won"
        if record.get("Probability") is None:
            record["Probability"] = _STAGE_PROBABILITY.get(stage)
    elif name == "Case":
        record["IsClosed"] = record.get("Status") == "Closed"
        was_closed = before is not None and before.get("IsClosed")
        if record["IsClosed"] and not was_closed:
            record["ClosedDate"] = stamp
        elif not record["IsClosed"]:
            record["ClosedDate"] = None
    elif name in ("Task", "Event"):
        record["AccountId"] = _account_of(store, record.get("WhatId")) or _account_of(
            store, record.get("WhoId")
        )
    if name == "Task":
        record["IsClosed"] = record.get("Status") == "Completed"
        if not record["IsClosed"]:
            record["CompletedDateTime"] = None
        elif before is None or not before.get("IsClosed"):
            record["CompletedDateTime"] = stamp
    if name == "Event":
        _derive_event(record)


def _derive_event(record: Record) -> None:
    start, end, minutes = (
        record.get("StartDateTime"),
        record.get("EndDateTime"),
        record.get("DurationInMinutes"),
    )
    if start is None:
        return
    if end is None and minutes is None:
        raise SfError(
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [DurationInMinutes]",
            ["DurationInMinutes"],
        )
    if end is None or (minutes is not None and end != start + dt.timedelta(minutes=minutes)):
        record["EndDateTime"] = start + dt.timedelta(minutes=minutes or 0)
    if end is not None and minutes is None:
        record["DurationInMinutes"] = int((end - start).total_seconds() // 60)
    if record["EndDateTime"] < start:
        raise SfError(
            "FIELD_INTEGRITY_EXCEPTION",
            "End Date Time: End time can't be before start time",
            ["EndDateTime"],
        )


def _defaults(store: Store, obj: ObjectDef, record: Record) -> None:
    for definition in obj.fields.values():
        if record.get(definition.name) is not None:
            continue
        if definition.type == "boolean":
            record[definition.name] = False
        elif definition.picklist and any(p.default for p in definition.picklist):
            record[definition.name] = next(p.value for p in definition.picklist if p.default)
        elif definition.name == "OwnerId":
            users = store.tables.get("User", {})
            record["OwnerId"] = next(iter(users), None)


def create(store: Store, obj: ObjectDef, data: dict[str, Any]) -> str:
    """Insert one record; returns its id. Raises SfError with Salesforce's code on bad input."""
    if not obj.writable:
        raise SfError("INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id")
    if any(key.lower() == "id" for key in data):
        raise SfError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
    changes = _validate(store, obj, data, creating=True)
    stamp = store.stamp()
    record: Record = {"Id": store.new_id(obj), "IsDeleted": False, **changes}
    _defaults(store, obj, record)
    missing = [d.name for d in obj.fields.values() if d.required and record.get(d.name) is None]
    if missing:
        raise SfError(
            "REQUIRED_FIELD_MISSING",
            f"Required fields are missing: [{', '.join(missing)}]",
            missing,
        )
    record.update(CreatedDate=stamp, LastModifiedDate=stamp, SystemModstamp=stamp)
    _derive(store, obj, record, None, stamp)
    check_record(store, obj, record)
    _check_unique(store, obj, record)
    store.put(obj, record)
    return str(record["Id"])


def _existing(store: Store, obj: ObjectDef, record_id: str) -> Record:
    if not is_valid_id(record_id) or record_id[:3] != obj.key_prefix:
        raise SfError(
            "MALFORMED_ID", f"{obj.name} ID: id value of incorrect type: {record_id}", ["Id"]
        )
    record = store.get(obj, record_id if len(record_id) == 18 else to_18(record_id))
    if record is None:
        raise SfError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", status=404)
    if record["IsDeleted"]:
        raise SfError("ENTITY_IS_DELETED", "entity is deleted", status=404)
    return record


def update(store: Store, obj: ObjectDef, record_id: str, data: dict[str, Any]) -> str:
    """Update one record's fields (a PATCH replaces only the fields it names)."""
    if not obj.writable:
        raise SfError("INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id")
    before = _existing(store, obj, record_id)
    data = {k: v for k, v in data.items() if k.lower() != "id"}
    changes = _validate(store, obj, data, creating=False)
    stamp = store.stamp()
    record = {**before, **changes, "LastModifiedDate": stamp, "SystemModstamp": stamp}
    _derive(store, obj, record, before, stamp)
    check_record(store, obj, record)
    _check_unique(store, obj, record)
    store.put(obj, record)
    return str(record["Id"])


def upsert(
    store: Store, obj: ObjectDef, field_name: str, value: str, data: dict[str, Any]
) -> tuple[str, bool]:
    """Update the record whose external id `field_name` equals value, or create it.

    Returns (id, created). More than one match is Salesforce's 300 MULTIPLE_CHOICES.
    """
    definition = obj.get(field_name)
    if (
        definition is None
        or not (definition.external_id or definition.name == "Id")
        or not store.schema.readable(obj, definition)
    ):
        raise SfError(
            "NOT_FOUND",
            f"Provided external ID field does not exist or is not accessible: {field_name}",
            status=404,
        )
    if definition.name == "Id":
        return update(store, obj, value, data), False
    body_value = next((v for k, v in data.items() if k.lower() == definition.name.lower()), None)
    if body_value is not None and str(body_value) != value:
        raise SfError(
            "INVALID_FIELD",
            f"The value for {definition.name} in the request body "
            "does not match the value in the URL",
            [definition.name],
        )
    data = {k: v for k, v in data.items() if k.lower() != definition.name.lower()}
    matches = [
        i for i in store.find(obj, definition, value) if not store.tables[obj.name][i]["IsDeleted"]
    ]
    if len(matches) > 1:
        raise SfError(
            "MULTIPLE_CHOICES",
            f"Multiple records found for {definition.name} = {value}: {', '.join(matches)}",
            status=300,
        )
    if matches:
        return update(store, obj, matches[0], data), False
    return create(store, obj, {**data, definition.name: value}), True


def delete(store: Store, obj: ObjectDef, record_id: str) -> str:
    """Soft-delete: the record stays for queryAll with IsDeleted = true."""
    if not obj.writable:
        raise SfError("INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id")
    before = _existing(store, obj, record_id)
    stamp = store.stamp()
    store.put(
        obj, {**before, "IsDeleted": True, "LastModifiedDate": stamp, "SystemModstamp": stamp}
    )
    return str(before["Id"])
