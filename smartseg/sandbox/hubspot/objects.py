"""Object operations shared by the single, batch and search endpoints: validate, write, render.

Each write validates every property first (so a bad input changes nothing), stamps
hs_lastmodifieddate with the portal's strictly increasing clock, and keeps the unique and
last-modified indexes current. Callers hold `PortalState.lock`.
"""

from __future__ import annotations

from typing import Any

from ..http import Request
from .catalog import OBJECT_TYPES, assoc_type, assoc_types_between, object_type
from .errors import ItemError, fail, property_errors
from .properties import PropertyValueError, iso_ms, normalize_value, parse_ms
from .store import ObjectTable, PortalState, Record

__all__ = [
    "archive",
    "check_associations",
    "create",
    "link",
    "list_arg",
    "render",
    "table_for",
    "update",
]

# A contact's first company becomes its primary one, as in HubSpot.
_PRIMARY_ON_FIRST = {("contacts", "companies"): 1}


def table_for(state: PortalState, name: str) -> ObjectTable:
    """The table a path's {objectType} names, or HubSpot's 400 for an unknown type."""
    otype = object_type(name)
    if otype is None:
        raise fail(400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}")
    return state.tables[otype.name]


def list_arg(request: Request, name: str) -> list[str] | None:
    """A multi-valued query parameter, given repeated (SDK) or comma-separated (curl)."""
    values = request.query.get(name)
    if values is None:
        return None
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _check_values(
    state: PortalState, table: ObjectTable, raw: Any, *, creating: bool
) -> dict[str, str]:
    """The normalised values of a write's `properties`, or the ItemError HubSpot answers."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ItemError(400, "VALIDATION_ERROR", "Invalid input JSON: properties must be an object")
    problems: list[PropertyValueError] = []
    values: dict[str, str] = {}
    for name, value in raw.items():
        prop = table.schema.get(name)
        if prop is None:
            problems.append(
                PropertyValueError(
                    name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
                )
            )
            continue
        if prop.read_only:
            problems.append(
                PropertyValueError(
                    name,
                    "READ_ONLY_VALUE",
                    f"{name} is a read only property; its value cannot be set.",
                )
            )
            continue
        try:
            values[name] = normalize_value(prop, value, object_type=table.type.name)
        except PropertyValueError as exc:
            problems.append(exc)
            continue
        if name == "hubspot_owner_id" and values[name]:
            owner = values[name]
            if not owner.isdigit() or int(owner) not in state.owners:
                problems.append(
                    PropertyValueError(name, "INVALID_OWNER_ID", f"{owner} is not a valid owner id")
                )
    start = values.get("hs_meeting_start_time")
    if creating and start and not values.get("hs_timestamp"):
        values["hs_timestamp"] = start  # since 2024-11-12 a meeting's timestamp defaults to it
    if creating:
        for name in table.type.required:
            if not values.get(name):
                problems.append(
                    PropertyValueError(name, "REQUIRED_PROPERTY", f'Property "{name}" is required')
                )
    if problems:
        raise property_errors(problems)
    return values


def _check_unique(table: ObjectTable, values: dict[str, str], own_id: int | None) -> None:
    for name in table.unique:
        value = values.get(name)
        holder = table.find_unique(name, value) if value else None
        if holder is not None and holder.id != own_id:
            what = "Contact" if table.type.name == "contacts" else table.type.singular.title()
            raise ItemError(
                409,
                "CONFLICT",
                f"{what} already exists. Existing ID: {holder.id}",
                context={"id": [str(holder.id)], "propertyName": [name]},
            )


def check_associations(state: PortalState, source: str, specs: Any) -> list[tuple[str, int, int]]:
    """Validate v4-style inline associations: [(target type, target id, type id)]."""
    if specs is None:
        return []
    if not isinstance(specs, list):
        raise ItemError(400, "VALIDATION_ERROR", "Invalid input JSON: associations must be a list")
    out: list[tuple[str, int, int]] = []
    for spec in specs:
        to_id = str((spec.get("to") or {}).get("id", "")) if isinstance(spec, dict) else ""
        types = spec.get("types") if isinstance(spec, dict) else None
        if not to_id.isdigit() or not types:
            raise ItemError(
                400, "VALIDATION_ERROR", "Each association needs to.id and at least one type"
            )
        for t in types:
            type_id = int(t.get("associationTypeId", -1))
            category = t.get("associationCategory")
            target = _target_of(source, type_id, category)
            if target is None:
                raise ItemError(
                    400,
                    "VALIDATION_ERROR",
                    f"{category} association type {type_id} is not valid for "
                    f"{OBJECT_TYPES[source].singular} associations",
                    sub_category="crm.associations.INVALID_ASSOCIATION_TYPE",
                )
            if state.tables[target].live(int(to_id)) is None:
                raise ItemError(
                    400,
                    "VALIDATION_ERROR",
                    f"One or more associations are invalid: {target} {to_id} does not exist",
                    context={"id": [to_id]},
                )
            out.append((target, int(to_id), type_id))
    return out


def _target_of(source: str, type_id: int, category: Any) -> str | None:
    if category != "HUBSPOT_DEFINED":
        return None
    for target in OBJECT_TYPES:
        if assoc_type(source, target, type_id) is not None:
            return target
    return None


def link(
    state: PortalState, source: str, source_id: int, target: str, target_id: int, type_id: int
) -> None:
    """Associate two records; a contact's first company also becomes its primary one."""
    primary = _PRIMARY_ON_FIRST.get((source, target))
    if primary is not None and type_id != primary:
        current = state.assocs.of(source, source_id, target)
        if not any(primary in types for types in current.values()):
            state.assocs.add(source, source_id, target, target_id, primary)
    state.assocs.add(source, source_id, target, target_id, type_id)


