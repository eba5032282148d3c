"""Object and field definitions and the describe JSON built from them.

Fields are mutable because the Tooling API adds custom fields and picklist values at run time;
the store's lock guards every change, and describe always reflects the current definition.
What the API user may do with each field (field-level security) is the schema's `access`
hook: every field is fully accessible unless the server installs a check (`permissions.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Access", "FieldAccess", "FieldDef", "ObjectDef", "PicklistValue", "Schema"]

# What the API user may do with a field: nothing (hidden), read it, or read and write it.
Access = Literal["none", "read", "edit"]

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
}


@dataclass(slots=True)
class PicklistValue:
    value: str
    label: str
    active: bool = True
    default: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "defaultValue": self.default,
            "label": self.label,
            "validFor": None,
            "value": self.value,
        }


@dataclass(slots=True)
class FieldDef:
    """One field as describe() reports it; `derived` fields are computed by the store."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    custom: bool = False
    external_id: bool = False
    unique: bool = False
    picklist: list[PicklistValue] = field(default_factory=list)
    restricted: bool = False
    reference_to: list[str] = field(default_factory=list)
    relationship_name: str | None = None
    precision: int = 0
    scale: int = 0
    defaulted: bool = False
    name_field: bool = False
    visible_lines: int = 0
    tooling_id: str | None = None
    description: str = ""
    # Created through the Tooling API: no profile grants it, so only a FieldPermissions row
    # of a permission set assigned to the API user makes it visible (as in a real org).
    secured: bool = False

    def __repr__(self) -> str:
        return f"FieldDef({self.name!r}, {self.type!r})"

    def __post_init__(self) -> None:
        if not self.label:
            self.label = self.name.removesuffix("__c").replace("_", " ")

    @property
    def required(self) -> bool:
        """Must be given on create (not nillable, writable and without a default)."""
        return (
            not self.nillable and self.createable and not self.defaulted and self.type != "boolean"
        )

    def picklist_values(self) -> set[str]:
        return {item.value for item in self.picklist if item.active}

    def describe(self) -> dict[str, Any]:
        text = self.type not in _SOAP_TYPES and self.type != "multipicklist"
        return {
            "aggregatable": self.type not in ("textarea", "multipicklist"),
            "autoNumber": False,
            "byteLength": self.length * 3,
            "calculated": not self.createable and not self.updateable and self.name != "Id",
            "caseSensitive": False,
            "createable": self.createable,
            "custom": self.custom,
            "defaultValue": False if self.type == "boolean" else None,
            "defaultedOnCreate": self.defaulted or self.type == "boolean",
            "digits": self.precision if self.type == "int" else 0,
            "externalId": self.external_id,
            "filterable": self.type != "complexvalue"
            and (self.type != "textarea" or self.length <= 255),
            "groupable": text or self.type in ("id", "reference", "boolean", "date"),
            "idLookup": self.name == "Id" or self.external_id,
            "label": self.label,
            "length": self.length,
            "name": self.name,
            "nameField": self.name_field,
            "nillable": self.nillable,
            "picklistValues": [item.describe() for item in self.picklist],
            "precision": self.precision,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "restrictedPicklist": self.restricted,
            "scale": self.scale,
            "soapType": _SOAP_TYPES.get(self.type, "xsd:string"),
            "sortable": self.type not in ("textarea", "multipicklist", "complexvalue"),
            "type": self.type,
            "unique": self.unique,
            "updateable": self.updateable,
        }


@dataclass(slots=True)
class ObjectDef:
    """One sObject type: its name, key prefix and fields (keyed by lower-cased name)."""

    name: str
    key_prefix: str
    label: str
    label_plural: str
    fields: dict[str, FieldDef] = field(default_factory=dict)
    custom: bool = False
    writable: bool = True

    def __repr__(self) -> str:
        return f"ObjectDef({self.name!r})"

    def add(self, definition: FieldDef) -> FieldDef:
        self.fields[definition.name.lower()] = definition
        return definition

    def get(self, name: str) -> FieldDef | None:
        return self.fields.get(name.lower())

    def urls(self, version: str) -> dict[str, str]:
        base = f"/services/data/{version}/sobjects/{self.name}"
        return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}

    def summary(self, version: str) -> dict[str, Any]:
        """The entry for this object in the global describe."""
        return {
            "activateable": False,
            "createable": self.writable,
            "custom": self.custom,
            "customSetting": False,
            "deletable": self.writable,
            "deprecatedAndHidden": False,
            "feedEnabled": False,
            "keyPrefix": self.key_prefix,
            "label": self.label,
            "labelPlural": self.label_plural,
            "layoutable": True,
            "mergeable": False,
            "mruEnabled": True,
            "name": self.name,
            "queryable": True,
            "replicateable": True,
            "retrieveable": True,
            "searchable": True,
            "triggerable": True,
            "undeletable": True,
            "updateable": self.writable,
            "urls": self.urls(version),
        }

    def describe(self, version: str, access: FieldAccess | None = None) -> dict[str, Any]:
        """The object's describe, listing only the fields `access` lets the API user read (a
        read-only one as neither createable nor updateable); every field without `access`."""
        fields = []
        for item in self.fields.values():
            allowed = "edit" if access is None else access(self, item)
            if allowed == "none":
                continue
            described = item.describe()
            if allowed == "read":
                described.update(createable=False, updateable=False)
            fields.append(described)
        result = self.summary(version)
        result.update(
            {
                "childRelationships": [],
                "fields": fields,
                "recordTypeInfos": [],
                "supportedScopes": [{"label": "All", "name": "everything"}],
            }
        )
        return result


FieldAccess = Callable[[ObjectDef, FieldDef], Access]


def _full_access(obj: ObjectDef, definition: FieldDef) -> Access:
    return "edit"


class Schema:
    """The objects of one API surface (data or tooling), looked up case-insensitively."""

    def __init__(self, objects: list[ObjectDef]) -> None:
        self.objects = {item.name.lower(): item for item in objects}
        self.by_prefix = {item.key_prefix: item for item in objects}
        self.access: FieldAccess = _full_access

    def readable(self, obj: ObjectDef, definition: FieldDef) -> bool:
        return self.access(obj, definition) != "none"

    def get(self, name: str) -> ObjectDef | None:
        return self.objects.get(name.lower())

    def global_describe(self, version: str) -> dict[str, Any]:
        return {
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": [item.summary(version) for item in self.objects.values()],
        }
