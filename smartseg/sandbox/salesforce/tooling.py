"""Tooling API CustomField: how smartseg creates its fields and adds picklist values.

Every custom field of the data schema has a CustomField record here; creating or patching one
changes the data schema at once. A created field has no field-level security yet, so the API
user sees it only once a permission set grants it (`permissions.py`); Tooling queries list it
regardless, as they do in a real org.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from smartseg.sandbox.http import Request, Response, json_response
from smartseg.sandbox.salesforce.errors import SfError
from smartseg.sandbox.salesforce.ids import make_id
from smartseg.sandbox.salesforce.query import QueryEngine, render_record
from smartseg.sandbox.salesforce.rest import body_object
from smartseg.sandbox.salesforce.schema import FieldDef, ObjectDef, PicklistValue, Schema
from smartseg.sandbox.salesforce.store import Store

if TYPE_CHECKING:
    from smartseg.sandbox.salesforce.server import SalesforceServer

__all__ = ["Tooling"]

_FULL_NAME = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\.([A-Za-z][A-Za-z0-9_]*__c)$")
_TYPES = {
    "Text": "string",
    "TextArea": "textarea",
    "LongTextArea": "textarea",
    "Number": "double",
    "Currency": "currency",
    "Percent": "percent",
    "Date": "date",
    "DateTime": "datetime",
    "Checkbox": "boolean",
    "Picklist": "picklist",
    "MultiselectPicklist": "multipicklist",
    "Email": "email",
    "Url": "url",
    "Phone": "phone",
}
_METADATA_TYPES = {v: k for k, v in _TYPES.items() if k != "LongTextArea"}
MAX_PICKLIST_VALUES = 1000
# Custom fields of tasks and events are one field of Activity (FullName Activity.X__c), which
# both Task and Event then carry, as in Salesforce.
ACTIVITY = "Activity"
ACTIVITY_OBJECTS = ("Task", "Event")
ONE_ROW_FIELDS = ("FullName", "Metadata")


def _tooling_schema() -> Schema:
    obj = ObjectDef(
        name="CustomField", key_prefix="00N", label="Custom Field", label_plural="Custom Fields"
    )
    for name, kind in (
        ("Id", "id"),
        ("DeveloperName", "string"),
        ("FullName", "string"),
        ("TableEnumOrId", "string"),
        ("NamespacePrefix", "string"),
        ("Description", "string"),
        ("Metadata", "complexvalue"),
        ("IsDeleted", "boolean"),
        ("CreatedDate", "datetime"),
        ("LastModifiedDate", "datetime"),
        ("SystemModstamp", "datetime"),
    ):
        obj.add(
            FieldDef(
                name,
                kind,
                length=255 if kind == "string" else 0,
                createable=name in ("FullName", "Metadata"),
                updateable=name in ("FullName", "Metadata"),
            )
        )
    return Schema([obj])


def _fail(message: str) -> SfError:
    return SfError("FIELD_INTEGRITY_EXCEPTION", message)


def _picklist(metadata: dict[str, Any]) -> tuple[list[PicklistValue], bool]:
    value_set = metadata.get("valueSet") or {}
    definition = value_set.get("valueSetDefinition") or {}
    values = definition.get("value") or []
    if not values:
        raise _fail("Picklist fields must have at least one value: valueSet.valueSetDefinition")
    if len(values) > MAX_PICKLIST_VALUES:
        raise SfError("LIMIT_EXCEEDED", f"Picklists can have at most {MAX_PICKLIST_VALUES} values")
    items, seen = [], set()
    for value in values:
        name = str(value.get("fullName") or "")
        if not name or len(name) > 255:
            raise _fail(f"Picklist value API name must be 1 to 255 characters: {name[:40]!r}")
        if name.casefold() in seen:
            raise SfError("DUPLICATE_VALUE", f"Duplicate picklist value: {name}")
        seen.add(name.casefold())
        items.append(
            PicklistValue(
                name,
                str(value.get("label") or name),
                active=value.get("isActive") is not False,
                default=bool(value.get("default")),
            )
        )
    return items, bool(value_set.get("restricted", False))


def _apply(definition: FieldDef, metadata: dict[str, Any]) -> None:
    """Set a field's definition from Tooling Metadata (type already checked)."""
    if not metadata.get("label"):
        raise _fail("Field label: You must enter a value")
    definition.label = str(metadata["label"])
    definition.description = str(metadata.get("description") or "")
    definition.external_id = bool(metadata.get("externalId", False))
    definition.unique = bool(metadata.get("unique", False))
    kind = definition.type
    if kind in ("string", "textarea"):
        limit = 255 if metadata["type"] in ("Text", "TextArea") else 131072
        length = metadata.get("length") or (255 if metadata["type"] == "TextArea" else None)
        if not isinstance(length, int) or not 1 <= length <= limit:
            raise _fail(f"Length: value must be between 1 and {limit}")
        definition.length = length
    elif kind in ("double", "currency", "percent"):
        definition.precision = int(metadata.get("precision") or 18)
        definition.scale = int(metadata.get("scale") or 0)
    elif kind in ("picklist", "multipicklist"):
        definition.picklist, definition.restricted = _picklist(metadata)
        definition.length = 4099 if kind == "multipicklist" else 255
        if kind == "multipicklist":
            lines = metadata.get("visibleLines")
            if not isinstance(lines, int) or not 3 <= lines <= 10:
                raise _fail("Visible Lines: value must be between 3 and 10")
            definition.visible_lines = lines
    elif kind in ("email", "url", "phone"):
        definition.length = 80 if kind == "email" else 255