def create(state: PortalState, table: ObjectTable, body: Any) -> Record:
    """Create one record from a SimplePublicObjectInputForCreate body."""
    body = body if isinstance(body, dict) else {}
    values = _check_values(state, table, body.get("properties"), creating=True)
    _check_unique(table, values, None)
    links = check_associations(state, table.type.name, body.get("associations"))
    stamp = state.stamp()
    created = values.pop("createdate", "") or None
    rec = Record(table.next_id, {k: v for k, v in values.items() if v}, stamp, stamp)
    if created:
        rec.created = parse_ms(created) or stamp
    table.insert(rec)
    for target, target_id, type_id in links:
        link(state, table.type.name, rec.id, target, target_id, type_id)
    return rec


def update(state: PortalState, table: ObjectTable, rec: Record, raw: Any) -> Record:
    """Apply a SimplePublicObjectInput's properties ("" clears one) to a live record."""
    values = _check_values(state, table, raw, creating=False)
    _check_unique(table, values, rec.id)
    old = dict(rec.props)
    created = values.pop("createdate", None)
    if created:
        rec.created = parse_ms(created) or rec.created
    for name, value in values.items():
        if value:
            rec.props[name] = value
        else:
            rec.props.pop(name, None)
    rec.updated = state.stamp()
    table.touched(rec, old)
    return rec


def archive(state: PortalState, table: ObjectTable, rec: Record) -> None:
    """Archive (soft-delete) a record: it leaves lists, search and unique indexes."""
    if rec.archived_at is not None:
        return
    rec.archived_at = rec.updated = state.stamp()
    table.touched(rec, rec.props)


def render(
    state: PortalState,
    table: ObjectTable,
    rec: Record,
    properties: list[str] | None,
    *,
    history: list[str] | None = None,
    associations: list[str] | None = None,
    trace_id: str | None = None,
) -> dict[str, Any]:
    """A record as SimplePublicObject(WithAssociations) JSON."""
    otype = table.type
    if properties is None:
        names: list[str] = list(otype.default_properties)
    else:
        always = ("hs_object_id", otype.created_property, otype.modified_property)
        names = [n for n in dict.fromkeys([*properties, *always]) if n in table.schema]
    body: dict[str, Any] = {
        "id": str(rec.id),
        "properties": {n: table.value(rec, n) for n in names},
        "createdAt": iso_ms(rec.created),
        "updatedAt": iso_ms(rec.updated),
        "archived": rec.archived_at is not None,
    }
    if rec.archived_at is not None:
        body["archivedAt"] = iso_ms(rec.archived_at)
    if history:
        body["propertiesWithHistory"] = {
            n: [{"value": value, "timestamp": iso_ms(rec.updated), "sourceType": "API"}]
            for n in history
            if n in table.schema and (value := table.value(rec, n)) is not None
        }
    if associations:
        body["associations"] = _v3_associations(state, otype.name, rec.id, associations)
    if trace_id:
        body["objectWriteTraceId"] = trace_id
    return body


def _v3_associations(
    state: PortalState, source: str, rec_id: int, wanted: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in wanted:
        target_type = object_type(name)
        if target_type is None or not assoc_types_between(source, target_type.name):
            continue  # HubSpot ignores association types that do not exist
        results = [
            {"id": str(target_id), "type": kind.name}
            for target_id, type_ids in state.assocs.of(source, rec_id, target_type.name).items()
            for type_id in type_ids
            if (kind := assoc_type(source, target_type.name, type_id)) is not None
        ]
        if results:
            out[target_type.name] = {"results": results}
    return out
