"""Property definitions: HubSpot's typed schema of each object, and how a written value is checked.

Every write is validated against these definitions the way HubSpot does it: unknown names are
PROPERTY_DOESNT_EXIST, enumeration values outside the options are INVALID_OPTION (a checkbox
takes several options separated by ';'), numbers, booleans, dates and datetimes must parse. Values
are stored normalised as HubSpot returns them: dates "YYYY-MM-DD", datetimes ISO with millis and Z.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FIELD_TYPES",
    "Option",
    "PropertyDef",
    "PropertyValueError",
    "iso_ms",
    "normalize_value",
    "parse_ms",
]

# Which fieldTypes HubSpot accepts for each property type.
FIELD_TYPES: dict[str, frozenset[str]] = {
    "string": frozenset({"text", "textarea", "file", "phonenumber", "html"}),
    "number": frozenset({"number", "calculation_equation"}),
    "date": frozenset({"date"}),
    "datetime": frozenset({"date"}),
    "enumeration": frozenset({"select", "radio", "checkbox", "booleancheckbox"}),
    "bool": frozenset({"booleancheckbox"}),
}
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(slots=True)
class Option:
    """One enumeration option."""

    label: str
    value: str
    display_order: int = 0
    hidden: bool = False
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "value": self.value,
            "displayOrder": self.display_order,
            "hidden": self.hidden,
            "description": self.description,
        }


@dataclass(slots=True)
class PropertyDef:
    """One property of one object type, as `/crm/v3/properties/{objectType}` serves it."""

    name: str
    label: str
    type: str
    field_type: str
    group_name: str
    options: list[Option] = field(default_factory=list)
    has_unique_value: bool = False
    hubspot_defined: bool = True
    read_only: bool = False
    external_options: bool = False  # options live elsewhere (owners): checked by the store
    description: str = ""
    display_order: int = -1
    created_at: str = "2019-08-06T02:41:52.000Z"
    updated_at: str = "2019-08-06T02:41:52.000Z"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group_name,
            "options": [o.to_json() for o in self.options],
            "displayOrder": self.display_order,
            "calculated": False,
            "externalOptions": self.external_options,
            "hasUniqueValue": self.has_unique_value,
            "hidden": False,
            "formField": not self.read_only,
            "dataSensitivity": "non_sensitive",
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "archived": False,
        }
        if self.hubspot_defined:
            body["hubspotDefined"] = True
        return body

    def option_values(self) -> set[str]:
        return {o.value for o in self.options}


class PropertyValueError(Exception):
    """A property value HubSpot would refuse: `code` is its error code, e.g. INVALID_OPTION."""

    def __init__(self, name: str, code: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.code = code
        self.message = message


@functools.lru_cache(maxsize=1 << 16)  # loads and pages repeat the same instants a lot
def iso_ms(ms: int) -> str:
    """Epoch milliseconds as HubSpot's ISO form, e.g. "2024-05-01T12:00:00.000Z"."""
    moment = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def parse_ms(value: str) -> int | None:
    """Epoch milliseconds from epoch-ms digits, an ISO datetime or a date; None if neither."""
    text = value.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def normalize_value(prop: PropertyDef, raw: Any, *, object_type: str) -> str:
    """The stored form of `raw` for `prop`, or PropertyValueError as HubSpot would refuse it.

    An empty string (or null) clears the property and is always allowed.
    """
    if raw is None:
        return ""
    text = _as_text(raw)
    if text == "":
        return ""
    name = prop.name
    if prop.type == "number":
        try:
            float(text)
        except ValueError:
            raise PropertyValueError(
                name, "INVALID_DOUBLE", f"{text} was not a valid number."
            ) from None
        return text
    if prop.type == "bool" or prop.field_type == "booleancheckbox":
        if text.lower() not in ("true", "false"):
            raise PropertyValueError(name, "INVALID_BOOLEAN", f"{text} was not a valid boolean.")
        return text.lower()
    if prop.type == "date":
        return _normalize_date(name, text)
    if prop.type == "datetime":
        ms = parse_ms(text)
        if ms is None:
            raise PropertyValueError(name, "INVALID_DATETIME", f"{text} was not a valid datetime.")
        return iso_ms(ms)
    if prop.type == "enumeration" and not prop.external_options:
        allowed = prop.option_values()
        chosen = text.split(";") if prop.field_type == "checkbox" else [text]
        for value in chosen:
            if value not in allowed:
                shown = ", ".join(sorted(allowed))
                raise PropertyValueError(
                    name, "INVALID_OPTION", f"{value} was not one of the allowed options: [{shown}]"
                )
        return ";".join(dict.fromkeys(v for v in chosen if v))
    if name == "email" and object_type == "contacts" and not _EMAIL.match(text):
        raise PropertyValueError(name, "INVALID_EMAIL", f"Email address {text} is invalid")
    return text


def _normalize_date(name: str, text: str) -> str:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            pass
    ms = parse_ms(text)
    if ms is None:
        raise PropertyValueError(name, "INVALID_DATE", f"{text} was not a valid date.")
    if ms % 86_400_000:
        moment = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
        raise PropertyValueError(
            name,
            "INVALID_DATE",
            f"{text} is at {moment:%H:%M:%S}.{ms % 1000} UTC, not midnight!",
        )
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).date().isoformat()