def metadata_of(definition: FieldDef) -> dict[str, Any]:
    """A field's Metadata as the Tooling API returns it."""
    metadata: dict[str, Any] = {
        "label": definition.label,
        "type": _METADATA_TYPES.get(definition.type, "Text"),
        "description": definition.description or None,
        "externalId": definition.external_id,
        "unique": definition.unique,
        "required": False,
        "inlineHelpText": None,
        "length": definition.length if definition.type in ("string", "textarea") else None,
        "precision": definition.precision or None,
        "scale": definition.scale or None,
        "visibleLines": definition.visible_lines or None,
        "valueSet": None,
        "defaultValue": "false" if definition.type == "boolean" else None,
    }
    if definition.picklist:
        metadata["valueSet"] = {
            "restricted": definition.restricted,
            "controllingField": None,
            "valueSettings": [],
            "valueSetDefinition": {
                "sorted": False,
                "value": [
                    {
                        "fullName": p.value,
                        "label": p.label,
                        "default": p.default,
                        "isActive": p.active,
                        "color": None,
                        "description": None,
                    }
                    for p in definition.picklist
                ],
            },
        }
    return metadata


class Tooling:
    """The CustomField records of one server, kept in step with its data schema."""

    def __init__(self, server: SalesforceServer) -> None:
        self.server = server
        self.schema = _tooling_schema()
        self.obj = self.schema.objects["customfield"]
        self.store = Store(self.schema, server.store.clock)
        self.store.lock = server.store.lock  # one lock: tooling writes change the data schema
        self.queries = QueryEngine(self.store, self.schema)
        self._fields: dict[str, tuple[ObjectDef, FieldDef]] = {}
        with self.store.lock:
            for obj in server.schema.objects.values():
                for definition in list(obj.fields.values()):
                    if definition.custom:
                        self._record(obj, definition)

    def _record(self, obj: ObjectDef, definition: FieldDef) -> str:
        stamp = self.server.store.stamp()
        previous = (
            None
            if definition.tooling_id is None
            else self.store.get(self.obj, definition.tooling_id)
        )
        created = stamp if previous is None else previous["CreatedDate"]
        if definition.tooling_id is None:
            definition.tooling_id = make_id("00N", len(self._fields) + 1)
        self._fields[definition.tooling_id] = (obj, definition)
        table = ACTIVITY if len(self._holders(definition)) > 1 else obj.name
        self.store.put(
            self.obj,
            {
                "Id": definition.tooling_id,
                "DeveloperName": definition.name.removesuffix("__c"),
                "FullName": f"{table}.{definition.name}",
                "TableEnumOrId": table,
                "NamespacePrefix": None,
                "Description": definition.description or None,
                "Metadata": metadata_of(definition),
                "IsDeleted": False,
                "CreatedDate": created,
                "LastModifiedDate": stamp,
                "SystemModstamp": stamp,
            },
        )
        return definition.tooling_id

    def _holders(self, definition: FieldDef) -> list[ObjectDef]:
        """The objects carrying this very field: two for an Activity field, else one."""
        return [
            o for o in self.server.schema.objects.values() if o.get(definition.name) is definition
        ]

    def register(self) -> None:
        add = self.server.add_route
        add("GET", "/tooling/query", self._query)
        add("POST", "/tooling/sobjects/CustomField", self._create)
        add("GET", "/tooling/sobjects/CustomField/{id}", self._read)
        add("PATCH", "/tooling/sobjects/CustomField/{id}", self._patch)

    def _query(self, request: Request) -> Response:
        from smartseg.sandbox.salesforce.soql import parse

        text = request.arg("q") or ""
        version = request.params["version"]
        with self.store.lock:
            query = parse(text, self.schema)
            rows = self.queries.select(query, include_deleted=False)
            if len(rows) > 1 and any(f.name in ONE_ROW_FIELDS for f in query.fields):
                raise SfError(
                    "MALFORMED_QUERY",
                    "When retrieving results with Metadata or "
                    "FullName fields, the query qualifications must specify no more "
                    f"than one row for retrieval. Result size: {len(rows)}",
                )
            if query.count:
                return json_response(
                    {
                        "size": len(rows),
                        "totalSize": len(rows),
                        "done": True,
                        "records": [],
                        "entityTypeName": "CustomField",
                    }
                )
            records = [render_record(self.obj, r, query.fields, version) for r in rows]
            for record in records:
                record["attributes"]["url"] = record["attributes"]["url"].replace(
                    "/sobjects/", "/tooling/sobjects/"
                )
        return json_response(
            {
                "size": len(records),
                "totalSize": len(records),
                "done": True,
                "queryLocator": None,
                "entityTypeName": "CustomField",
                "records": records,
            }
        )

    def _create(self, request: Request) -> Response:
        body = body_object(request)
        full_name, metadata = body.get("FullName"), body.get("Metadata")
        found = _FULL_NAME.match(str(full_name or ""))
        if not found or not isinstance(metadata, dict):
            raise _fail("FullName must be Object.Field__c and Metadata an object")
        with self.store.lock:
            table = found.group(1)
            names = ACTIVITY_OBJECTS if table.lower() == ACTIVITY.lower() else (table,)
            objects = [o for o in map(self.server.schema.get, names) if o is not None]
            if not objects:
                raise _fail(f"Invalid entity: {table}")
            name = found.group(2)
            if any(o.get(name) is not None for o in objects):
                raise SfError(
                    "DUPLICATE_DEVELOPER_NAME",
                    f"There is already a field named {name.removesuffix('__c')} on "
                    f"{ACTIVITY if len(objects) > 1 else objects[0].name}.",
                )
            kind = _TYPES.get(str(metadata.get("type")))
            if kind is None:
                raise _fail(f"Field type is not supported: {metadata.get('type')}")
            definition = FieldDef(name, kind, custom=True, nillable=True, secured=True)
            _apply(definition, metadata)
            for obj in objects:
                self._install(obj, definition)
            new_id = self._record(objects[0], definition)
        return json_response(
            {"id": new_id, "success": True, "errors": [], "warnings": [], "infos": []}, 201
        )

    def _install(self, obj: ObjectDef, definition: FieldDef) -> None:
        obj.add(definition)
        if definition.type == "boolean":
            # A new checkbox reads false on every existing record, not null.
            for record in self.server.store.tables[obj.name].values():
                record.setdefault(definition.name, False)
        if definition.external_id or definition.unique:
            self.server.store.add_index(obj, definition)

    def _read(self, request: Request) -> Response:
        with self.store.lock:
            record = self.store.get(self.obj, request.params["id"])
            if record is None:
                raise SfError("NOT_FOUND", "The requested resource does not exist", status=404)
            return json_response(render_record(self.obj, record, None, request.params["version"]))

    def _patch(self, request: Request) -> Response:
        body = body_object(request)
        metadata = body.get("Metadata")
        if not isinstance(metadata, dict):
            raise _fail("Metadata: You must enter a value")
        with self.store.lock:
            found = self._fields.get(request.params["id"])
            if found is None:
                raise SfError("NOT_FOUND", "The requested resource does not exist", status=404)
            obj, definition = found
            if _TYPES.get(str(metadata.get("type"))) != definition.type:
                raise _fail(
                    f"Cannot change the type of {obj.name}.{definition.name} to "
                    f"{metadata.get('type')}"
                )
            trial = FieldDef(definition.name, definition.type, custom=True)
            _apply(trial, metadata)
            for attribute in (
                "label",
                "description",
                "external_id",
                "unique",
                "length",
                "precision",
                "scale",
                "picklist",
                "restricted",
                "visible_lines",
            ):
                setattr(definition, attribute, getattr(trial, attribute))
            if definition.external_id or definition.unique:
                for holder in self._holders(definition):
                    self.server.store.add_index(holder, definition)
            self._record(obj, definition)
        return json_response(None, 204)
